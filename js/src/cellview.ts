// The cell view: for the selected unit at step t, the cell's own equations with the recorded
// numbers filled in, beside a drawing of the cell whose paths are shaded by how much flows
// through them. The template is the equations the layer runs, as the Python side describes them
// (``recurrence.kind``: an LSTMCell traced as "cell" still gets the LSTM equations), not guessed
// from what was recorded: an LSTM traced with quantities=("h", "c") is drawn as an LSTM, its gates
// marked "not recorded". Any other cell shows h_{t-1} and its recorded quantities beside a generic
// drawing, and a layer without h (or an LSTM without c) only lists what it recorded.
import { selectedLayer, stepNumber, valueAt } from "./state";
import type { Actions, ExplorerState, LayerData, Panel } from "./state";
import { element, setText, widerLine } from "./dom";

export type Template = "lstm" | "gru" | "rnn" | "cell" | "list";

/** The equations a layer runs, from its recurrence as the payload describes it (an LSTMCell
 * traced as "cell" still gets the LSTM equations), whichever of its gates were recorded; a layer
 * without the states its equations carry (h, and c for an LSTM) only lists what it recorded. */
export function templateOf(layer: LayerData): Template {
  const { kind, states } = layer.recurrence;
  if (!("h" in layer.quantities)) return "list";
  if (kind === "lstm" || kind === "gru") return states.every((n) => n in layer.quantities) ? kind : "list";
  return kind === "rnn" ? "rnn" : "cell";
}

/** The gates of a layer's equations that its trace does not hold (traced without them). */
export function unrecordedGates(layer: LayerData): string[] {
  const template = templateOf(layer);
  if (template !== "lstm" && template !== "gru") return [];
  return layer.recurrence.gates.filter((g) => !(g in layer.quantities));
}

/**
 * The numbers one template shows. `prev` is the state step t started from: step t-1's, or for a
 * reverse layer step t+1's; at the first step the layer ran (t = 0; length - 1 reversed) the
 * initial state.
 */
export interface CellValues {
  template: Template;
  t: number;
  unit: number;
  reverse: boolean; // the layer runs backward in time: the state before is step t+1's
  values: Record<string, number>; // at step t, by quantity name
  gates: number[]; // at step t, in the recurrence's chunk order: LSTM i, f, g, o; GRU r, z, n (NaN: not recorded)
  recorded: boolean[]; // per gate, whether the trace holds it
  missing: string[]; // the gates (by name) the trace does not hold
  prev: number; // c_{t∓1} (LSTM) or h_{t∓1} (the others); NaN for "list"
  // where prev comes from: the step before, the recorded initial state, or (neither held: the
  // initial state of an older trace, or the step just outside a long sequence's window) solved
  // from step t's own update
  prevFrom: "step" | "initial" | "solved";
  first: boolean; // t is the first step the layer ran
  projected: boolean; // LSTM with proj_size: h_t is a projection, not o·tanh(c_t) of this unit
}

/**
 * The values of `unit` at (absolute) step `t` of a batch element with `length` valid steps.
 * The state before is step t-1's (t+1's for a reverse layer), or at the first step the layer
 * ran its recorded initial state. Where neither is held (a trace without initial states, the
 * first step of a long sequence's window) it is solved from step t's own update
 * (c_t = f·c_{t-1} + i·g, h_t = (1−z)·n + z·h_{t-1}), which needs f (or z) away from 0; other
 * cells' state before cannot be solved for and is NaN.
 */
export function cellValues(layer: LayerData, t: number, unit: number, length = Infinity): CellValues {
  const template = templateOf(layer);
  const reverse = layer.reverse;
  const values: Record<string, number> = Object.create(null); // keyed by the user's names: no prototype
  for (const [name, q] of Object.entries(layer.quantities)) if (unit < q.units) values[name] = valueAt(q, t, unit);
  const gates = template === "lstm" || template === "gru" ? layer.recurrence.gates.map((g) => values[g] ?? NaN) : [];
  const missing = unrecordedGates(layer);
  const recorded = template === "lstm" || template === "gru" ? layer.recurrence.gates.map((g) => g in layer.quantities) : [];
  const q = layer.quantities;
  const projected = template === "lstm" && q.h.units !== q.c.units;
  const first = reverse ? t === length - 1 : t === 0;
  let prev = NaN;
  let prevFrom: CellValues["prevFrom"] = "solved";
  if (template !== "list") {
    const name = template === "lstm" ? "c" : "h";
    const state = q[name];
    const before = reverse ? t + 1 : t - 1;
    const i = before - (state.t0 ?? 0); // step `before` is held in `state` (a long sequence holds a window)
    const initial = layer.initial?.[name];
    if (!first && i >= 0 && i < state.steps) {
      prev = valueAt(state, before, unit);
      prevFrom = "step";
    } else if (first && initial && unit < initial.length) {
      prev = initial[unit];
      prevFrom = "initial";
    } else {
      if (template === "lstm") {
        const [i, f, g] = gates;
        if (Math.abs(f) > 1e-6) prev = (values.c - i * g) / f;
      }
      if (template === "gru") {
        const [, z, n] = gates;
        if (Math.abs(z) > 1e-6) prev = (values.h - (1 - z) * n) / z;
      }
    }
  }
  return { template, t, unit, reverse, values, gates, recorded, missing, prev, prevFrom, first, projected };
}

/** A number as the equations show it: three decimals, or four significant digits when large. */
export function fmt(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  const s = Math.abs(x) < 1000 ? x.toFixed(3) : x.toPrecision(4);
  return s.replace("-", "−");
}

/** A number after an operator: negatives in parentheses, so "a·(−b)" never reads as "a·−b". */
function arg(x: number): string {
  return x < 0 ? `(${fmt(x)})` : fmt(x);
}

const PREV_NAME: Record<Template, string> = { lstm: "cₜ₋₁", gru: "hₜ₋₁", rnn: "hₜ₋₁", cell: "hₜ₋₁", list: "" };

/** A text written for a forward layer, for a reverse one: the state before step t is step t+1's. */
export function inDirection(text: string, reverse: boolean): string {
  return reverse ? text.replace(/ₜ₋₁/g, "ₜ₊₁") : text;
}

function prevLine(cv: CellValues): string {
  const name = PREV_NAME[cv.template];
  if (cv.prevFrom === "step") return `${name} = ${fmt(cv.prev)}`;
  if (cv.prevFrom === "initial") return `${name} = ${fmt(cv.prev)}  (initial state)`;
  const what = cv.first ? "initial state" : "step not loaded";
  if (Number.isNaN(cv.prev)) return `${name} = ${what} (not recorded)`;
  return `${name} = ${fmt(cv.prev)}  (${what}, solved from step ${cv.t})`;
}

/** The equations with their numbers, one line each (a reverse layer's read t+1 for t-1). */
export function equationLines(cv: CellValues): string[] {
  return forwardLines(cv).map((line) => inDirection(line, cv.reverse));
}

/** A gate's line: its formula and value, or that the trace did not record it. */
function gateLine(formula: string, value: number, recorded: boolean): string {
  return recorded ? `${formula} = ${fmt(value)}` : `${formula}: not recorded`;
}

/** A note under the equations of a layer traced without (some of) its gates. */
function missingNote(cv: CellValues): string[] {
  return cv.missing.length ? [`(gates not recorded: ${cv.missing.join(", ")}; trace with quantities="all" to see them)`] : [];
}

function forwardLines(cv: CellValues): string[] {
  const v = cv.values;
  const has = (k: number) => cv.recorded[k] === true;
  switch (cv.template) {
    case "lstm": {
      const [i, f, g, o] = cv.gates;
      const c = v.c;
      const tanhC = Math.tanh(c);
      const update = has(0) && has(1) && has(2)
        ? `cₜ = f·cₜ₋₁ + i·g = ${fmt(f)}·${arg(cv.prev)} + ${fmt(i)}·${arg(g)} = ${fmt(f * cv.prev)} + ${arg(i * g)} = ${fmt(c)}`
        : `cₜ = f·cₜ₋₁ + i·g = ${fmt(c)}`;
      const lines = [
        gateLine("i = σ(W_ii xₜ + b_ii + W_hi hₜ₋₁ + b_hi)", i, has(0)),
        gateLine("f = σ(W_if xₜ + b_if + W_hf hₜ₋₁ + b_hf)", f, has(1)),
        gateLine("g = tanh(W_ig xₜ + b_ig + W_hg hₜ₋₁ + b_hg)", g, has(2)),
        gateLine("o = σ(W_io xₜ + b_io + W_ho hₜ₋₁ + b_ho)", o, has(3)),
        prevLine(cv),
        update,
      ];
      if (cv.projected) {
        if (has(3)) lines.push(`o·tanh(cₜ) = ${fmt(o)}·tanh(${fmt(c)}) = ${fmt(o)}·${arg(tanhC)} = ${fmt(o * tanhC)}`);
        lines.push("(proj_size: hₜ = W_hr·(o ⊙ tanh(cₜ)) mixes every unit, so this is the value before the projection)");
      } else if (has(3)) {
        lines.push(`hₜ = o·tanh(cₜ) = ${fmt(o)}·tanh(${fmt(c)}) = ${fmt(o)}·${arg(tanhC)} = ${fmt(v.h)}`);
      } else {
        lines.push(`hₜ = o·tanh(cₜ) = o·tanh(${fmt(c)}) = ${fmt(v.h)}`);
      }
      return [...lines, ...missingNote(cv)];
    }
    case "gru": {
      const [r, z, n] = cv.gates;
      const h = v.h;
      const update = has(1) && has(2)
        ? `hₜ = (1−z)·n + z·hₜ₋₁ = (1−${fmt(z)})·${arg(n)} + ${fmt(z)}·${arg(cv.prev)} = ${fmt((1 - z) * n)} + ${arg(z * cv.prev)} = ${fmt(h)}`
        : `hₜ = (1−z)·n + z·hₜ₋₁ = ${fmt(h)}`;
      return [
        gateLine("r = σ(W_ir xₜ + b_ir + W_hr hₜ₋₁ + b_hr)", r, has(0)),
        gateLine("z = σ(W_iz xₜ + b_iz + W_hz hₜ₋₁ + b_hz)", z, has(1)),
        gateLine("n = tanh(W_in xₜ + b_in + r·(W_hn hₜ₋₁ + b_hn))", n, has(2)),
        prevLine(cv),
        update,
        ...missingNote(cv),
      ];
    }
    case "rnn":
      return [prevLine(cv), `hₜ = tanh(W_ih xₜ + b_ih + W_hh hₜ₋₁ + b_hh) = ${fmt(v.h)}`];
    case "cell": { // h_{t-1} only where this unit has an h (a track may be wider than h)
      const recorded = Object.entries(v).map(([name, x]) => `${name === "h" ? "hₜ" : name} = ${fmt(x)}`);
      return "h" in v ? [prevLine(cv), ...recorded] : recorded;
    }
    case "list":
      return Object.entries(v).map(([name, x]) => `${name} = ${fmt(x)}`);
  }
}

/**
 * How much flows along each drawn path, scaled so the largest is 1: LSTM "carry" |f·c_{t-1}|,
 * "write" |i·g|, "out" |o·tanh(c_t)|; GRU "keep" |z·h_{t-1}|, "new" |(1−z)·n|, "out" |h_t|;
 * RNN and other cells "recur" |h_{t-1}|, "out" |h_t|. Unknown or non-finite flows are 0 (an
 * LSTM's "out" without o is |h_t|, which o·tanh(c_t) is unless projected).
 */
export function flowWeights(cv: CellValues): Record<string, number> {
  const v = cv.values;
  let raw: Record<string, number>;
  switch (cv.template) {
    case "lstm": {
      const [i, f, g, o] = cv.gates;
      raw = { carry: f * cv.prev, write: i * g, out: cv.recorded[3] || cv.projected ? o * Math.tanh(v.c) : v.h };
      break;
    }
    case "gru": {
      const [, z, n] = cv.gates;
      raw = { keep: z * cv.prev, new: (1 - z) * n, out: v.h };
      break;
    }
    case "rnn": case "cell": raw = { recur: cv.prev, out: v.h }; break;
    case "list": return {};
  }
  const mags = Object.fromEntries(Object.entries(raw).map(([k, x]) => [k, Number.isFinite(x) ? Math.abs(x) : 0]));
  const top = Math.max(...Object.values(mags));
  return Object.fromEntries(Object.entries(mags).map(([k, m]) => [k, top > 0 ? m / top : 0]));
}

/** The gates each drawn flow needs (a flow none of whose gates is missing is drawn solid). */
const FLOW_GATES: Record<string, Record<string, string[]>> = {
  lstm: { carry: ["forget"], write: ["input", "cell"], out: [] },
  gru: { keep: ["update"], new: ["update", "new"], out: [] },
};
/** The gates each label of a drawing names. */
const LABEL_GATES: Record<string, string[]> = {
  f: ["forget"], "i · g": ["input", "cell"], o: ["output"], z: ["update"], "(1−z) · n": ["update", "new"],
};

/** The flows of a drawing that cannot be computed because a gate they need was not recorded. */
export function unrecordedFlows(cv: CellValues): string[] {
  const needs = FLOW_GATES[cv.template] ?? {};
  const out = Object.entries(needs).filter(([, gates]) => gates.some((g) => cv.missing.includes(g))).map(([k]) => k);
  if (cv.template === "lstm" && cv.projected && cv.missing.includes("output")) out.push("out");
  return out;
}

// --- the drawing ---------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
/** How far the drawing's bounds reach past its box: a stroke's miter at its widest (buildDrawing). */
export const BOUNDS_MARGIN = 20;

interface Drawing {
  svg: SVGSVGElement;
  paths: Record<string, SVGPathElement>; // by flow name
  titles: Record<string, SVGTitleElement>;
}

/** Paths (by flow name) and labelled nodes of each cell schematic, in a 240 × 130 box. */
const SCHEMATICS: Record<Exclude<Template, "list">, { paths: Record<string, string>; nodes: [number, number, string][]; labels: [number, number, string][] }> = {
  lstm: {
    paths: { carry: "M10 25 H150", write: "M150 95 V25", out: "M190 25 V95 H230" },
    nodes: [[80, 25, "×"], [150, 25, "+"], [150, 95, "×"], [190, 60, "tanh"], [190, 95, "×"]],
    labels: [[4, 15, "cₜ₋₁"], [72, 50, "f"], [118, 115, "i · g"], [206, 115, "o"], [214, 15, "cₜ"], [214, 90, "hₜ"]],
  },
  gru: {
    paths: { keep: "M10 30 H150", new: "M150 100 V30", out: "M150 30 H230" },
    nodes: [[80, 30, "×"], [150, 30, "+"], [150, 100, "×"]],
    labels: [[4, 20, "hₜ₋₁"], [72, 55, "z"], [112, 120, "(1−z) · n"], [214, 20, "hₜ"]],
  },
  rnn: {
    paths: { recur: "M10 30 H120", out: "M120 30 H230" },
    nodes: [[120, 30, "tanh"]],
    labels: [[4, 20, "hₜ₋₁"], [100, 70, "xₜ"], [214, 20, "hₜ"]],
  },
  cell: {
    paths: { recur: "M10 30 H120", out: "M120 30 H230" },
    nodes: [[120, 30, "cell"]],
    labels: [[4, 20, "hₜ₋₁"], [100, 70, "xₜ"], [214, 20, "hₜ"]],
  },
};

function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function buildDrawing(template: Exclude<Template, "list">, reverse: boolean, missing: string[] = [], dashed: string[] = []): Drawing {
  const spec = SCHEMATICS[template];
  const tall = missing.length > 0; // room for a caption saying what the dashes mean
  const svg = svgEl("svg", { viewBox: `0 0 240 ${tall ? 145 : 130}`, width: 200, height: tall ? 121 : 108, class: "rw-cell-drawing" });
  const paths: Record<string, SVGPathElement> = {}, titles: Record<string, SVGTitleElement> = {};
  // An unfilled rectangle drawn first (nothing shows) around the whole drawing: the bounds of the
  // drawing's paint stay its box while a step widens or narrows the flows' strokes. Without it
  // they change with them, and the page regroups its whole paint into compositor layers
  // (PaintArtifactCompositor::Update, about 2 ms in JupyterLab) at every step of a scrub. It
  // reaches BOUNDS_MARGIN past each side: Chromium bounds a stroke that turns a corner by its
  // miter, up to twice its width (8) past the path.
  const height = tall ? 145 : 130;
  svg.append(svgEl("rect", { x: -BOUNDS_MARGIN, y: -BOUNDS_MARGIN, width: 240 + 2 * BOUNDS_MARGIN, height: height + 2 * BOUNDS_MARGIN,
    fill: "none", class: "rw-cell-bounds" }));
  for (const [name, d] of Object.entries(spec.paths)) {
    const path = svgEl("path", { d, fill: "none", stroke: "#d6604d", "stroke-linecap": "round", "data-flow": name });
    if (dashed.includes(name)) {
      path.setAttribute("stroke-dasharray", "4 4");
      path.classList.add("rw-not-recorded");
    }
    const title = svgEl("title", {});
    path.append(title);
    svg.append(path);
    paths[name] = path;
    titles[name] = title;
  }
  if ("recur" in spec.paths) svg.append(svgEl("path", { d: "M120 60 V30", fill: "none", stroke: "#888", "stroke-width": 1.5, class: "rw-cell-input" }));
  for (const [x, y, text] of spec.nodes) {
    svg.append(svgEl("circle", { cx: x, cy: y, r: text.length > 1 ? 14 : 9, fill: "#fff", stroke: "#333" }));
    const label = svgEl("text", { x, y: y + 4, "text-anchor": "middle", "font-size": 11 });
    label.textContent = text;
    svg.append(label);
  }
  for (const [x, y, text] of spec.labels) {
    const label = svgEl("text", { x, y, "font-size": 11, fill: "#333" });
    label.textContent = inDirection(text, reverse);
    const absent = (LABEL_GATES[text] ?? []).filter((g) => missing.includes(g));
    if (absent.length) { // marked, with a tooltip naming the gates (beside the text, not in it)
      label.textContent += "?";
      const group = svgEl("g", { class: "rw-not-recorded" });
      const title = svgEl("title", {});
      title.textContent = `${absent.join(", ")}: not recorded`;
      group.append(title, label);
      svg.append(group);
    } else {
      svg.append(label);
    }
  }
  if (tall) {
    const caption = svgEl("text", { x: 4, y: 140, "font-size": 10, fill: "#333", class: "rw-cell-caption" });
    caption.textContent = "? dashed: gates not recorded";
    svg.append(caption);
  }
  return { svg, paths, titles };
}

// (The drawing's colours here are fallbacks: the Explorer's stylesheet, style.ts, gives its text,
// nodes and lines the theme's colours.)
export function createCellview(_actions: Actions): Panel {
  const el = element("div", "rw-cellview");
  // The text changes at every step. So that the page lays it out on its own (dom.ts
  // createStepLine says why), it is drawn in a box (.rw-cellview-shown, contained) laid over a
  // hidden copy, the sizer, that gives the panel its size: the sizer's lines are the widest seen
  // for this layer and unit, word by word (widerLine), so it keeps its size through a scrub and
  // changes, with a layout of the panel, only when a line grows.
  const text = element("div", "rw-cellview-text");
  const shown = element("div", "rw-cellview-shown", text);
  shown.style.cssText = "position:absolute;inset:0;contain:size layout style";
  const header = element("div", "rw-cellview-header", shown);
  header.style.fontWeight = "bold";
  const equations = element("div", "rw-cellview-equations", shown);
  const sizer = element("div", "rw-cellview-sizer", text);
  sizer.style.visibility = "hidden";
  sizer.setAttribute("aria-hidden", "true");
  const drawingSlot = document.createElement("div");
  el.append(text, drawingSlot);

  let drawing: Drawing | null = null;
  let drawingFor: string | null = null; // template and direction
  let lines: HTMLDivElement[] = [];
  let sized: string[] = []; // the sizer's lines: the header, then the equations
  let sizedFor: { layer: LayerData; unit: number } | null = null;
  let drawn: { t: number; unit: number; layer: LayerData; length: number } | null = null;

  function setLines(texts: string[]) {
    if (texts.length !== lines.length) {
      lines = texts.map(() => element("div", "rw-eq"));
      equations.replaceChildren(...lines);
    }
    for (const [k, s] of texts.entries()) setText(lines[k], s);
  }

  /** Grows the sizer to hold `texts` (the header, then the equations); a new layer or unit starts it afresh. */
  function size(texts: string[], layer: LayerData, unit: number) {
    const fresh = !sizedFor || sizedFor.layer !== layer || sizedFor.unit !== unit || sized.length !== texts.length;
    const next = texts.map((line, k) => (fresh ? line : widerLine(sized[k], line)));
    sizedFor = { layer, unit };
    if (!fresh && next.every((line, k) => line === sized[k])) return;
    sized = next;
    sizer.replaceChildren(...next.map((line, k) => {
      const row = element("div", "");
      if (k === 0) row.style.fontWeight = "bold";
      row.textContent = line;
      return row;
    }));
  }

  function shade(cv: CellValues) {
    const dashed = unrecordedFlows(cv);
    const kind = `${cv.template}${cv.reverse ? " reverse" : ""} ${cv.missing.join(",")}`;
    if (kind !== drawingFor) {
      drawing = cv.template === "list" ? null : buildDrawing(cv.template, cv.reverse, cv.missing, dashed);
      drawingFor = kind;
      drawingSlot.replaceChildren(...(drawing ? [drawing.svg] : []));
    }
    if (!drawing) return;
    for (const [name, w] of Object.entries(flowWeights(cv))) {
      const unknown = dashed.includes(name); // drawn at a fixed width: nothing known to shade it by
      drawing.paths[name].setAttribute("stroke-width", unknown ? "2" : (1 + 7 * w).toFixed(2));
      drawing.paths[name].setAttribute("stroke-opacity", unknown ? "0.6" : (0.2 + 0.8 * w).toFixed(2));
      setText(drawing.titles[name], dashed.includes(name)
        ? `${name}: not recorded (traced without its gates)`
        : `${name}: ${(100 * w).toFixed(0)}% of the largest flow`);
    }
  }

  function update(state: ExplorerState) {
    const layer = selectedLayer(state);
    if (drawn && drawn.t === state.t && drawn.unit === state.unit && drawn.layer === layer && drawn.length === state.length) return;
    const cv = cellValues(layer, state.t, state.unit, state.length);
    const title = `${layer.name} · unit ${state.unit} · step ${stepNumber(state, state.t)}${state.t >= state.length ? " (padding)" : ""}`;
    const texts = equationLines(cv);
    size([title, ...texts], layer, state.unit);
    setText(header, title);
    setLines(texts);
    shade(cv);
    drawn = { t: state.t, unit: state.unit, layer, length: state.length };
  }

  return { el, update };
}
