// rw.compare's view (rnnwidgets/widgets/compare.py): two runs of one batch element. For the chosen
// layer and quantity, the heatmaps of A, B and A − B on one time axis (the Explorer's heatmap,
// colour maps, axes and token strip), the first divergence marked on all three (the first step
// where any unit differs by more than τ: rnnwidgets/comparison.py's rule, applied here so τ
// needs no kernel), a "differing units only" filter, and both runs' input and predictions at t.
// Runs of different lengths are aligned at their start; the steps past a run's end are greyed,
// hatched and labelled. Everything a scrub or a pick changes is drawn here from the payload, so
// the view works in a saved notebook and an exported file; the kernel hears the step once a
// scrub rests (transport.ts), and a pick at once.
//
// Stable DOM hooks (browser tests rely on them):
//   .rw-compare        the root; focusable: ←/→ step, Home/End jump, space plays, ↑/↓ unit
//   .rw-cmp-heading    the `heading` trait's line (hidden when empty), .rw-cmp-close its × (with
//                      `closable`): hides the view at once (class rw-cmp-closed on its element)
//                      and sets `closed` for the kernel
//   .rw-transport      Play .rw-play, the step slider .rw-slider, .rw-step (transport.ts)
//   .rw-layer, .rw-quantity   <select>s      .rw-tau  τ (number input)   .rw-differing  the filter
//   .rw-divergence     the first divergence, in words
//   .rw-cmp-at-a, .rw-cmp-at-b   each run at t: .rw-token-at, .rw-predictions
//   .rw-cmp-panel-a / -b / -diff   each heatmap's panel: .rw-cmp-title, .rw-tokens (A and B),
//                      .rw-row-axis, .rw-heatmap-box (.rw-heatmap, .rw-cursor), .rw-cmp-marker
//                      (the divergence's column), .rw-cmp-unmatched (steps past the run's end)
//   .rw-step-axis      the shared step ticks    .rw-legend (.rw-cmp-legend-ab, .rw-cmp-legend-diff)
//
// Model traits: index (CompareIndex) + buffer (float32 bytes), t, unit, layer, quantity, tau,
// differing_only, playing, interval, heading, closable, closed.
import type { AnyModel } from "@anywidget/types";
import { LINE_PX, createAxis, niceStride, stepLabels, ticks } from "./axes";
import { lutVersion, pageBackground, setBackground } from "./colormap";
import { floatsOf } from "./decode";
import { element } from "./dom";
import { type Heatmap, createHeatmap, createLegend, formatValue } from "./heatmap";
import { PALETTE_EVENT } from "./heatmap_panel";
import { stepKeys, suppressNotebookShortcuts, takeKeys } from "./keys";
import { predictionsText } from "./predictions";
import { hoverBoxes } from "./readout";
import type { Actions, ExplorerState, LayerData, LayerKind, Panel, Predictions, Quantity, Recurrence, Scale } from "./state";
import { sheetMarker } from "./sheet";
import { EXPLORER_CSS } from "./style";
import { showToken } from "./token_at";
import { createTokens } from "./tokens";
import { createTransport, playerOf, type TransportModel } from "./transport";

/** One quantity of a layer as payload.compare_payload sends it: offsets of A, B and A − B. */
export interface CompareQuantityEntry {
  name: string;
  units: number;
  scale: Scale;
  vmin: number;
  vmax: number;
  a: number;
  b: number;
  diff: number;
  dmax: number; // the largest |A − B|: the difference's colour limits ±dmax
}

export interface PredictionsEntry {
  k: number;
  steps: number;
  ids: number;
  probs: number;
  labels: string[];
}

export interface CompareIndex {
  names: [string, string];
  layers: {
    name: string;
    kind: LayerKind;
    reverse: boolean;
    recurrence: Recurrence;
    steps: number; // the longer run's valid steps: the shared time axis
    lengths: [number, number]; // A's and B's valid steps
    tokens: [string[] | null, string[] | null];
    quantities: CompareQuantityEntry[];
  }[];
  predictions: [PredictionsEntry | null, PredictionsEntry | null];
  all_layers?: string[]; // every layer compared; `layers` holds them all, or (over the budget) the shown one
  first_step?: number; // the model's number of step 0: both runs' window start (rw.trace(steps=...)); 0 when absent
}

export interface CompareModel extends TransportModel {
  index: CompareIndex;
  buffer: DataView;
  unit: number;
  layer: string;
  quantity: string;
  tau: number;
  differing_only: boolean;
  heading?: string;
  closable?: boolean;
  closed?: boolean;
}

/** A quantity of both runs: A and B (one colour scale) and A − B (diverging, ±its largest value). */
export interface Pair {
  a: Quantity;
  b: Quantity;
  diff: Quantity;
}

export interface CompareLayer {
  name: string;
  kind: LayerKind;
  reverse: boolean;
  recurrence: Recurrence;
  steps: number;
  lengths: [number, number];
  matched: number; // the steps both runs have
  tokens: [string[] | null, string[] | null];
  quantities: Record<string, Pair>;
}

export interface CompareData {
  names: [string, string];
  layers: CompareLayer[];
  allLayers: string[]; // every layer compared, held here or not
  predictions: [Predictions | null, Predictions | null];
  firstStep: number; // the model's number of step 0 (a window of steps starts at its first): every text says t + firstStep
}

/** The payload's arrays as zero-copy views; a clear error when the index does not fit the buffer. */
export function decodeCompare(index: CompareIndex, floats: Float32Array): CompareData {
  const take = (offset: number, count: number, what: string): Float32Array => {
    if (!(offset >= 0 && offset + count <= floats.length)) {
      throw new Error(`rnnwidgets compare: ${what} expected ${count} values at ${offset}, the buffer holds ${floats.length}`);
    }
    return floats.subarray(offset, offset + count);
  };
  const layers = index.layers.map((l): CompareLayer => {
    const quantities: Record<string, Pair> = Object.create(null); // keyed by the user's names: no prototype
    for (const q of l.quantities) {
      const size = l.steps * q.units;
      const run = (offset: number, side: string): Quantity => ({
        name: q.name, units: q.units, steps: l.steps, data: take(offset, size, `${l.name} ${q.name} ${side}`),
        scale: q.scale, vmin: q.vmin, vmax: q.vmax,
      });
      quantities[q.name] = {
        a: run(q.a, "A"),
        b: run(q.b, "B"),
        diff: { ...run(q.diff, "A − B"), name: `${q.name} A − B`, scale: "diverging", vmin: -q.dmax, vmax: q.dmax },
      };
    }
    return { ...l, matched: Math.min(l.lengths[0], l.lengths[1]), quantities };
  });
  const predictions = index.predictions.map((p) => p && {
    k: p.k, steps: p.steps, labels: p.labels,
    ids: take(p.ids, p.steps * p.k, "prediction ids"), probs: take(p.probs, p.steps * p.k, "prediction probabilities"),
  }) as [Predictions | null, Predictions | null];
  return { names: index.names, layers, allLayers: index.all_layers ?? layers.map((l) => l.name), predictions,
    firstStep: index.first_step ?? 0 };
}

/** Whether a difference counts: |d| > τ, or d not finite (one run blew up). comparison.py's rule. */
function differs(d: number, tau: number): boolean {
  return !(Math.abs(d) <= tau);
}

/** The first of the `matched` steps where any unit of `diff` differs by more than τ; -1 for none. */
export function firstDivergence(diff: Quantity, matched: number, tau: number): number {
  const { data, units } = diff;
  for (let t = 0; t < matched; t++) {
    for (let u = 0; u < units; u++) if (differs(data[t * units + u], tau)) return t;
  }
  return -1;
}

/** The units that differ by more than τ at any of the `matched` steps, in increasing order. */
export function differingUnits(diff: Quantity, matched: number, tau: number): number[] {
  const { data, units } = diff;
  const out: number[] = [];
  for (let u = 0; u < units; u++) {
    for (let t = 0; t < matched; t++) {
      if (differs(data[t * units + u], tau)) {
        out.push(u);
        break;
      }
    }
  }
  return out;
}

/** `q` keeping only the units in `rows` (in that order): what the filter draws. */
export function keepUnits(q: Quantity, rows: number[]): Quantity {
  const data = new Float32Array(q.steps * rows.length);
  for (let t = 0; t < q.steps; t++) {
    for (let r = 0; r < rows.length; r++) data[t * rows.length + r] = q.data[t * q.units + rows[r]];
  }
  return { ...q, units: rows.length, data };
}

/** "1 step", "5 steps". */
export const stepsText = (n: number) => `${n} step${n === 1 ? "" : "s"}`;

/** Percent of the time axis from step `from` to step `to` (columns of `steps`). */
export function span(from: number, to: number, steps: number): { left: string; width: string } {
  const pct = (x: number) => `${((x / Math.max(1, steps)) * 100).toFixed(4)}%`;
  return { left: pct(from), width: pct(Math.max(0, to - from)) };
}

/** What the bar says about the first divergence; steps said as the model numbers them, from `firstStep`. */
export function divergenceText(first: number, tau: number, q: string, matched: number, steps: number, firstStep = 0): string {
  const n = (t: number) => t + firstStep;
  const unmatched = matched < steps ? ` (steps ${n(matched)}–${n(steps - 1)} are in one run only)` : "";
  if (first < 0) return `${q}: no unit differs by more than τ = ${formatValue(tau)} over the ${matched} matched steps${unmatched}`;
  return `${q} first differs at step ${n(first)} (some unit's |A − B| > τ = ${formatValue(tau)})${unmatched}`;
}

const HEIGHT = (rows: number) => Math.min(220, Math.max(84, rows * 12));
const SIDES = ["a", "b", "diff"] as const;
type Side = (typeof SIDES)[number];

const COMPARE_CSS = `${EXPLORER_CSS.replaceAll(".rw-explorer", ".rw-compare")}
.rw-compare .rw-cmp-at { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 4px 16px; }
.rw-compare .rw-cmp-at > div { display: flex; flex-wrap: wrap; gap: 2px 10px; align-items: baseline; min-width: 0; }
.rw-compare .rw-cmp-name { font-weight: 600; }
.rw-compare .rw-cmp-heading { display: flex; align-items: flex-start; gap: 8px; }
.rw-compare .rw-cmp-heading-text { flex: 1 1 auto; min-width: 0; font-weight: 600; font-size: 13px; color: var(--rw-strong); }
.rw-compare .rw-cmp-close { flex: 0 0 auto; line-height: 1; padding: 1px 6px; cursor: pointer; }
.rw-compare .rw-cmp-changed { font-weight: 600; color: var(--rw-error); }
.rw-compare .rw-cmp-plot { display: grid; grid-template-columns: max-content minmax(0, 1fr); column-gap: 4px; row-gap: 2px; }
.rw-compare .rw-cmp-title { font-weight: 600; margin-top: 6px; }
.rw-compare .rw-cmp-gutter { display: grid; grid-template-columns: max-content max-content; column-gap: 4px; }
.rw-compare .rw-cmp-marker { position: absolute; top: 0; height: 100%; pointer-events: none; display: none;
  box-sizing: border-box; border-left: 2px dashed var(--rw-strong); border-right: 2px dashed var(--rw-strong); }
.rw-compare .rw-cmp-unmatched { position: absolute; top: 0; height: 100%; pointer-events: none; display: none;
  box-sizing: border-box; overflow: hidden; border-left: 1px solid var(--rw-strong);
  background: repeating-linear-gradient(135deg, transparent 0 5px, var(--rw-line) 5px 6px); }
.rw-compare .rw-cmp-unmatched span { position: absolute; top: 2px; left: 3px; font-size: 11px; white-space: nowrap;
  padding: 0 3px; background: var(--rw-bg); color: var(--rw-fg); }
.rw-compare .rw-cmp-flag-row { position: relative; height: 16px; }
.rw-compare .rw-cmp-flag { position: absolute; top: 0; white-space: nowrap; font-size: 11px; line-height: 14px;
  padding: 0 3px; border: 1px dashed var(--rw-strong); background: var(--rw-bg); color: var(--rw-strong); }
.rw-compare .rw-tau { width: 7em; }
.rw-compare .rw-cmp-note { color: var(--rw-fg); font-style: italic; }
`;

interface HeatPanel {
  side: Side;
  el: HTMLElement; // .rw-cmp-panel-<side>: its rows of the plot grid (display: contents)
  title: HTMLElement;
  tokens: Panel | null;
  rowAxis: ReturnType<typeof createAxis>;
  heatmap: Heatmap;
  marker: HTMLElement;
  unmatched: HTMLElement;
  unmatchedLabel: HTMLElement;
  readout: HTMLElement;
}

/** The heading line (the `heading` trait, as text) and, with `closable`, a × that hides `host`
 * (the view's element: a saved page closes it too) and tells the kernel (`closed`). */
export function createHeading(model: AnyModel<CompareModel>, host: HTMLElement) {
  const el = element("div", "rw-cmp-heading");
  const text = element("div", "rw-cmp-heading-text", el);
  const close = element("button", "rw-cmp-close", el);
  close.textContent = "×";
  close.title = "close this comparison";
  close.setAttribute("aria-label", "close this comparison");
  const update = () => {
    text.textContent = model.get("heading") ?? "";
    close.style.display = model.get("closable") ? "" : "none";
    el.style.display = text.textContent || model.get("closable") ? "" : "none";
    host.style.display = model.get("closed") ? "none" : "";
    host.classList.toggle("rw-cmp-closed", Boolean(model.get("closed")));
  };
  close.addEventListener("click", (event) => {
    event.stopPropagation();
    model.set("closed", true);
    model.save_changes();
    update();
  });
  const names = ["change:heading", "change:closable", "change:closed"];
  for (const name of names) model.on(name, update);
  update();
  return { el, destroy: () => { for (const name of names) model.off(name, update); } };
}

export function renderCompare(model: AnyModel<CompareModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-compare", el);
  root.append(sheetMarker("rw-compare", COMPARE_CSS)); // one sheet per page (sheet.ts)
  let data: CompareData = { names: ["A", "B"], layers: [], allLayers: [], predictions: [null, null], firstStep: 0 };
  const n = (t: number) => t + data.firstStep; // a step as the model numbers it (a window starts at its first)
  const layerOf = () => data.layers.find((l) => l.name === model.get("layer")) ?? data.layers[0];
  const pairOf = (l: CompareLayer) => l.quantities[model.get("quantity")] ?? Object.values(l.quantities)[0];
  const player = playerOf(model, () => Math.max(0, (layerOf()?.steps ?? 1) - 1));
  const transport = createTransport(model, player);
  const heading = createHeading(model, el);
  root.append(heading.el, transport.el);

  // The bar: pickers, τ, the filter, the divergence in words.
  const bar = element("div", "rw-bar", root);
  const layerSelect = element("select", "rw-layer", bar);
  const quantitySelect = element("select", "rw-quantity", bar);
  const tauLabel = element("label", "rw-tau-label", bar);
  tauLabel.append("τ ");
  const tau = element("input", "rw-tau", tauLabel);
  tau.type = "number";
  tau.min = "0";
  tau.step = "any";
  tau.title = "a unit differs at a step when |A − B| > τ";
  const filterLabel = element("label", "rw-differing-label", bar);
  const filter = element("input", "rw-differing", filterLabel);
  filter.type = "checkbox";
  filterLabel.append(" differing units only");
  const divergence = element("span", "rw-divergence", bar);

  // Each run at t: its name, input and predictions, side by side.
  const atRow = element("div", "rw-cmp-at", root);
  const at = (["a", "b"] as const).map((side) => {
    const box = element("div", `rw-cmp-at-${side}`, atRow);
    const name = element("span", "rw-cmp-name", box);
    const token = element("span", "rw-token-at", box);
    token.style.cssText = "font-family: monospace; white-space: pre;";
    const predictions = element("span", "rw-predictions", box);
    return { name, token, predictions };
  });

  // The three heatmaps on one time axis, then the shared step ticks.
  const plot = element("div", "rw-cmp-plot", root);
  const flagRow = element("div", "rw-cmp-flag-row");
  const flag = element("span", "rw-cmp-flag", flagRow);
  plot.append(element("div", ""), flagRow);
  const actions: Actions = {
    setT: (t) => player.setT(t),
    setUnit: (u) => setUnit(u),
    setUnits: () => {},
    setOrder: () => {},
  };
  const panels: HeatPanel[] = SIDES.map((side) => {
    const panel = element("div", `rw-cmp-panel rw-cmp-panel-${side}`, plot);
    panel.style.display = "contents";
    const title = element("div", "rw-cmp-title");
    panel.append(element("div", ""), title);
    let tokens: Panel | null = null;
    if (side !== "diff") {
      tokens = createTokens(actions);
      const tokenTitle = element("div", "rw-axis-title");
      tokenTitle.textContent = "token";
      panel.append(tokenTitle, tokens.el);
    }
    const gutter = element("div", "rw-cmp-gutter", panel);
    const unitTitle = element("div", "rw-axis-title", gutter);
    unitTitle.textContent = "unit";
    unitTitle.style.alignSelf = "start";
    const rowAxis = createAxis("rw-row-axis", "y");
    gutter.append(rowAxis.el);
    const heatmap = createHeatmap({ rowLines: true, height: HEIGHT, onResize: () => drawAxes() });
    panel.append(heatmap.el);
    const marker = element("div", "rw-cmp-marker", heatmap.el);
    const unmatched = element("div", "rw-cmp-unmatched", heatmap.el);
    const unmatchedLabel = element("span", "", unmatched);
    const readout = element("span", "rw-readout", heatmap.el);
    return { side, el: panel, title, tokens, rowAxis, heatmap, marker, unmatched, unmatchedLabel, readout };
  });
  const stepTitle = element("div", "rw-axis-title", plot);
  stepTitle.textContent = "step";
  const stepAxis = createAxis("rw-step-axis", "x");
  plot.append(stepAxis.el);

  const footer = element("div", "rw-footer", root);
  const legends = (["ab", "diff"] as const).map((which) => {
    const legend = createLegend();
    legend.el.classList.add(`rw-cmp-legend-${which}`);
    const what = element("span", "rw-legend-what");
    legend.el.prepend(what);
    footer.append(legend.el);
    return { legend, what };
  });

  // What is drawn now: the selection's rows (units, in order) and where the runs diverge.
  let rows: number[] = [];
  let first = -1;
  let unit = model.get("unit");
  let paintedOn = ""; // the page background the images were painted on
  let paintedWith = -1; // and the colour tables' version (a palette pick changes it)

  function setUnit(u: number): void {
    const l = layerOf();
    if (!l) return;
    unit = Math.min(pairOf(l).a.units - 1, Math.max(0, Math.round(u)));
    drawStep();
    model.set("unit", unit);
    model.save_changes();
  }

  function fillSelect(select: HTMLSelectElement, names: string[], selected: string): void {
    select.replaceChildren(...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      return option;
    }));
    select.value = selected;
  }

  function drawAxes(): void {
    const l = layerOf();
    if (!l) return;
    for (const p of panels) {
      const { h } = p.heatmap.size();
      const labels = ticks(rows.length, niceStride((h || HEIGHT(rows.length)) / Math.max(1, rows.length), LINE_PX));
      p.rowAxis.set(rows.length, labels.map((r) => ({ at: r, text: String(rows[r]) })));
      p.rowAxis.el.style.width = `${String(Math.max(0, ...rows)).length}ch`;
    }
    const { w } = panels[0].heatmap.size();
    if (w > 0) stepAxis.set(l.steps, stepLabels(l.steps, w, data.firstStep));
  }

  /** The state the Explorer's token strip reads, for one run. */
  function stripState(l: CompareLayer, side: 0 | 1, q: Quantity): ExplorerState {
    const layer: LayerData = {
      name: l.name, kind: l.kind, reverse: l.reverse, recurrence: l.recurrence,
      quantities: { [q.name]: q }, steps: l.steps, length: l.lengths[side],
    };
    return {
      t: player.t, unit, units: [unit], order: null, layer: l.name, quantity: q.name, steps: l.steps,
      length: l.lengths[side], tokens: l.tokens[side], inputs: null, layers: [layer], predictions: null,
      firstStep: data.firstStep,
    };
  }

  /** Repaint the images, axes, legends and marks: on a new payload, pick, τ, filter or theme. */
  function drawAll(): void {
    const l = layerOf();
    if (!l) return;
    const pair = pairOf(l);
    paintedOn = pageBackground(root);
    setBackground(paintedOn);
    paintedWith = lutVersion();
    const look = getComputedStyle(root);
    const strong = look.getPropertyValue("--jp-ui-font-color0").trim() || "#000";
    const bg = look.getPropertyValue("--jp-layout-color0").trim() || "#fff";
    fillSelect(layerSelect, data.allLayers, l.name);
    fillSelect(quantitySelect, Object.keys(l.quantities), pair.a.name);
    // a layer of fewer steps or units than the last one shown: the selection kept inside it
    if (player.t > l.steps - 1) player.setT(l.steps - 1);
    unit = Math.min(unit, pair.a.units - 1);
    const tauValue = model.get("tau");
    if (Number(tau.value) !== tauValue) tau.value = String(tauValue);
    filter.checked = model.get("differing_only");
    first = firstDivergence(pair.diff, l.matched, tauValue);
    const differing = differingUnits(pair.diff, l.matched, tauValue);
    const all = Array.from({ length: pair.a.units }, (_, u) => u);
    const only = filter.checked && differing.length > 0;
    rows = only ? differing : all;
    divergence.textContent = divergenceText(first, tauValue, pair.a.name, l.matched, l.steps, data.firstStep) +
      (filter.checked ? ` · ${differing.length ? `${differing.length} of ${all.length} units differ` : "no unit differs: all shown"}` : "");
    const picked = model.get("layer");
    if (picked !== l.name && data.allLayers.includes(picked)) {
      // over its budget the page holds one layer: the kernel sends the one picked (without one, this stays)
      divergence.textContent = `${picked} is not held in this page (it holds ${l.name}): the kernel sends it; ` +
        "a saved page keeps only the layer shown when it was saved";
    }
    const [nameA, nameB] = data.names;
    const lengths: Record<Side, number> = { a: l.lengths[0], b: l.lengths[1], diff: l.matched };
    const titles: Record<Side, string> = {
      a: `${nameA}: ${pair.a.name} of ${l.name}, ${stepsText(l.lengths[0])}`,
      b: `${nameB}: ${pair.a.name} of ${l.name}, ${stepsText(l.lengths[1])}`,
      diff: `${nameA} − ${nameB}`,
    };
    for (const p of panels) {
      const q = only ? keepUnits(pair[p.side], rows) : pair[p.side];
      p.heatmap.setInk(strong, bg);
      p.heatmap.draw(q, null, lengths[p.side]);
      p.title.textContent = titles[p.side];
      p.heatmap.el.setAttribute("aria-label", `heatmap of ${titles[p.side]}: ${rows.length} units × ${l.steps} steps`);
      const end = lengths[p.side];
      p.unmatched.style.display = end < l.steps ? "block" : "none";
      Object.assign(p.unmatched.style, span(end, l.steps, l.steps));
      p.unmatchedLabel.textContent = p.side === "diff" ? "unmatched: one run only"
        : `${p.side === "a" ? nameA : nameB} ${end > 0 ? `ends at step ${n(end - 1)}` : "has no steps"}`;
      p.unmatched.title = p.side === "diff"
        ? `steps ${n(end)}–${n(l.steps - 1)}: only one run has them, so there is no difference`
        : `steps ${n(end)}–${n(l.steps - 1)}: this run has ${end} steps`;
      p.marker.style.display = first >= 0 ? "block" : "none";
      if (first >= 0) Object.assign(p.marker.style, span(first, first + 1, l.steps));
    }
    const hasTokens = l.tokens[0] !== null || l.tokens[1] !== null;
    for (const p of panels) {
      if (!p.tokens) continue;
      p.tokens.el.style.display = hasTokens ? "" : "none";
      (p.tokens.el.previousElementSibling as HTMLElement).style.display = hasTokens ? "" : "none";
    }
    flag.style.display = first >= 0 ? "" : "none";
    flag.textContent = first >= 0 ? `▼ first divergence: step ${n(first)}` : "";
    const f = (first + 0.5) / Math.max(1, l.steps);
    flag.style.left = `${(f * 100).toFixed(4)}%`;
    flag.style.transform = `translateX(${(-f * 100).toFixed(4)}%)`;
    legends[0].what.textContent = `colour: ${pair.a.name} of ${nameA} and ${nameB} (one scale),`;
    legends[0].legend.draw(pair.a);
    legends[1].what.textContent = `${nameA} − ${nameB}: ±its largest value,`;
    legends[1].legend.draw(pair.diff);
    drawAxes();
    drawStep();
  }

  /** What a step or unit move changes: the cursors, the token strips, each run at t. */
  function drawStep(): void {
    const l = layerOf();
    if (!l) return;
    const t = player.t;
    const pair = pairOf(l);
    const row = rows.indexOf(unit);
    transport.update(t, l.steps, l.steps, data.firstStep);
    for (const p of panels) p.heatmap.drawCursor(t, row);
    panels[0].tokens?.update(stripState(l, 0, pair.a));
    panels[1].tokens?.update(stripState(l, 1, pair.b));
    const top: string[] = [];
    for (const [i, side] of ([0, 1] as const).entries()) {
      const a = at[i];
      a.name.textContent = data.names[side];
      const tokens = l.tokens[side];
      a.token.textContent = t >= l.lengths[side] ? `no step ${n(t)}: the run has ${l.lengths[side]}`
        : `input ${tokens && t < tokens.length ? showToken(tokens[t]) : `step ${n(t)}`}`;
      const p = data.predictions[side];
      top.push(p && t < p.steps ? p.labels[p.ids[t * p.k]] : "");
      a.predictions.textContent = p && t < p.steps ? predictionsText(p, t) : p ? "next: (no step)" : "";
    }
    const changed = top[0] !== "" && top[1] !== "" && top[0] !== top[1];
    at[1].predictions.classList.toggle("rw-cmp-changed", changed);
    at[1].predictions.title = changed ? "the best prediction differs from the other run's" : "";
  }

  let loaded: [CompareIndex | null, DataView | null] = [null, null];
  function load(): void {
    const index = model.get("index");
    const buffer = model.get("buffer");
    // (a new payload changes both traits at once: decoded once)
    if (!index?.layers || (loaded[0] === index && loaded[1] === buffer)) return;
    loaded = [index, buffer];
    data = decodeCompare(index, floatsOf(buffer));
    drawAll();
  }

  // Picks and τ go to the model (shared with the kernel) and redraw at once.
  // (Each set fires the model's change event, which redraws: drawAll below.)
  const pick = (name: "layer" | "quantity", select: HTMLSelectElement) => () => {
    model.set(name, select.value);
    const held = data.layers.find((l) => l.name === model.get("layer"));
    if (name === "layer" && held && !(model.get("quantity") in held.quantities)) {
      model.set("quantity", Object.keys(held.quantities)[0]);
    }
    model.save_changes();
  };
  layerSelect.addEventListener("change", pick("layer", layerSelect));
  quantitySelect.addEventListener("change", pick("quantity", quantitySelect));
  tau.addEventListener("change", () => {
    const value = Number(tau.value);
    if (!(value >= 0 && Number.isFinite(value))) {
      tau.value = String(model.get("tau")); // not a τ: the last one stays
      return;
    }
    model.set("tau", value);
    model.save_changes();
  });
  filter.addEventListener("change", () => {
    model.set("differing_only", filter.checked);
    model.save_changes();
  });

  // The pointer: a readout of A, B and A − B at the hovered cell; a click selects it.
  for (const p of panels) {
    const marks = (["cell", "row", "column"] as const).map((name) => {
      const mark = element("div", `rw-hover rw-hover-${name}`, p.heatmap.el);
      return [name, mark] as const;
    });
    const leave = () => {
      p.readout.textContent = "";
      for (const [, mark] of marks) mark.style.display = "none";
    };
    p.heatmap.el.addEventListener("mousemove", (ev) => {
      const l = layerOf();
      const cell = p.heatmap.cellAt(ev);
      if (!cell || !l) return leave();
      const u = rows[cell.row];
      const pair = pairOf(l);
      const value = (side: Side, length: number) => cell.t < length ? formatValue(pair[side].data[cell.t * pair.a.units + u]) : "no step";
      p.readout.textContent = `unit ${u} · step ${n(cell.t)} · ${data.names[0]} ${value("a", l.lengths[0])} · ` +
        `${data.names[1]} ${value("b", l.lengths[1])} · ${data.names[0]} − ${data.names[1]} ${value("diff", l.matched)}`;
      const boxes = hoverBoxes(cell.t, cell.row, l.steps, rows.length);
      for (const [name, mark] of marks) {
        Object.assign(mark.style, boxes[name]);
        mark.style.display = "block";
      }
      const box = p.heatmap.el.getBoundingClientRect();
      const x = ev.clientX - box.left, y = ev.clientY - box.top;
      p.readout.style.left = x < box.width / 2 ? `${x + 14}px` : "";
      p.readout.style.right = x < box.width / 2 ? "" : `${box.width - x + 14}px`;
      p.readout.style.top = y < box.height / 2 ? `${y + 14}px` : "";
      p.readout.style.bottom = y < box.height / 2 ? "" : `${box.height - y + 14}px`;
    });
    p.heatmap.el.addEventListener("mouseleave", leave);
    p.heatmap.el.addEventListener("click", (ev) => {
      const cell = p.heatmap.cellAt(ev);
      if (!cell) return;
      player.setT(cell.t);
      setUnit(rows[cell.row]);
      root.focus();
    });
  }

  // Keys: the Explorer's (keys.ts), over the rows shown.
  const stopKeys = takeKeys(
    root,
    stepKeys({
      t: () => player.t,
      steps: () => layerOf()?.steps ?? 1,
      setT: (t) => player.setT(t),
      moveRow: (delta) => setUnit(rows[Math.min(rows.length - 1, Math.max(0, rows.indexOf(unit) + delta))] ?? unit),
      togglePlay: () => player.toggle(),
    }),
    false,
  );
  const stopSuppressing = suppressNotebookShortcuts(root, el);

  const onUnit = () => {
    if (model.get("unit") === unit) return;
    unit = model.get("unit");
    drawStep();
  };
  const stopStep = player.onStep(drawStep);
  const traits = ["change:index", "change:buffer"];
  const redraw = ["change:layer", "change:quantity", "change:tau", "change:differing_only"];
  for (const name of traits) model.on(name, load);
  for (const name of redraw) model.on(name, drawAll);
  model.on("change:unit", onUnit);
  // A theme switch repaints in the new background (the diverging maps are centred on it), a
  // palette picked in an Explorer of the page in its colours.
  const repaint = () => {
    if (!paintedOn) return;
    if (pageBackground(root) !== paintedOn) setBackground(pageBackground(root));
    if (lutVersion() !== paintedWith) drawAll();
  };
  document.addEventListener(PALETTE_EVENT, repaint);
  const themeWatch = new MutationObserver(repaint);
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  load();

  return () => {
    heading.destroy();
    stopStep();
    stopSuppressing();
    themeWatch.disconnect();
    document.removeEventListener(PALETTE_EVENT, repaint);
    stopKeys();
    for (const name of traits) model.off(name, load);
    for (const name of redraw) model.off(name, drawAll);
    model.off("change:unit", onUnit);
    transport.destroy();
    for (const p of panels) {
      p.heatmap.destroy();
      p.tokens?.destroy?.();
    }
  };
}
