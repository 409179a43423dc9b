// Why the prediction at step t: under the token strip, one bar per input step, its height the
// square root of that step's share of the prediction (rw.attribution: integrated gradients),
// orange where it raised the prediction and blue where it lowered it; the step explained is marked. The numbers come
// from the live model in the kernel (trait `attribution`, Explorer.show_attribution): a step
// chosen with no kernel running says so instead of drawing another step's bars.
//
// Stable DOM hooks: .rw-attribution (the strip), .rw-attribution-bars (canvas, one pixel column
// per step, stretched across the token strip's width so column t lies under token t),
// .rw-attribution-title (what it shows, or why nothing is shown).
import type { AnyModel } from "@anywidget/types";
import { element } from "./dom";
import { type ExplorerState, type Panel, stepNumber } from "./state";

export interface Attribution {
  t: number;
  batch: number;
  values: number[];
  title: string;
}

export interface AttributionModel {
  attribution?: Partial<Attribution>; // {} until the kernel sends one
}

/** Orange (raised) and blue (lowered): a colour-blind-safe pair readable on light and dark backgrounds. */
export const RAISED = "#e66100", LOWERED = "#3d8fd1";
const HEIGHT = 16, MAX_COLUMNS = 4096;

/** The value drawn in each of `columns` pixel columns for `values` over `steps` steps: a step's
 * own value when each step has a column, else the largest in magnitude of the steps sharing one. */
export function columnsOf(values: number[], steps: number, columns: number): Float64Array {
  const out = new Float64Array(columns);
  for (let t = 0; t < Math.min(values.length, steps); t++) {
    const c = Math.min(columns - 1, Math.floor((t * columns) / steps));
    if (Math.abs(values[t]) > Math.abs(out[c])) out[c] = values[t];
  }
  return out;
}

function isAttribution(a: Partial<Attribution>): a is Attribution {
  return typeof a.t === "number" && Array.isArray(a.values) && typeof a.title === "string";
}

export function createAttribution(model: AnyModel<AttributionModel>): Panel {
  const el = element("div", "rw-attribution");
  el.style.cssText = "display:none;margin-top:2px;position:relative";
  const canvas = element("canvas", "rw-attribution-bars", el);
  // the step explained: a tick in the theme's text colour over its column
  const tick = element("div", "rw-attribution-step", el);
  tick.style.cssText = "position:absolute;top:0;width:2px;height:4px;background:var(--rw-fg, #1f1f1f)";
  canvas.style.cssText = `display:block;width:100%;height:${HEIGHT}px;image-rendering:pixelated;` +
    "border-bottom:1px solid var(--rw-line, #9e9e9e)";
  const title = element("div", "rw-attribution-title", el);
  title.style.cssText = "font-size:11px;margin-top:2px;color:var(--rw-fg, #1f1f1f)";
  const text = element("span", "rw-attribution-text", title);
  const legend = element("span", "rw-attribution-legend", title);
  for (const [color, words] of [[RAISED, "raised it"], [LOWERED, "lowered it"]]) {
    const swatch = element("span", "rw-attribution-swatch", legend);
    swatch.style.cssText = `display:inline-block;width:9px;height:9px;margin:0 3px 0 10px;background:${color}`;
    element("span", "", legend).textContent = words;
  }
  let lastState: ExplorerState | null = null;
  let drawn: { a: Attribution; steps: number; t: number } | null = null;

  /** Draws the bars; returns the largest |attribution|, the bars' full height. */
  function draw(a: Attribution, steps: number): number {
    const columns = Math.max(1, Math.min(steps, MAX_COLUMNS));
    const cols = columnsOf(a.values, steps, columns);
    let top = 0;
    for (const v of cols) top = Math.max(top, Math.abs(v));
    canvas.width = columns;
    canvas.height = HEIGHT;
    const ctx = canvas.getContext("2d");
    if (!ctx) return top;
    ctx.clearRect(0, 0, columns, HEIGHT);
    for (let c = 0; c < columns; c++) {
      if (cols[c] === 0 || top === 0) continue;
      // square-root heights: the step just before t usually dwarfs the rest, which stay readable
      const h = Math.max(1, Math.round(Math.sqrt(Math.abs(cols[c]) / top) * (HEIGHT - 3)));
      ctx.fillStyle = cols[c] > 0 ? RAISED : LOWERED;
      ctx.fillRect(c, HEIGHT - h, 1, h);
    }
    return top;
  }

  function update(state: ExplorerState) {
    lastState = state;
    const sent = model.get("attribution");
    if (!sent || !isAttribution(sent)) {
      el.style.display = "none";
      return;
    }
    const a = sent;
    el.style.display = "";
    if (a.t !== state.t) { // another step's numbers: say what is needed rather than show them
      if (drawn) canvas.getContext("2d")?.clearRect(0, 0, canvas.width, canvas.height);
      drawn = null;
      legend.style.display = tick.style.display = "none";
      // (steps as the model numbers them: a window of steps, rw.trace(steps=...), from its first)
      text.textContent = `why the prediction at step ${stepNumber(state, state.t)}: asked of the live model when the step ` +
        `rests (it needs a running kernel; shown last for step ${stepNumber(state, a.t)})`;
      return;
    }
    if (drawn && drawn.a === a && drawn.steps === state.steps) return;
    const top = draw(a, state.steps);
    tick.style.left = `calc(${(((a.t + 0.5) / Math.max(1, state.steps)) * 100).toFixed(4)}% - 1px)`;
    drawn = { a, steps: state.steps, t: state.t };
    legend.style.display = tick.style.display = a.values.length ? "" : "none";
    text.textContent = a.values.length ? `${a.title}; bar height: √|attribution|, largest ${top.toPrecision(3)}` : a.title;
  }

  const onChange = () => lastState && update(lastState);
  model.on("change:attribution", onChange);
  return { el, update, destroy: () => model.off("change:attribution", onChange) };
}
