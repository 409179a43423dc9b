// Patterns across a dataset (LSTMVis select-and-match, RNNVis unit-token clusters) in the browser:
//
// - createSelectTool: the Explorer's hypothesis selection. Dragging over the heatmap brushes a
//   range of steps; a threshold slider (with a live count) picks the units that are on (> θ)
//   over the whole range and off at the step just before and after it, the same rule as
//   rnnwidgets/patterns.py's select_units. Traits: brush [start, end), threshold, uid (marks the
//   Explorer's root, so a match or cluster clicked elsewhere can bring it into view); the kernel
//   sets highlight (units to compare, e.g. a co-cluster's). θ is drawn on the unit lines.
// - renderMatches: the Match panel, one row per match: where it is, its score, its tokens
//   aligned on the run's first step with the selected units' heatmap under them; a click selects
//   the row, asks the kernel to open it and brings the linked Explorer into view.
// - renderCoclusters: the units x tokens response matrix ordered by cluster, labelled (unit ids,
//   tokens, thinned when dense), with its legend and lines between the groups, and each unit
//   cluster's ranked tokens; a click on a cluster selects it (the kernel highlights its units).
//
// Step ranges are half-open everywhere, as in Python and the DataFrame: [start, end) holds
// steps start .. end - 1, written "[start, end)".
//
// Stable DOM hooks: .rw-select (.rw-threshold input, .rw-select-count), .rw-brush (the brushed
// range over the heatmap), .rw-threshold-line (θ over the unit lines), .rw-matches (.rw-match
// rows, .rw-match-selected, .rw-match-score, .rw-match-tokens, .rw-match-heatmap),
// .rw-coclusters (.rw-cocluster-matrix canvas, .rw-cocluster-units / -tokens axes,
// .rw-cocluster-separator lines, .rw-legend, .rw-cluster entries). Tokens: textContent only.
import type { AnyModel } from "@anywidget/types";
import { CHAR_PX, LINE_PX, X_TICK_LEFT, createAxis, niceStride, ticks } from "./axes";
import { pageBackground, setBackground } from "./colormap";
import { MESSAGE, floatsOf } from "./decode";
import { createLegend, formatValue, paintHeatmap } from "./heatmap";
import type { Actions, ExplorerState, Quantity, Scale } from "./state";
import { selectedQuantity, stepNumber, valueAt } from "./state";
import { THEME_VARIABLES } from "./style";
import { visibleToken } from "./tokens";
import { AXES_EVENT, yOf } from "./units";
import { stepRange } from "./timeaxis";
import { coalesced, element } from "./dom";
import { sheetMarker } from "./sheet";


// The pattern views' own rules (the Explorer's stylesheet is style.ts's): theme colours only.
const PATTERNS_CSS = `
.rw-explorer .rw-brush { position: absolute; top: 0; bottom: 0; display: none; pointer-events: none;
  background: rgba(255, 193, 7, 0.28); border-left: 2px dashed var(--rw-strong); border-right: 2px dashed var(--rw-strong); }
.rw-explorer .rw-threshold-line { position: absolute; left: 0; right: 0; height: 0; pointer-events: none;
  border-top: 1px dashed var(--rw-strong); }
.rw-explorer .rw-threshold-line span { position: absolute; right: 2px; bottom: 1px; font: 11px var(--rw-mono);
  background: var(--rw-bg); color: var(--rw-fg); padding: 0 2px; line-height: 12px; }
.rw-matches, .rw-coclusters { ${THEME_VARIABLES}
  color: var(--rw-fg); font: 12px var(--jp-ui-font-family, sans-serif); }
.rw-matches { display: flex; flex-direction: column; gap: 2px; max-height: 460px; overflow: auto; }
.rw-matches .rw-match-head { display: flex; flex-direction: column; gap: 3px; font-size: 11px; }
.rw-matches .rw-match-columns { font: 12px var(--rw-mono); white-space: pre; padding: 2px 6px;
  border-bottom: 1px solid var(--rw-line); }
.rw-matches .rw-match { display: flex; gap: 8px; align-items: flex-start; cursor: pointer; padding: 3px 4px;
  border: 2px solid transparent; border-radius: 3px; }
.rw-matches .rw-match:hover { border-color: var(--rw-line); }
.rw-matches .rw-match-selected, .rw-matches .rw-match-selected:hover { border-color: var(--rw-strong); background: var(--rw-faint); }
.rw-matches .rw-match-meta { font: 12px var(--rw-mono); flex: none; width: 26ch; white-space: pre; }
.rw-matches .rw-match-tokens { display: flex; font-family: var(--rw-mono); }
.rw-matches .rw-match-tokens span { text-align: center; overflow: hidden; white-space: pre; }
.rw-matches .rw-match-run { background: rgba(255, 193, 7, 0.35); box-shadow: inset 0 -2px 0 var(--rw-strong); }
.rw-coclusters .rw-cocluster-body { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start; }
.rw-coclusters .rw-cocluster-left { flex: 1 1 420px; min-width: 0; display: flex; flex-direction: column; gap: 6px; }
.rw-coclusters .rw-cocluster-plot { display: grid; grid-template-columns: max-content minmax(0, 1fr); column-gap: 4px; }
.rw-coclusters .rw-axis { position: relative; font: 11px var(--rw-mono); }
.rw-coclusters .rw-axis .rw-tick { position: absolute; white-space: pre; line-height: 1; }
.rw-coclusters .rw-cocluster-units .rw-tick { right: 0; transform: translateY(-50%); }
.rw-coclusters .rw-cocluster-tokens { height: 16px; }
.rw-coclusters .rw-cocluster-tokens .rw-tick { bottom: 2px; transform: translateX(-50%); ${X_TICK_LEFT} }
.rw-coclusters .rw-axis-title { font-size: 11px; white-space: nowrap; }
.rw-coclusters .rw-cocluster-frame { position: relative; }
.rw-coclusters .rw-cocluster-matrix { display: block; width: 100%; image-rendering: pixelated; }
.rw-coclusters .rw-cocluster-separator { position: absolute; pointer-events: none; background: var(--rw-strong); }
.rw-coclusters .rw-cluster-band { position: absolute; display: none; pointer-events: none;
  outline: 3px solid var(--rw-strong); outline-offset: -1px; }
.rw-coclusters .rw-cocluster-readout { font: 11px var(--rw-mono); white-space: pre; min-height: 1.2em; }
.rw-coclusters .rw-cluster-list { flex: 0 1 20em; display: flex; flex-direction: column; gap: 4px; min-width: 14em; }
.rw-coclusters .rw-cluster { cursor: pointer; padding: 3px 6px; border: 2px solid transparent; border-radius: 3px; }
.rw-coclusters .rw-cluster:hover { border-color: var(--rw-line); }
.rw-coclusters .rw-cluster[aria-pressed="true"] { border-color: var(--rw-strong); background: var(--rw-faint); }
.rw-coclusters .rw-cluster-words { font-family: var(--rw-mono); }
.rw-coclusters .rw-cluster-units { font: 11px var(--rw-mono); }
.rw-coclusters .rw-legend { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; font-size: 11px; }
.rw-legend-scale { display: inline-flex; align-items: center; gap: 6px; white-space: nowrap; }
`;

/** The colour bar with its two ends and the NaN swatch in one unbreakable group: a wrapping legend
 * (a narrow cell) otherwise put "0.900" on the next line, away from the bar's end it names. */
export function keepScaleTogether(legend: HTMLElement): HTMLElement | null {
  const bar = legend.querySelector("canvas");
  if (!bar) return null;
  const hi = bar.nextElementSibling, swatch = hi?.nextElementSibling;
  const parts = [bar.previousElementSibling, bar, hi, swatch, swatch?.nextElementSibling];
  const group = element("span", "rw-legend-scale");
  bar.before(group);
  group.append(...parts.filter((p): p is Element => p != null));
  return group;
}

/** The marker that brings PATTERNS_CSS to a view's page: one sheet per page (sheet.ts). */
function patternsStyle(): HTMLElement {
  return sheetMarker("rw-patterns", PATTERNS_CSS);
}

/** Body attributes JupyterLab sets when the theme changes (heatmap_panel.ts watches the same). */
const THEME_ATTRIBUTES = ["data-jp-theme-name", "data-jp-theme-light"];

/** Calls `redraw` after a theme change, with the diverging map centred on the new background. */
function onThemeChange(el: HTMLElement, redraw: () => void): () => void {
  let on = "";
  const check = () => {
    const bg = pageBackground(el.isConnected ? el : document.documentElement);
    if (bg === on) return;
    on = bg;
    setBackground(bg);
    redraw();
  };
  const watch = typeof MutationObserver === "undefined" ? null : new MutationObserver(check);
  watch?.observe(document.body, { attributes: true, attributeFilter: THEME_ATTRIBUTES });
  check();
  return () => watch?.disconnect();
}

/**
 * Brings the Explorer marked `uid` into view unless its heatmap already is: of its views on the
 * page (an Explorer may be shown in several cells), the one nearest `from`. Returns it.
 */
export function revealExplorer(uid: string, from: HTMLElement): HTMLElement | null {
  if (!uid) return null;
  const views = [...document.querySelectorAll<HTMLElement>(".rw-explorer")].filter((e) => e.dataset.rwUid === uid);
  if (!views.length) return null;
  const here = from.getBoundingClientRect().top;
  const inView = (e: HTMLElement) => {
    const r = (e.querySelector(".rw-heatmap") ?? e).getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
  };
  const shown = views.find(inView);
  if (shown) return shown;
  const nearest = views.reduce((a, b) =>
    Math.abs(b.getBoundingClientRect().top - here) < Math.abs(a.getBoundingClientRect().top - here) ? b : a);
  nearest.scrollIntoView({ block: "start" });
  return nearest;
}

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
  uid: string; // this Explorer's id on the page (MatchView and CoClusterView name it to reveal it)
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
  el.append(patternsStyle());
  const root = box.closest<HTMLElement>(".rw-explorer");
  if (root) root.dataset.rwUid = model.get("uid") ?? "";
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
  // θ over the unit lines, on the left axis (units.ts: the selected unit's own range; lineAxes)
  const thetaLine = div("rw-threshold-line");
  const thetaLabel = document.createElement("span");
  thetaLine.append(thetaLabel);

  let last: ExplorerState | null = null;
  let shownFor = ""; // what the count line was computed for

  function brush(): [number, number] | null {
    const b = model.get("brush");
    return b && b.length === 2 && b[0] < b[1] ? [b[0], b[1]] : null;
  }

  function recount(state: ExplorerState, announce: boolean): void {
    const range = brush();
    const threshold = model.get("threshold") ?? 0;
    const key = `${state.layer}/${state.quantity}/${state.length}/${range}/${threshold}/${selectedQuantity(state).t0 ?? 0}` +
      `/${state.firstStep ?? 0}`;
    drawThreshold(state);
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
    // said as the model numbers its steps (a window of steps, rw.trace(steps=...), from its first)
    const said = (a: number, b: number) => stepRange(stepNumber(state, a), stepNumber(state, b));
    if (Math.max(0, range[0] - 1) < t0 || Math.min(state.length, range[1] + 1) > t0 + q.steps) {
      count.textContent = `steps ${said(range[0], range[1])}: scrub there to count the units (steps ${said(t0, t0 + q.steps)} are loaded)`;
      return;
    }
    const units = selectUnits(q, range[0], range[1], threshold, state.length);
    const named = units.slice(0, LISTED).join(", ") + (units.length > LISTED ? ", …" : "");
    count.textContent = `${units.length} unit${units.length === 1 ? "" : "s"} on over steps ${said(range[0], range[1])}` +
      ` and off around${units.length ? `: ${named}` : ""}`;
    if (announce && units.length) actions.setUnits(units);
  }

  /** θ as a dashed line across the unit lines' plot at its value, labelled: once a selection is
   * under way (steps brushed or θ moved), and not off the plot's scale. */
  let thetaFor = "";
  let thetaMoved = false;
  function drawThreshold(state: ExplorerState): void {
    const plot = root?.querySelector<HTMLElement>(".rw-units-plot");
    if (!plot) return;
    if (thetaLine.parentElement !== plot) {
      plot.append(thetaLine);
      plot.addEventListener(AXES_EVENT, () => last && drawThreshold(last)); // the lines' axis changed
    }
    const q = selectedQuantity(state);
    const threshold = model.get("threshold") ?? 0;
    const height = Number.parseFloat(plot.style.height) || plot.getBoundingClientRect().height; // (units.ts sets it; no layout read)
    const wanted = thetaMoved || brush() !== null;
    const lo = Number(plot.dataset.lo ?? q.vmin), hi = Number(plot.dataset.hi ?? q.vmax); // units.ts: the left axis as drawn
    const key = `${lo}/${hi}/${threshold}/${height}/${wanted}`;
    if (key === thetaFor) return;
    thetaFor = key;
    const inside = threshold >= lo && threshold <= hi;
    thetaLine.style.display = inside && wanted ? "" : "none";
    thetaLine.style.top = `${yOf(threshold, lo, hi, height)}px`;
    thetaLabel.textContent = `θ = ${formatValue(threshold)}`;
    thetaLine.title = `the selection threshold θ on the left axis: a unit is on above this line`;
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
    thetaMoved = true;
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
  const onThreshold = () => {
    thetaMoved = true;
    onRemote();
  };
  model.on("change:brush", onRemote);
  model.on("change:threshold", onThreshold);

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
      model.off("change:threshold", onThreshold);
      thetaLine.remove();
    },
  };
}

// ---- the Match panel ----------------------------------------------------------------------------
export interface MatchRow {
  sequence: number;
  start: number; // the run [start, end) in its sequence
  end: number;
  score: number; // in [0, 1]: patterns.py's match score
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
  quantity: string; // what the heatmaps show ("c of lstm.l0")
  selected: number; // the row opened in the Explorer, -1 for none
  explorer_uid: string; // the linked Explorer's uid: brought into view when a row is opened
}

const CELL_W = 14; // px per step: a token cell and a heatmap column

/** A match's place and score as its row writes them: "#12  [25, 29)  0.75". */
export function matchMeta(row: MatchRow): string {
  return `#${String(row.sequence).padEnd(8)} ${stepRange(row.start, row.end).padEnd(11)} ${row.score.toFixed(2)}`;
}

export function renderMatches(model: AnyModel<MatchesModel>, el: HTMLElement): () => void {
  const root = div("rw-matches", el);
  root.setAttribute("role", "listbox");
  // Above the rows: what the steps and the score mean, the heatmaps' colours, then the column titles.
  const head = div("rw-match-head");
  const explain = element("div", "rw-match-explain");
  const legend = createLegend();
  const what = element("span", "rw-legend-what");
  legend.el.prepend(what);
  keepScaleTogether(legend.el);
  const columns = element("div", "rw-match-columns");
  columns.textContent = `${"sequence".padEnd(9)} ${"steps".padEnd(11)} score   tokens (the match shaded)`;
  head.append(explain, legend.el, columns);
  const list = div("rw-match-list");

  function draw(): void {
    const rows = model.get("rows") ?? [];
    const units = model.get("units") ?? [];
    const data = floatsOf(model.get("buffer"));
    const context = model.get("context");
    const selected = model.get("selected") ?? -1;
    root.replaceChildren(patternsStyle(), head, list);
    list.replaceChildren();
    explain.textContent = "steps [start, end): end excluded, as in Python and the DataFrame. score: 1 when exactly " +
      "the selected units switch on and off there, over as many steps as the selection; lower when some do not, " +
      "others switch too, or the length differs.";
    what.textContent = `under each: ${model.get("quantity") || "the values"} of unit${units.length === 1 ? "" : "s"} ` +
      `${units.join(", ")} (one row each),`;
    legend.draw({ name: "", units: 1, steps: 1, scale: model.get("scale"), vmin: model.get("vmin"), vmax: model.get("vmax"),
                  data: new Float32Array(1) });
    if (!rows.length) {
      div("rw-match-empty", list).textContent = "no matches";
      return;
    }
    rows.forEach((row, i) => {
      const entry = div(`rw-match${i === selected ? " rw-match-selected" : ""}`, list);
      entry.dataset.index = String(i);
      entry.setAttribute("role", "option");
      entry.setAttribute("aria-selected", String(i === selected));
      entry.title = `sequence ${row.sequence}, steps ${stepRange(row.start, row.end)}, score ${row.score.toFixed(3)}: ` +
        "click to open it in the Explorer";
      const meta = document.createElement("span");
      meta.className = "rw-match-meta";
      meta.textContent = matchMeta(row);
      const body = div("rw-match-body");
      entry.append(meta, body);
      body.style.paddingLeft = `${(context - row.before) * CELL_W}px`; // align every run's first step
      const tokens = div("rw-match-tokens", body);
      for (let t = 0; t < row.steps; t++) {
        const cell = document.createElement("span");
        cell.style.width = `${CELL_W}px`;
        if (t >= row.before && t < row.before + row.end - row.start) cell.className = "rw-match-run";
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
      entry.addEventListener("click", () => open(i, entry));
    });
  }

  /** A click: the row selected at once (the kernel confirms it), the match opened, its Explorer shown. */
  function open(i: number, entry: HTMLElement): void {
    for (const other of list.querySelectorAll<HTMLElement>(".rw-match")) {
      const on = other === entry;
      other.classList.toggle("rw-match-selected", on);
      other.setAttribute("aria-selected", String(on));
    }
    model.send({ type: MESSAGE.open, row: i });
    revealExplorer(model.get("explorer_uid") ?? "", root);
  }

  const events = ["change:rows", "change:buffer", "change:units", "change:selected", "change:quantity"];
  const onChange = coalesced(draw);
  for (const name of events) model.on(name, onChange);
  const stopWatching = onThemeChange(root, () => draw());
  return () => {
    for (const name of events) model.off(name, onChange);
    stopWatching();
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
  what: string; // what a cell's colour is, in words ("mean change of c at the token")
  explorer_uid: string; // the linked Explorer's uid: brought into view when a cluster is selected
}

const CLUSTER_TOKENS = 15; // tokens listed per cluster
const CLUSTER_UNITS = 24; // unit ids listed per cluster
const MATRIX_MAX_H = 360; // px: the matrix's height at most (rows of 3..16 px)
const TOKEN_CHARS = 6; // a token label's characters at most (the whole one at the pointer)

/** Where consecutive items change group: the item indices that start a new group (after the first). */
export function groupStarts(labels: number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < labels.length; i++) if (labels[i] !== labels[i - 1]) out.push(i);
  return out;
}

/** A row's height in px for `units` rows: 16 when they fit MATRIX_MAX_H, down to 3. */
export function matrixRowPx(units: number): number {
  return Math.max(3, Math.min(16, Math.floor(MATRIX_MAX_H / Math.max(1, units))));
}

/** The labels of `count` items `pitch` px apart, each needing `need` px: every item when they
 * fit, else every 2nd, 5th, 10th ... (axes.ts's strides). */
export function thinned(count: number, pitch: number, need: number, text: (i: number) => string): { at: number; text: string }[] {
  return ticks(count, niceStride(pitch, need)).map((i) => ({ at: i, text: text(i) }));
}

/** A token short enough for a column label. */
export function shortToken(token: string): string {
  const shown = visibleToken(token);
  return shown.length > TOKEN_CHARS ? `${shown.slice(0, TOKEN_CHARS - 1)}…` : shown;
}

export function renderCoclusters(model: AnyModel<CoclustersModel>, el: HTMLElement): () => void {
  const root = div("rw-coclusters", el);
  root.append(patternsStyle());
  const body = div("rw-cocluster-body", root);
  const left = div("rw-cocluster-left", body);
  // The matrix with its axes: unit ids left of its rows, tokens over its columns.
  const plot = div("rw-cocluster-plot", left);
  const corner = element("span", "rw-axis-title");
  corner.textContent = "unit ↓ token →";
  const tokenAxis = createAxis("rw-cocluster-tokens", "x");
  const unitAxis = createAxis("rw-cocluster-units", "y");
  const frame = div("rw-cocluster-frame");
  const canvas = element("canvas", "rw-cocluster-matrix");
  canvas.setAttribute("role", "img");
  frame.append(canvas);
  // The selected cluster's rows (units) and columns (tokens): each a contiguous band, as both are ordered by cluster.
  const rowBand = div("rw-cluster-band rw-cluster-rows", frame);
  const columnBand = div("rw-cluster-band rw-cluster-columns", frame);
  const separators = div("rw-cocluster-separators", frame);
  plot.append(corner, tokenAxis.el, unitAxis.el, frame);
  const legend = createLegend();
  const what = element("span", "rw-legend-what");
  const scaling = element("span", "rw-legend-scaling");
  legend.el.prepend(what);
  legend.el.append(scaling);
  keepScaleTogether(legend.el);
  left.append(legend.el);
  const caption = div("rw-cocluster-caption", left);
  caption.className = "rw-cocluster-caption rw-caption";
  const readout = div("rw-cocluster-readout", left);
  const list = div("rw-cluster-list", body);
  let width = 0; // the matrix's width in px, once laid out

  function drawAxes(): void {
    const units = model.get("units"), tokens = model.get("tokens");
    const rowPx = matrixRowPx(units.length);
    unitAxis.set(units.length, thinned(units.length, rowPx, LINE_PX, (i) => String(units[i])));
    unitAxis.el.style.width = `${String(Math.max(0, ...units)).length}ch`;
    const pitch = (width || frame.clientWidth || 400) / Math.max(1, tokens.length);
    const chars = Math.min(TOKEN_CHARS, Math.max(1, ...tokens.map((t) => visibleToken(t).length)));
    tokenAxis.set(tokens.length, thinned(tokens.length, pitch, chars * CHAR_PX + 8, (j) => shortToken(tokens[j])));
  }

  function drawSeparators(): void {
    const lines = [
      ...groupStarts(model.get("unit_clusters")).map((i) => ({ i, n: model.get("units").length, across: true })),
      ...groupStarts(model.get("token_clusters")).map((i) => ({ i, n: model.get("tokens").length, across: false })),
    ];
    separators.replaceChildren(...lines.map(({ i, n, across }) => {
      const line = element("div", "rw-cocluster-separator");
      const at = `calc(${((100 * i) / n).toFixed(4)}% - 1px)`;
      Object.assign(line.style, across ? { top: at, left: "0", right: "0", height: "2px" }
        : { left: at, top: "0", bottom: "0", width: "2px" });
      return line;
    }));
  }

  function draw(): void {
    const units = model.get("units"), tokens = model.get("tokens");
    const vmax = model.get("vmax") || 1;
    const q: Quantity = {
      name: "response", units: units.length, steps: tokens.length, scale: "diverging", vmin: -vmax, vmax,
      data: floatsOf(model.get("buffer")),
    };
    canvas.width = Math.max(1, tokens.length);
    canvas.height = Math.max(1, units.length);
    canvas.style.height = `${matrixRowPx(units.length) * Math.max(1, units.length)}px`;
    const ctx = canvas.getContext("2d");
    if (ctx && units.length && tokens.length) {
      const img = ctx.createImageData(tokens.length, units.length);
      paintHeatmap(q, null, tokens.length, new Uint32Array(img.data.buffer));
      ctx.putImageData(img, 0, 0);
    }
    legend.draw(q);
    what.textContent = `colour: ${model.get("what") || "response"} (per unit and token),`;
    scaling.textContent = `scaled symmetrically about 0 to the largest |value|, ${formatValue(vmax)}; ` +
      "lines part the clusters";
    placeBands(model.get("cluster"));
    drawSeparators();
    drawAxes();
    const clusters = model.get("top_tokens").length;
    caption.textContent = `${units.length} units (rows) × ${tokens.length} tokens (columns), each ordered into ` +
      `${clusters} clusters`;
    canvas.setAttribute("aria-label", `co-clustered response matrix: ${caption.textContent}`);
    const selected = model.get("cluster");
    const unitClusters = model.get("unit_clusters");
    list.replaceChildren(
      ...model.get("top_tokens").map((top, k) => {
        const entry = div("rw-cluster");
        entry.dataset.cluster = String(k);
        entry.setAttribute("role", "button");
        entry.setAttribute("aria-pressed", String(k === selected));
        entry.title = k === selected ? "click to clear" : "click to mark its units in the Explorer";
        const members = units.filter((_, i) => unitClusters[i] === k);
        const size = members.length;
        const head = document.createElement("b");
        head.textContent = `cluster ${k} · ${size} unit${size === 1 ? "" : "s"}: `;
        const words = document.createElement("span");
        words.className = "rw-cluster-words";
        words.textContent = top.slice(0, CLUSTER_TOKENS).map(visibleToken).join(" ") + (top.length > CLUSTER_TOKENS ? " …" : "");
        const which = element("div", "rw-cluster-units");
        const listed = members.slice(0, CLUSTER_UNITS).join(", ") + (size > CLUSTER_UNITS ? ", …" : "");
        which.textContent = `units ${listed}`;
        entry.append(head, words, which);
        entry.addEventListener("click", () => {
          const next = k === selected ? -1 : k;
          model.set("cluster", next);
          model.save_changes();
          if (next >= 0) revealExplorer(model.get("explorer_uid") ?? "", root);
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
  const onLeave = () => (readout.textContent = "");
  canvas.addEventListener("mousemove", onHover);
  canvas.addEventListener("mouseleave", onLeave);

  // The token labels follow the matrix's width.
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    const w = Math.round(frame.clientWidth);
    if (w <= 0 || w === width) return;
    width = w;
    drawAxes();
  });
  resize?.observe(frame);
  const events = ["change:buffer", "change:units", "change:tokens", "change:top_tokens", "change:cluster", "change:what"];
  for (const name of events) model.on(name, draw);
  const stopWatching = onThemeChange(root, draw);
  return () => {
    for (const name of events) model.off(name, draw);
    stopWatching();
    resize?.disconnect();
  };
}
