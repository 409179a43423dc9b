// Patterns across a dataset (LSTMVis select-and-match, RNNVis unit-token clusters) in the browser:
//
// - createSelectTool: the Explorer's hypothesis selection. Dragging over the heatmap brushes a
//   range of steps; a threshold slider (with a live count) picks the units that are on (> θ)
//   over the whole range and off at the step just before and after it, the same rule as
//   rnnwidgets/patterns.py's select_units. Traits: brush [start, end), threshold; the kernel
//   sets highlight (units to compare, e.g. a co-cluster's).
// - renderMatches: the Match panel, one row per match: its tokens aligned on the run's first
//   step with the selected units' heatmap under them; a click asks the kernel to open it.
// - renderCoclusters: the units x tokens response matrix ordered by cluster and each unit
//   cluster's ranked tokens; a click on a cluster selects it (the kernel highlights its units).
//
// Stable DOM hooks: .rw-select (.rw-threshold input, .rw-select-count), .rw-brush (the brushed
// range over the heatmap), .rw-matches (.rw-match rows, .rw-match-tokens, .rw-match-heatmap),
// .rw-coclusters (.rw-cocluster-matrix canvas, .rw-cluster entries). Tokens: textContent only.
import type { AnyModel } from "@anywidget/types";
import { MESSAGE, floatsOf } from "./decode";
import { formatValue, paintHeatmap } from "./heatmap";
import type { Actions, ExplorerState, Quantity, Scale } from "./state";
import { selectedQuantity, valueAt } from "./state";
import { visibleToken } from "./tokens";
import { element } from "./dom";

/** Units on (> threshold) at every step of [start, end) and off at start - 1 and end (where
 * those steps exist); steps past `length` count as absent. */
export function selectUnits(q: Quantity, start: number, end: number, threshold: number, length: number): number[] {
  const out: number[] = [];
  if (!(start >= 0 && start < end && end <= length)) return out;
  for (let u = 0; u < q.units; u++) {
    let on = true;
    for (let t = start; t < end && on; t++) on = valueAt(q, t, u) > threshold;
    if (on && start > 0) on = valueAt(q, start - 1, u) <= threshold;
    if (on && end < length) on = valueAt(q, end, u) <= threshold;
    if (on) out.push(u);
  }
  return out;
}

/** The step range [start, end) from two steps a drag went between (either order). */
export function brushRange(a: number, b: number): [number, number] {
  return [Math.min(a, b), Math.max(a, b) + 1];
}

function div(className: string, parent?: HTMLElement): HTMLDivElement {
  const el = document.createElement("div");
  el.className = className;
  parent?.append(el);
  return el;
}

export interface SelectModel {
  brush: number[];
  threshold: number;
  highlight: number[];
}

export interface SelectTool {
  el: HTMLElement;
  /** After every Explorer change: refit the slider's range, redraw the brush, recount. */
  update(state: ExplorerState): void;
  destroy(): void;
}

const LISTED = 12; // selected units named in the count line; the rest are counted

/**
 * The hypothesis selection over an Explorer heatmap. `box` is the heatmap's element (the brush
 * overlay goes in it); a drag that crosses columns brushes, and the click that ends it is kept
 * from the Explorer (which would move the step).
 */
export function createSelectTool(model: AnyModel<SelectModel>, box: HTMLElement, actions: Actions): SelectTool {
  const el = div("rw-select");
  el.style.cssText = "display: flex; align-items: center; gap: 6px;";
  const label = document.createElement("span");
  label.textContent = "θ";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.className = "rw-threshold";
  slider.style.width = "140px";
  const value = document.createElement("span");
  value.style.cssText = "font-family: monospace; min-width: 4em;";
  const count = element("span", "rw-select-count");
  el.append(label, slider, value, count);
  const overlay = div("rw-brush", box);
  overlay.style.cssText =
    "position: absolute; top: 0; bottom: 0; display: none; pointer-events: none; " +
    "background: rgba(255, 235, 59, 0.25); border-left: 1px dashed #333; border-right: 1px dashed #333;";

  let last: ExplorerState | null = null;
  let shownFor = ""; // what the count line was computed for

  function brush(): [number, number] | null {
    const b = model.get("brush");
    return b && b.length === 2 && b[0] < b[1] ? [b[0], b[1]] : null;
  }

  function recount(state: ExplorerState, announce: boolean): void {
    const range = brush();
    const threshold = model.get("threshold") ?? 0;
    const key = `${state.layer}/${state.quantity}/${state.length}/${range}/${threshold}/${selectedQuantity(state).t0 ?? 0}`;
    if (key === shownFor && !announce) return;
    shownFor = key;
    value.textContent = formatValue(threshold);
    overlay.style.display = range ? "block" : "none";
    if (!range) {
      count.textContent = "drag over the heatmap to select a range of steps";
      return;
    }
    overlay.style.left = `${(100 * range[0]) / state.steps}%`;
    overlay.style.width = `${(100 * (range[1] - range[0])) / state.steps}%`;
    const q = selectedQuantity(state);
    const t0 = q.t0 ?? 0; // a long sequence holds a window of steps: count only within it
    if (Math.max(0, range[0] - 1) < t0 || Math.min(state.length, range[1] + 1) > t0 + q.steps) {
      count.textContent = `steps ${range[0]}–${range[1] - 1}: scrub there to count the units (steps ${t0}–${t0 + q.steps - 1} are loaded)`;
      return;
    }
    const units = selectUnits(q, range[0], range[1], threshold, state.length);
    const named = units.slice(0, LISTED).join(", ") + (units.length > LISTED ? ", …" : "");
    count.textContent = `${units.length} unit${units.length === 1 ? "" : "s"} on over steps ${range[0]}–${range[1] - 1}` +
      ` and off around${units.length ? `: ${named}` : ""}`;
    if (announce && units.length) actions.setUnits(units);
  }

  function fitSlider(state: ExplorerState): void {
    const q = selectedQuantity(state);
    const lo = String(q.vmin), hi = String(q.vmax);
    if (slider.min !== lo || slider.max !== hi) {
      slider.min = lo;
      slider.max = hi;
      slider.step = String((q.vmax - q.vmin) / 200 || 0.01);
    }
    slider.value = String(model.get("threshold") ?? 0);
  }

  function update(state: ExplorerState): void {
    last = state;
    fitSlider(state);
    recount(state, false);
  }

  /** The step under a pointer, clamped to the heatmap (a drag may leave it). */
  function stepAtPointer(ev: MouseEvent): number | null {
    const image = box.querySelector("canvas");
    if (!image || !last) return null;
    const r = image.getBoundingClientRect();
    if (r.width <= 0) return null;
    const f = Math.min(0.999999, Math.max(0, (ev.clientX - r.left) / r.width));
    return Math.floor(f * last.steps);
  }

  let from: number | null = null;
  let moved = false;
  let swallowClick = false;
  const onDown = (ev: MouseEvent) => {
    from = ev.button === 0 ? stepAtPointer(ev) : null;
    moved = false;
    swallowClick = false; // a drag that ended outside the heatmap had no click to swallow
  };
  const onMove = (ev: MouseEvent) => {
    if (from === null || !last) return;
    const t = stepAtPointer(ev);
    if (t === null || (!moved && t === from)) return;
    moved = true;
    const [a, b] = brushRange(from, t);
    overlay.style.display = "block";
    overlay.style.left = `${(100 * a) / last.steps}%`;
    overlay.style.width = `${(100 * (b - a)) / last.steps}%`;
  };
  const onUp = (ev: MouseEvent) => {
    if (from === null) return;
    const t = stepAtPointer(ev);
    if (moved && t !== null && last) {
      model.set("brush", brushRange(from, t));
      model.save_changes();
      swallowClick = true;
      recount(last, true);
    }
    from = null;
  };
  const onClick = (ev: MouseEvent) => {
    if (!swallowClick) return;
    swallowClick = false;
    ev.stopImmediatePropagation(); // the drag selected a range; it did not pick a step
  };
  slider.addEventListener("input", () => {
    model.set("threshold", Number(slider.value));
    model.save_changes();
    if (last) recount(last, true);
  });
  const onHighlight = () => {
    const units = model.get("highlight") ?? [];
    if (units.length) actions.setUnits(units);
  };
  box.addEventListener("mousedown", onDown);
  box.addEventListener("click", onClick, { capture: true });
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  model.on("change:highlight", onHighlight);
  const onRemote = () => last && recount(last, true);
  model.on("change:brush", onRemote);
  model.on("change:threshold", onRemote);

  return {
    el,
    update,
    destroy() {
      box.removeEventListener("mousedown", onDown);
      box.removeEventListener("click", onClick, { capture: true });
      window.removeEventListener("mousemove", onMove);
      window.removeEventListener("mouseup", onUp);
      model.off("change:highlight", onHighlight);
      model.off("change:brush", onRemote);
      model.off("change:threshold", onRemote);
    },
  };
}

// ---- the Match panel ----------------------------------------------------------------------------
export interface MatchRow {
  sequence: number;
  start: number; // the run [start, end) in its sequence
  end: number;
  score: number;
  tokens: string[] | null; // the snippet's tokens: `before` of context, the run, then context after
  before: number; // context steps before the run in the snippet
  steps: number; // steps in the snippet
  offset: number; // where its (steps x units) float32 values start in the buffer
}

export interface MatchesModel {
  rows: MatchRow[];
  units: number[]; // the selected units (the heatmap rows under each snippet)
  buffer: DataView;
  scale: Scale;
  vmin: number;
  vmax: number;
  context: number; // the most context steps any row has before its run: rows align on it
}

const CELL_W = 14; // px per step: a token cell and a heatmap column

export function renderMatches(model: AnyModel<MatchesModel>, el: HTMLElement): () => void {
  const root = div("rw-matches", el);
  root.style.cssText = "font: 12px sans-serif; display: flex; flex-direction: column; gap: 4px; max-height: 420px; overflow: auto;";

  function draw(): void {
    const rows = model.get("rows") ?? [];
    const units = model.get("units") ?? [];
    const data = floatsOf(model.get("buffer"));
    const context = model.get("context");
    root.replaceChildren();
    if (!rows.length) {
      div("rw-match-empty", root).textContent = "no matches";
      return;
    }
    rows.forEach((row, i) => {
      const entry = div("rw-match", root);
      entry.dataset.index = String(i);
      entry.title = `sequence ${row.sequence}, steps ${row.start}–${row.end - 1}: click to open it in the Explorer`;
      entry.style.cssText = "display: flex; gap: 8px; align-items: flex-start; cursor: pointer; padding: 2px;";
      const meta = document.createElement("span");
      meta.style.cssText = "font-family: monospace; width: 12em; flex: none;";
      meta.textContent = `#${row.sequence} ${row.start}–${row.end - 1}  score ${row.score}`;
      const body = div("rw-match-body", entry);
      entry.prepend(meta);
      body.style.paddingLeft = `${(context - row.before) * CELL_W}px`; // align every run's first step
      const tokens = div("rw-match-tokens", body);
      tokens.style.cssText = "display: flex; font-family: monospace;";
      for (let t = 0; t < row.steps; t++) {
        const cell = document.createElement("span");
        cell.style.cssText = `width: ${CELL_W}px; text-align: center; overflow: hidden; white-space: pre;`;
        const inRun = t >= row.before && t < row.before + row.end - row.start;
        if (inRun) cell.style.background = "rgba(255, 235, 59, 0.45)";
        cell.textContent = row.tokens ? visibleToken(row.tokens[t] ?? "") : String(row.start - row.before + t);
        tokens.append(cell);
      }
      const q: Quantity = {
        name: "pattern", units: units.length, steps: row.steps, scale: model.get("scale"),
        vmin: model.get("vmin"), vmax: model.get("vmax"),
        data: data.subarray(row.offset, row.offset + row.steps * units.length),
      };
      const canvas = element("canvas", "rw-match-heatmap");
      canvas.width = row.steps;
      canvas.height = Math.max(1, units.length);
      canvas.style.cssText = `display: block; width: ${row.steps * CELL_W}px; height: ${Math.min(48, 6 * units.length)}px; image-rendering: pixelated;`;
      const ctx = canvas.getContext("2d");
      if (ctx && units.length) {
        const img = ctx.createImageData(row.steps, units.length);
        paintHeatmap(q, null, row.steps, new Uint32Array(img.data.buffer));
        ctx.putImageData(img, 0, 0);
      }
      body.append(canvas);
      entry.addEventListener("click", () => model.send({ type: MESSAGE.open, row: i }));
    });
  }

  const events = ["change:rows", "change:buffer", "change:units"];
  let pending = false;
  const onChange = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      draw();
    });
  };
  for (const name of events) model.on(name, onChange);
  draw();
  return () => {
    for (const name of events) model.off(name, onChange);
  };
}

// ---- the co-cluster view ------------------------------------------------------------------------
export interface CoclustersModel {
  buffer: DataView; // (tokens x units) float32: column j of the ordered matrix is token j's units
  units: number[]; // unit ids in display order (grouped by cluster)
  tokens: string[]; // tokens in display order (grouped by cluster)
  unit_clusters: number[]; // the cluster of each displayed unit row
  token_clusters: number[]; // the cluster of each displayed token column
  top_tokens: string[][]; // per cluster: its tokens, strongest first
  vmax: number;
  cluster: number; // the selected cluster, -1 for none
}

const CLUSTER_TOKENS = 15; // tokens listed per cluster

export function renderCoclusters(model: AnyModel<CoclustersModel>, el: HTMLElement): () => void {
  const root = div("rw-coclusters", el);
  root.style.cssText = "font: 12px sans-serif; display: flex; gap: 16px; align-items: flex-start;";
  const left = div("rw-cocluster-left", root);
  const frame = div("rw-cocluster-frame", left);
  frame.style.cssText = "position: relative; display: inline-block;";
  const canvas = element("canvas", "rw-cocluster-matrix");
  canvas.setAttribute("role", "img");
  // The selected cluster's rows (units) and columns (tokens): each a contiguous band, as both are ordered by cluster.
  const rowBand = div("rw-cluster-rows");
  const columnBand = div("rw-cluster-columns");
  for (const band of [rowBand, columnBand]) {
    band.style.cssText = "position: absolute; display: none; pointer-events: none; outline: 2px solid #111;";
  }
  frame.append(canvas, rowBand, columnBand);
  const caption = div("rw-cocluster-caption", left);
  caption.style.color = "var(--jp-ui-font-color1, #555)"; // the theme's text colour: #555 was 2.5:1 on JupyterLab Dark
  const readout = div("rw-cocluster-readout", left);
  readout.style.cssText = "font-family: monospace; white-space: pre; min-height: 1.2em;";
  const list = div("rw-cluster-list", root);
  list.style.cssText = "display: flex; flex-direction: column; gap: 4px;";

  function draw(): void {
    const units = model.get("units"), tokens = model.get("tokens");
    const vmax = model.get("vmax") || 1;
    const q: Quantity = {
      name: "response", units: units.length, steps: tokens.length, scale: "diverging", vmin: -vmax, vmax,
      data: floatsOf(model.get("buffer")),
    };
    canvas.width = Math.max(1, tokens.length);
    canvas.height = Math.max(1, units.length);
    canvas.style.cssText = `display: block; width: ${Math.min(480, Math.max(240, tokens.length * 12))}px; height: ${Math.min(360, Math.max(160, units.length * 4))}px; image-rendering: pixelated;`;
    const ctx = canvas.getContext("2d");
    if (ctx && units.length && tokens.length) {
      const img = ctx.createImageData(tokens.length, units.length);
      paintHeatmap(q, null, tokens.length, new Uint32Array(img.data.buffer));
      ctx.putImageData(img, 0, 0);
    }
    placeBands(model.get("cluster"));
    caption.textContent = `${units.length} units (rows) × ${tokens.length} tokens (columns), grouped by cluster`;
    canvas.setAttribute("aria-label", `co-clustered response matrix: ${caption.textContent}`);
    const selected = model.get("cluster");
    const unitClusters = model.get("unit_clusters");
    list.replaceChildren(
      ...model.get("top_tokens").map((top, k) => {
        const entry = div("rw-cluster");
        entry.dataset.cluster = String(k);
        entry.style.cssText = `cursor: pointer; padding: 2px 4px; border-radius: 3px;${k === selected ? " background: #fde68a;" : ""}`;
        const size = unitClusters.filter((c) => c === k).length;
        const head = document.createElement("b");
        head.textContent = `cluster ${k} · ${size} unit${size === 1 ? "" : "s"}: `;
        const words = document.createElement("span");
        words.style.fontFamily = "monospace";
        words.textContent = top.slice(0, CLUSTER_TOKENS).map(visibleToken).join(" ") + (top.length > CLUSTER_TOKENS ? " …" : "");
        entry.append(head, words);
        entry.addEventListener("click", () => {
          model.set("cluster", k === selected ? -1 : k);
          model.save_changes();
        });
        return entry;
      }),
    );
  }

  function placeBands(k: number): void {
    const place = (band: HTMLElement, labels: number[], vertical: boolean) => {
      const first = labels.indexOf(k), count = labels.filter((c) => c === k).length;
      band.style.display = k >= 0 && count ? "block" : "none";
      const [start, size] = [`${(100 * first) / labels.length}%`, `${(100 * count) / labels.length}%`];
      Object.assign(band.style, vertical ? { top: start, height: size, left: "0", right: "0" }
        : { left: start, width: size, top: "0", bottom: "0" });
    };
    place(rowBand, model.get("unit_clusters"), true);
    place(columnBand, model.get("token_clusters"), false);
  }

  /** Hover: the unit, token and response under the pointer (the token as text). */
  function onHover(ev: MouseEvent): void {
    const units = model.get("units"), tokens = model.get("tokens");
    const box = canvas.getBoundingClientRect();
    const fx = (ev.clientX - box.left) / box.width, fy = (ev.clientY - box.top) / box.height;
    if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) {
      readout.textContent = "";
      return;
    }
    const row = Math.floor(fy * units.length), column = Math.floor(fx * tokens.length);
    const value = floatsOf(model.get("buffer"))[column * units.length + row];
    readout.textContent = `unit ${units[row]} · ${visibleToken(tokens[column])} · ${formatValue(value)}`;
  }
  canvas.addEventListener("mousemove", onHover);
  canvas.addEventListener("mouseleave", () => (readout.textContent = ""));

  const events = ["change:buffer", "change:units", "change:tokens", "change:top_tokens", "change:cluster"];
  for (const name of events) model.on(name, draw);
  draw();
  return () => {
    for (const name of events) model.off(name, draw);
  };
}
