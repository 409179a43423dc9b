// One layer's dynamics (rnnwidgets.widgets.dynamics_view.DynamicsView), drawn from one float32
// buffer: the state's trajectory in its PCA plane with the current step marked and the fixed
// points on it (stable filled, unstable hollow, the first unstable mode as short arrows both ways); the
// step Jacobian's sigma_max and sigma_min per step (log scale with decade ticks, the line sigma = 1)
// and the running finite-time exponent (as e^λ_t on the same axis, over the sigmas in a halo of the page's
// colour), min and max per pixel column
// when the steps outnumber the pixels; the eigenvalues of the fixed point nearest the current state against the
// unit circle. The step slider moves everything here, without the kernel; `t` is saved once a
// move rests.
//
// Inside an Explorer (rw.explore(..., dynamics=True): the view is a child of .rw-explorer-box and
// one of the Explorer's followers, which sets `t` at every step) the spectrum sits on a row of its
// own under the heatmap's columns: its plot has the heatmap's left edge and width, step t at the
// heatmap's column centre (timeaxis.ts xOfStep; a long sequence's overview keeps every step on that
// axis), the decade labels in the margin beside it; the Explorer's slider drives it and the view's
// own is hidden.
//
// Stable DOM hooks (browser tests rely on them):
//   .rw-dyn            the root              .rw-dyn-title     the title
//   .rw-dyn-plane      canvas: PCA plane     .rw-dyn-yaxis     select: PC2 or PC3 upwards (those that exist)
//   .rw-dyn-spectrum   canvas: sigma per step (.rw-dyn-aligned on the root inside an Explorer)
//   .rw-dyn-eigen      canvas: eigenvalues and the unit circle
//   .rw-dyn-slider     input range: the step  .rw-dyn-readout   text: step, sigmas, nearest point
//   .rw-dyn-empty      text: why there is nothing to draw (index.empty), shown instead of the plots
//
// Model traits: buffer (float32 bytes), index ({arrays: name -> [offset, length], steps, length,
// k, points, state, explained, lyapunov, reverse, first_step}), layer, batch, t, title. A window of steps
// (DynamicsView(steps=...), an Explorer of rw.trace(steps=...)) holds only its steps: t counts from
// its first, and the readout and step ticks add first_step (state.ts stepNumber).
import type { AnyModel } from "@anywidget/types";
import { linearTicks } from "./chart_axes";
import { SERIES_COLOURS, isDark, parseColor } from "./colormap";
import { floatsOf } from "./decode";
import { element } from "./dom";
import { stepNumber } from "./state";
import { xOfStep } from "./timeaxis";

export interface DynamicsIndex {
  arrays: Record<string, [number, number]>;
  steps: number;
  length: number;
  k: number;
  points: number;
  state: number;
  explained: number[]; // each existing component's share of the variance
  lyapunov: number[];
  reverse: boolean;
  components?: number; // the principal components that exist (one per unit, at most 3); absent: 3
  first_step?: number; // the model's number of step 0: a window of steps (DynamicsView(steps=...)); absent: 0
  run_steps?: number; // the layer's steps in the whole run (the PCA plane's and the exponents'); absent: steps
  empty?: string; // a sentence saying why the window holds nothing to draw (a layer that ends before it); absent: none
}

export interface DynamicsModel {
  buffer: DataView;
  index: DynamicsIndex;
  layer: string;
  batch: number;
  t: number;
  title: string;
}

export interface DynamicsData {
  steps: number;
  firstStep?: number; // the model's number of step 0 (state.ts stepNumber): the readout and step ticks say it
  length: number;
  trajectory: Float32Array; // (steps, 3)
  sigmaMax: Float32Array;
  sigmaMin: Float32Array;
  exponent: Float32Array;
  points: number;
  pointXYZ: Float32Array; // (points, 3)
  stable: Float32Array;
  arrows: Float32Array; // (points, 3)
  state: number;
  eigRe: Float32Array; // (points, state)
  eigIm: Float32Array;
  nearest: Float32Array; // (steps,) index of the nearest fixed point, -1 past the length
}

/** The buffer's named arrays as zero-copy views, with a clear error when the index does not fit. */
export function decodeDynamics(index: DynamicsIndex, floats: Float32Array): DynamicsData {
  const view = (name: string, expected: number): Float32Array => {
    const entry = index.arrays[name];
    if (!entry) return new Float32Array(expected);
    const [offset, length] = entry;
    if (length !== expected || offset + length > floats.length) {
      throw new Error(`rnnwidgets dynamics: array ${name} expected ${expected} values at ${offset}, ` +
        `the buffer holds ${floats.length}`);
    }
    return floats.subarray(offset, offset + length);
  };
  const { steps, points, state } = index;
  return {
    steps, length: index.length, points, state, firstStep: index.first_step ?? 0,
    trajectory: view("trajectory", steps * 3),
    sigmaMax: view("sigma_max", steps),
    sigmaMin: view("sigma_min", steps),
    exponent: view("exponent", steps),
    pointXYZ: view("points", points * 3),
    stable: view("stable", points),
    arrows: view("arrows", points * 3),
    eigRe: view("eig_re", points * state),
    eigIm: view("eig_im", points * state),
    nearest: points ? view("nearest", steps) : new Float32Array(steps).fill(-1),
  };
}

export interface Box { x0: number; x1: number; y0: number; y1: number }

/** The finite extent of (x, y) pairs, padded by 8% (a unit box around a single point). */
export function extent(xs: ArrayLike<number>[], ys: ArrayLike<number>[]): Box {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  xs.forEach((x, j) => {
    const y = ys[j];
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) continue;
      x0 = Math.min(x0, x[i]); x1 = Math.max(x1, x[i]);
      y0 = Math.min(y0, y[i]); y1 = Math.max(y1, y[i]);
    }
  });
  if (!(x1 >= x0)) return { x0: -1, x1: 1, y0: -1, y1: 1 };
  const px = (x1 - x0) * 0.08 || 0.5, py = (y1 - y0) * 0.08 || 0.5;
  return { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
}

/** Column `c` of a (rows, 3) array. */
export function column(a: Float32Array, c: number): Float32Array {
  const out = new Float32Array(a.length / 3);
  for (let i = 0; i < out.length; i++) out[i] = a[i * 3 + c];
  return out;
}

/** The drawing calls we make: a CanvasRenderingContext2D, or a recorder in tests. */
export type Ctx = Pick<CanvasRenderingContext2D,
  "beginPath" | "moveTo" | "lineTo" | "arc" | "fill" | "stroke" | "clearRect" | "fillText" | "setLineDash"> & {
    fillStyle: unknown; strokeStyle: unknown; lineWidth: number; font: string; globalAlpha: number;
    measureText?: (text: string) => { width: number };   // a recorder in tests may lack it
  };

export interface Colours {
  fg: string; muted: string; line: string; accent: string; stable: string; unstable: string; exponent: string;
  bg: string;   // the page behind the view: the running exponent's halo
}

/** The colour painted behind `el`: its first ancestor's opaque background, else the theme's page
 * colour (--jp-layout-color0), else white. */
function backgroundBehind(el: Element | null): [number, number, number] {
  for (let e = el; e && typeof getComputedStyle === "function"; e = e.parentElement) {
    const bg = getComputedStyle(e).backgroundColor ?? "";
    const alpha = /^rgba\([^)]*,\s*([\d.]+)\s*\)$/.exec(bg.trim());
    if (alpha && Number(alpha[1]) < 1) continue;   // translucent (rgba(0, 0, 0, 0): none): look further out
    const rgb = parseColor(bg);
    if (rgb) return rgb;
  }
  const css = el && typeof getComputedStyle === "function" ? getComputedStyle(el) : null;
  return parseColor(css?.getPropertyValue("--jp-layout-color0") ?? "") ?? [255, 255, 255];
}

/**
 * The view's colours: text and axes from JupyterLab's theme variables (--jp-ui-font-color0..2);
 * the marks in the series colours every view uses (colormap.ts SERIES_COLOURS, at least 3:1
 * against the page), the dark theme's where the page behind the view is dark: σ_max, the
 * trajectory and the eigenvalues inside the circle blue, unstable points vermillion, stable ones
 * green, the running exponent purple (haloed in `bg`, the page's colour); the current step in the strongest
 * ink, as the Explorer's cursor.
 */
export function colours(el: Element | null): Colours {
  const css = el && typeof getComputedStyle === "function" ? getComputedStyle(el) : null;
  const v = (name: string, fallback: string) => (css?.getPropertyValue(name).trim() || fallback);
  const background = backgroundBehind(el);
  const series = SERIES_COLOURS[isDark(background) ? "dark" : "light"];
  return {
    fg: v("--jp-ui-font-color1", "#222"), muted: v("--jp-ui-font-color2", "#616161"),
    line: series[0], accent: v("--jp-ui-font-color0", "#000"),
    stable: series[2], unstable: series[1], exponent: series[3], bg: `rgb(${background.join(", ")})`,
  };
}

const scaler = (lo: number, hi: number, a: number, b: number) => (v: number) => a + ((v - lo) / (hi - lo || 1)) * (b - a);

/** The PCA plane: trajectory up to the last valid step, the current step, fixed points, arrows.
 * `components`: those that exist; with one (a one-unit layer) the state moves along PC1 alone,
 * drawn on the plane's middle line. */
export function drawPlane(ctx: Ctx, d: DynamicsData, t: number, yc: 1 | 2, w: number, h: number, c: Colours,
  components = 3): void {
  ctx.clearRect(0, 0, w, h);
  const xs = column(d.trajectory, 0), ys = column(d.trajectory, yc);
  const px = column(d.pointXYZ, 0), py = column(d.pointXYZ, yc);
  const box = extent([xs, px], [ys, py]);
  const X = scaler(box.x0, box.x1, 30, w - 8), Y = scaler(box.y0, box.y1, h - 24, 8);
  ctx.lineWidth = 1.5;   // opaque: a translucent line lost its contrast on a dark page
  ctx.strokeStyle = c.line;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < d.steps; i++) {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) { pen = false; continue; }
    if (pen) ctx.lineTo(X(xs[i]), Y(ys[i])); else ctx.moveTo(X(xs[i]), Y(ys[i]));
    pen = true;
  }
  ctx.stroke();
  const span = Math.min(box.x1 - box.x0, box.y1 - box.y0) * 0.12;
  for (let i = 0; i < d.points; i++) {
    const x = X(px[i]), y = Y(py[i]);
    const stable = d.stable[i] > 0.5;
    ctx.beginPath();
    ctx.arc(x, y, 5, 0, 2 * Math.PI);
    if (stable) {
      ctx.fillStyle = c.stable;
      ctx.fill();
    } else {
      ctx.strokeStyle = c.unstable;
      ctx.lineWidth = 2;
      ctx.stroke();
      const ax = d.arrows[i * 3], ay = d.arrows[i * 3 + yc];
      if (ax !== 0 || ay !== 0) {   // the unstable mode: short arrows both ways, away from the point
        ctx.lineWidth = 1.5;
        for (const sign of [-1, 1]) {
          const tipX = X(px[i] + sign * ax * span), tipY = Y(py[i] + sign * ay * span);
          const fromX = X(px[i] + sign * ax * span * 0.35), fromY = Y(py[i] + sign * ay * span * 0.35);
          const a = Math.atan2(tipY - fromY, tipX - fromX);
          ctx.beginPath();
          ctx.moveTo(fromX, fromY);
          ctx.lineTo(tipX, tipY);
          ctx.moveTo(tipX - 6 * Math.cos(a - 0.5), tipY - 6 * Math.sin(a - 0.5));
          ctx.lineTo(tipX, tipY);
          ctx.lineTo(tipX - 6 * Math.cos(a + 0.5), tipY - 6 * Math.sin(a + 0.5));
          ctx.stroke();
        }
      }
    }
  }
  if (t >= 0 && t < d.steps && Number.isFinite(xs[t]) && Number.isFinite(ys[t])) {
    ctx.fillStyle = c.accent;
    ctx.beginPath();
    ctx.arc(X(xs[t]), Y(ys[t]), 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.fillStyle = c.fg;
  ctx.font = "11px sans-serif";
  ctx.fillText("PC1 →", w - 44, h - 6);
  ctx.fillText(components < 2 ? "PC1 only: the layer has one unit" : `PC${yc + 1} ↑`, 2, 12);
}

/** The components the plane's menu offers upwards: PC2 and PC3 where they exist. */
export function upwardComponents(components: number): { value: string; text: string }[] {
  return [["1", "PC2 upwards"], ["2", "PC3 upwards"]].filter(([value]) => Number(value) < components)
    .map(([value, text]) => ({ value, text }));
}

/** log10 of a positive value; NaN otherwise (a step past the length, or sigma = 0). */
const log10 = (v: number) => (v > 0 ? Math.log10(v) : NaN);

const SUPERSCRIPT: Record<string, string> = {
  "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹",
};

/** "10ⁿ" for an integer n, written with superscript digits. */
export function decadeLabel(n: number): string {
  return `10${String(n).split("").map((ch) => SUPERSCRIPT[ch] ?? ch).join("")}`;
}

/** The decades (integer powers of ten) inside [lo, hi] (log10 units) to label on an axis `height`
 * pixels tall: every one when they are at least MIN_TICK_PX apart, else every 2nd, 5th, 10th...,
 * always including 10⁰. */
export function decades(lo: number, hi: number, height: number): number[] {
  const first = Math.ceil(lo) || 0, last = Math.floor(hi) || 0;   // (no -0)
  if (last < first) return [];
  const perDecade = height / Math.max(hi - lo, 1e-9);
  const stride = [1, 2, 5, 10, 20, 50, 100].find((s) => s * perDecade >= MIN_TICK_PX) ?? 100;
  const out: number[] = [];
  for (let n = first; n <= last; n++) if (n % stride === 0) out.push(n);
  return out;
}
const MIN_TICK_PX = 16;
const STEP_TICK_PX = 56;   // px between step labels at least
const LABEL_GAP_PX = 3;    // px between a decade label's end and its tick mark

/** m·10ⁿ as a label: a plain number between 0.001 and 10⁴ ("0.5", "1", "20"), else "5×10⁻⁴". */
function mantissaLabel(m: number, n: number): string {
  if (n >= -3 && n <= 3) return String(+(m * 10 ** n).toPrecision(2));
  return m === 1 ? decadeLabel(n) : `${m}×${decadeLabel(n)}`;
}

/**
 * The labelled ticks of a log axis over [lo, hi] (log10 units) `height` pixels tall: the decades
 * (`decades`), and where fewer than two of them fall inside (a range within about one decade),
 * 2·10ⁿ and 5·10ⁿ too, then the other m·10ⁿ, then the axis' ends, until at least two labels
 * stand at least MIN_TICK_PX apart. `at`: log10 of the value.
 */
export function logTicks(lo: number, hi: number, height: number): { at: number; text: string }[] {
  const tens = decades(lo, hi, height);
  if (tens.length >= 2 || !(hi > lo)) return tens.map((n) => ({ at: n, text: decadeLabel(n) }));
  const px = height / (hi - lo);
  const out = tens.map((n) => ({ at: n, text: mantissaLabel(1, n) }));
  const fits = (at: number) => at >= lo && at <= hi && out.every((o) => Math.abs(o.at - at) * px >= MIN_TICK_PX);
  for (const ms of [[2, 5], [3, 4, 6, 7, 8, 9]]) {
    for (let n = Math.floor(lo) - 1; n <= Math.ceil(hi); n++) {
      for (const m of ms) {
        const at = n + Math.log10(m);
        if (fits(at)) out.push({ at, text: mantissaLabel(m, n) });
      }
    }
    if (out.length >= 2) return out.sort((a, b) => a.at - b.at);
  }
  for (const end of [lo, hi]) {   // the ends themselves, rounded inwards to the fewest digits that stay inside
    const n = Math.floor(end), m = 10 ** (end - n);
    for (const scale of [10, 100, 1000]) {
      const kept = (end === lo ? Math.ceil(m * scale) : Math.floor(m * scale)) / scale;
      const at = n + Math.log10(kept);
      if (!fits(at)) continue;
      out.push({ at, text: String(+(kept * 10 ** n).toPrecision(4)) });
      break;
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/**
 * Per pixel column of a plot `width` pixels wide over `steps` steps, the min and max of `f(i)` over
 * the steps that column holds (timeaxis.ts stepAtX's rule: column x holds steps
 * [floor(x·steps/width), floor((x+1)·steps/width))), NaN where none is finite. A long sequence
 * draws `width` segments and no spike is lost.
 */
export function columnExtremes(f: (i: number) => number, steps: number, width: number): { lo: Float64Array; hi: Float64Array } {
  const lo = new Float64Array(width).fill(NaN), hi = new Float64Array(width).fill(NaN);
  for (let x = 0; x < width; x++) {
    const a = Math.floor((x * steps) / width), b = Math.max(a + 1, Math.floor(((x + 1) * steps) / width));
    let mn = Infinity, mx = -Infinity;
    for (let i = a; i < Math.min(b, steps); i++) {
      const v = f(i);
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (mn <= mx) { lo[x] = mn; hi[x] = mx; }
  }
  return { lo, hi };
}

/** The running finite-time exponent (nats per step) as a value on the sigma axis: e^λ, in log10. */
const exponentLog10 = (lambda: number) => lambda / Math.LN10;

/**
 * sigma_max and sigma_min per step on a log scale with decade ticks, the running finite-time
 * exponent (e^λ_t: the geometric mean of sigma_max so far), the line sigma = 1 dashed, the current
 * step. `left`: the plot starts `left` pixels in and spans the rest, step t at the centre of
 * column t of a heatmap that wide (timeaxis.ts xOfStep; the decade labels in the margin);
 * null: a margin of 40 pixels for the labels. More steps than pixels: each pixel column draws the
 * min and max of the steps it holds, as the heatmap's overview does.
 */
export function drawSpectrum(ctx: Ctx, d: DynamicsData, t: number, w: number, h: number, c: Colours,
  left: number | null = null): [number, number] {
  ctx.clearRect(0, 0, w, h);
  const series: [(i: number) => number, string][] = [
    [(i) => log10(d.sigmaMax[i]), c.line], [(i) => log10(d.sigmaMin[i]), c.muted],
    [(i) => exponentLog10(d.exponent[i]), c.exponent],
  ];
  let lo = 0, hi = 0;   // always show log sigma = 0
  for (const [f] of series) {
    for (let i = 0; i < d.steps; i++) {
      const v = f(i);
      if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
  }
  const pad = (hi - lo) * 0.08 || 0.5;
  lo -= pad; hi += pad;
  const x0 = left ?? 40, x1 = left === null ? w - 8 : w;
  const X = left === null ? scaler(0, Math.max(d.steps - 1, 1), x0, x1) : (i: number) => left + xOfStep(i, d.steps, w - left);
  const Y = scaler(lo, hi, h - 18, 6);
  ctx.lineWidth = 1;
  ctx.fillStyle = c.fg;
  ctx.strokeStyle = c.fg;
  ctx.font = "11px sans-serif";
  const widthOf = (text: string) => (typeof ctx.measureText === "function" ? ctx.measureText(text).width : 6.5 * text.length);
  for (const { at, text } of logTicks(lo, hi, h - 24)) {   // ticks and labels: 10ⁿ at each decade, at least two
    ctx.beginPath();
    ctx.moveTo(x0 - 4, Y(at));
    ctx.lineTo(x0, Y(at));
    ctx.stroke();
    // right-aligned against its tick, as a y-axis' labels are (left-aligned, "1" stood 30 px off)
    ctx.fillText(text, Math.max(0, x0 - 4 - LABEL_GAP_PX - widthOf(text)), Math.max(Y(at) + 4, 10));
  }
  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = c.muted;
  ctx.beginPath();
  ctx.moveTo(X(0), Y(0));
  ctx.lineTo(X(d.steps - 1), Y(0));
  ctx.stroke();
  ctx.setLineDash([]);
  const width = Math.max(1, Math.round(x1 - x0));
  for (const [f, colour] of series) {
    const haloed = colour === c.exponent;
    ctx.beginPath();
    let pen = false;
    if (d.steps > width) {   // one vertical run per pixel column: its steps' min to max
      const { lo: a, hi: b } = columnExtremes(f, d.steps, width);
      for (let x = 0; x < width; x++) {
        if (!Number.isFinite(a[x])) { pen = false; continue; }
        if (pen) ctx.lineTo(x0 + x + 0.5, Y(a[x])); else ctx.moveTo(x0 + x + 0.5, Y(a[x]));
        ctx.lineTo(x0 + x + 0.5, Y(b[x]));
        pen = true;
      }
    } else {
      for (let i = 0; i < d.steps; i++) {
        const v = f(i);
        if (!Number.isFinite(v)) { pen = false; continue; }
        if (pen) ctx.lineTo(X(i), Y(v)); else ctx.moveTo(X(i), Y(v));
        pen = true;
      }
    }
    // the running exponent lies inside the sigma_max band (it is sigma_max's running geometric
    // mean), where both colours are alike in luminance: a halo of the page's colour sets it apart
    if (haloed) {
      ctx.strokeStyle = c.bg;
      ctx.lineWidth = 4;   // 1 px each side: the band still shows above and below it
      ctx.stroke();
    }
    ctx.strokeStyle = colour;
    ctx.lineWidth = haloed ? 2 : 1.5;
    ctx.stroke();
    if (d.steps <= width) {   // a step no segment reaches (one step; a lone value among NaN): a dot
      ctx.fillStyle = colour;
      for (let i = 0; i < d.steps; i++) {
        if (!Number.isFinite(f(i)) || Number.isFinite(f(i - 1)) || Number.isFinite(f(i + 1))) continue;
        ctx.beginPath();
        ctx.arc(X(i), Y(f(i)), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.strokeStyle = c.accent;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(X(t), 0);
  ctx.lineTo(X(t), h - 14);
  ctx.stroke();
  // the step axis: whole-step ticks under the plot (at least STEP_TICK_PX apart), its title
  // in the margin left of it
  ctx.fillStyle = c.fg;
  ctx.strokeStyle = c.fg;
  ctx.lineWidth = 1;
  ctx.fillText("step", 0, h - 3);
  let free = widthOf("step") + 6;   // where the next label may start
  // ticks at round numbers of the model's steps (a window of steps starts at its first: stepNumber)
  const first = stepNumber(d, 0);
  for (const step of linearTicks(first, first + Math.max(d.steps - 1, 0), Math.max(1, Math.floor((x1 - x0) / STEP_TICK_PX)), true)) {
    const x = X(step - first), label = String(step), half = widthOf(label) / 2;
    ctx.beginPath();
    ctx.moveTo(x, h - 18);
    ctx.lineTo(x, h - 14);
    ctx.stroke();
    const at = Math.min(Math.max(x - half, free), w - 2 * half);   // whole, inside the canvas
    if (at + 2 * half > w + 0.5 || Math.abs(at + half - x) > half + 2) continue;   // no room under its tick
    ctx.fillText(label, at, h - 3);
    free = at + 2 * half + 6;
  }
  return [lo, hi];
}

/** The eigenvalues of fixed point `p` against the unit circle (outside: unstable colour). */
export function drawEigen(ctx: Ctx, d: DynamicsData, p: number, size: number, c: Colours): number {
  ctx.clearRect(0, 0, size, size);
  let r = 1.1;
  if (p >= 0) {
    for (let j = 0; j < d.state; j++) r = Math.max(r, Math.hypot(d.eigRe[p * d.state + j], d.eigIm[p * d.state + j]) * 1.05);
  }
  const S = scaler(-r, r, 6, size - 6), Sy = scaler(-r, r, size - 6, 6);
  ctx.strokeStyle = c.muted;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.arc(S(0), Sy(0), S(1) - S(0), 0, 2 * Math.PI);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(S(-r), Sy(0)); ctx.lineTo(S(r), Sy(0));
  ctx.moveTo(S(0), Sy(-r)); ctx.lineTo(S(0), Sy(r));
  ctx.stroke();
  // the axes named (real part across, imaginary up) and the circle's radius (1, just inside it, above
  // the axis; "Re" below it): off the real eigenvalues, which lie on the axis, and the largest at its end
  ctx.fillStyle = c.fg;
  ctx.font = "11px sans-serif";
  ctx.fillText("Re", size - 16, Sy(0) + 13);
  ctx.fillText("Im", S(0) - 17, 14);
  ctx.fillText("1", S(1) - 9, Sy(0) - 4);
  let outside = 0;
  if (p < 0) return outside;
  for (let j = 0; j < d.state; j++) {
    const re = d.eigRe[p * d.state + j], im = d.eigIm[p * d.state + j];
    const unstable = Math.hypot(re, im) >= 1;
    outside += unstable ? 1 : 0;
    ctx.fillStyle = unstable ? c.unstable : c.line;
    ctx.beginPath();
    ctx.arc(S(re), Sy(im), 2.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  return outside;
}

/** The readout under the slider: plain text (no HTML). */
export function readout(d: DynamicsData, t: number): string {
  const fmt = (v: number) => (Number.isFinite(v) ? v.toPrecision(4) : "–");
  const parts = [`step ${stepNumber(d, t)}`, `σ_max ${fmt(d.sigmaMax[t])}`, `σ_min ${fmt(d.sigmaMin[t])}`,
    `running exponent ${fmt(d.exponent[t])}`];
  const p = d.nearest[t];
  if (p >= 0 && d.points) parts.push(`nearest fixed point ${p} (${d.stable[p] > 0.5 ? "stable" : "unstable"})`);
  return parts.join(" · ");
}

/** For a window of steps: the legend's PCA plane and exponents are the whole run's; "" otherwise. */
export function wholeRun(index: DynamicsIndex): string {
  const run = index.run_steps ?? index.steps;
  if (run <= index.steps) return "";
  const first = index.first_step ?? 0;
  return `; the plane and the exponents are of the whole run (steps 0–${run - 1}), shown here over steps ` +
    `${first}–${first + index.steps - 1}`;
}

const REST_MS = 250;

export function renderDynamics(model: AnyModel<DynamicsModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-dyn", el);
  // Lumino (JupyterLab, Notebook 7) would take the slider's arrow keys as notebook shortcuts
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.style.cssText = "font: 12px sans-serif; display: flex; flex-direction: column; gap: 6px;";
  const title = element("div", "rw-dyn-title", root);
  title.style.fontWeight = "bold";
  // Nothing to draw (a layer with no steps in the window): a sentence saying why, as text, in place of the plots.
  const empty = element("div", "rw-dyn-empty", root);
  empty.style.cssText = "display: none; max-width: 60em; padding: 4px 0;";
  const row = element("div", "rw-dyn-row", root);
  row.style.cssText = "display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start;";
  const planeBox = element("div", "rw-dyn-plane-box", row);
  const plane = element("canvas", "rw-dyn-plane", planeBox);
  plane.width = 300; plane.height = 300;
  const yaxis = element("select", "rw-dyn-yaxis", planeBox);
  /** The menu of what goes upwards: the components that exist; hidden with nothing to choose between. */
  function fillYAxis(components: number): void {
    const offered = upwardComponents(components);
    if (yaxis.options.length === offered.length && [...yaxis.options].every((o, i) => o.value === offered[i].value)) return;
    const kept = yaxis.value;
    yaxis.replaceChildren(...offered.map(({ value, text }) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      return option;
    }));
    if (offered.some((o) => o.value === kept)) yaxis.value = kept;
    yaxis.style.display = offered.length > 1 ? "" : "none";
  }
  fillYAxis(3);
  const right = element("div", "rw-dyn-right", row);
  // align-items: a stretched canvas is scaled up (blurred; the eigenvalue disc grew 4x): each keeps its size
  right.style.cssText = "display: flex; flex-direction: column; gap: 4px; align-items: flex-start; min-width: 0; max-width: 100%;";
  const spectrumTitle = element("div", "rw-dyn-caption rw-dyn-spectrum-legend", right);
  spectrumTitle.style.cssText = "display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center;";
  const swatches: [keyof Colours, string, boolean][] = [
    ["line", "σ_max", false], ["muted", "σ_min", false],
    ["exponent", "running exponent: e^λ_t, the geometric mean of σ_max so far", false], ["muted", "σ = 1", true],
  ];
  const swatchEls: [HTMLElement, keyof Colours][] = [];
  element("span", "", spectrumTitle).textContent = "step Jacobian, log scale:";
  for (const [key, label, dashed] of swatches) {
    const item = element("span", "rw-dyn-key", spectrumTitle);
    const mark = element("span", "rw-dyn-swatch", item);
    mark.style.cssText = `display: inline-block; width: 16px; height: 0; margin-right: 4px; vertical-align: middle; ` +
      `border-top: 2px ${dashed ? "dashed" : "solid"};`;
    element("span", "", item).textContent = label;
    swatchEls.push([mark, key]);
  }
  const spectrum = element("canvas", "rw-dyn-spectrum", right);
  spectrum.width = 460; spectrum.height = 150;
  const eigenTitle = element("div", "rw-dyn-caption", right);
  const eigen = element("canvas", "rw-dyn-eigen", right);
  eigen.width = 200; eigen.height = 200;
  // each canvas drawn at its own size, narrowed (in proportion) to a narrow cell, never stretched
  for (const canvas of [plane, spectrum, eigen]) canvas.style.cssText = "display: block; max-width: 100%; height: auto;";
  const slider = element("input", "rw-dyn-slider", root);
  slider.type = "range";
  slider.min = "0";
  slider.style.cssText = "width: 100%; margin: 2px 0; box-sizing: border-box;";   // the default margin overflowed the cell
  const text = element("div", "rw-dyn-readout", root);
  text.style.fontFamily = "monospace";
  const legend = element("div", "rw-dyn-legend", root);

  // Inside an Explorer: the spectrum on a row of its own under the heatmap's columns (align below).
  const alignedRow = element("div", "rw-dyn-aligned-row", root);
  root.insertBefore(alignedRow, row);
  let heatmap: HTMLCanvasElement | null = null;

  let data: DynamicsData;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let palette = colours(root);
  let themeRead = root.isConnected;
  let plotLeft: number | null = null;   // inside an Explorer: where the heatmap's columns start on the spectrum
  function paint(): void {
    for (const [mark, key] of swatchEls) mark.style.borderTopColor = palette[key];
  }
  paint();
  // A theme switch: the colours re-read from the page (after the theme's CSS is loaded), and redrawn.
  const themeWatch = typeof MutationObserver === "function"
    ? new MutationObserver(() => { palette = colours(root); paint(); draw(); }) : null;
  themeWatch?.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  const ctxOf = (canvas: HTMLCanvasElement) => canvas.getContext("2d") as Ctx | null;

  function load(): void {
    const index = model.get("index");
    data = decodeDynamics(index, floatsOf(model.get("buffer")));
    title.textContent = model.get("title");
    slider.max = `${Math.max(data.steps - 1, 0)}`;
    const ly = index.lyapunov.map((v) => (Number.isFinite(v) ? v.toFixed(3) : "–")).join(", ");
    fillYAxis(index.components ?? 3);
    const ev = index.explained.map((v) => `${(v * 100).toFixed(0)}%`).join(", ");
    legend.textContent = `PCA plane of h (variance explained ${ev}); fixed points: filled stable, hollow unstable ` +
      `(arrows: its unstable direction); finite-time Lyapunov exponents ${ly} per step` +
      (index.reverse ? "; this direction runs backward in time" : "") + wholeRun(index);
    showEmpty(index.empty ?? "");
    draw();
  }

  /** The sentence instead of the plots, slider, readout and legend ("": the plots). */
  function showEmpty(sentence: string): void {
    empty.textContent = sentence;
    empty.style.display = sentence ? "" : "none";
    for (const part of [row, alignedRow]) part.style.display = sentence ? "none" : "flex";
    for (const part of [text, legend]) part.style.display = sentence ? "none" : "";
    slider.style.display = sentence || heatmap ? "none" : "";   // inside an Explorer its slider drives this view
  }

  function draw(): void {
    if (!themeRead && root.isConnected) {   // a view rendered before it was attached read no theme
      themeRead = true;
      palette = colours(root);
      paint();
    }
    const t = Math.min(Math.max(model.get("t") | 0, 0), Math.max(data.steps - 1, 0));
    slider.value = `${t}`;
    if (model.get("index").empty) return;   // the sentence says why there is nothing to draw
    const yc = yaxis.value === "2" ? 2 : 1;
    const p = ctxOf(plane), s = ctxOf(spectrum), e = ctxOf(eigen);
    if (p) drawPlane(p, data, t, yc, plane.width, plane.height, palette, model.get("index").components ?? 3);
    if (s) drawSpectrum(s, data, t, spectrum.width, spectrum.height, palette, plotLeft);
    const nearest = data.points ? data.nearest[t] : -1;
    if (e) drawEigen(e, data, nearest, eigen.width, palette);
    eigenTitle.textContent = nearest >= 0
      ? `eigenvalues at fixed point ${nearest}, nearest the state, and the unit circle`
      : "eigenvalues: no fixed points given (rw.fixed_points)";
    text.textContent = readout(data, t);
  }

  /** Inside an Explorer, put the spectrum under the heatmap's columns (same left edge and width). */
  function align(): void {
    // the Explorer's own heatmap (a gradient grid under it has a .rw-heatmap too)
    const found = el.closest(".rw-explorer-box")?.querySelector<HTMLCanvasElement>(".rw-explorer .rw-heatmap") ?? null;
    if (!found || found.getBoundingClientRect().width === 0) return;
    if (heatmap === null) {
      heatmap = found;
      root.classList.add("rw-dyn-aligned");
      alignedRow.append(spectrumTitle, spectrum);
      slider.style.display = "none";     // the Explorer's slider drives this view
    }
    // the canvas runs from the row's left edge (the decade labels, beside the heatmap's unit ids)
    // to the heatmap's right edge; its plot spans exactly the heatmap's columns
    const box = heatmap.getBoundingClientRect(), rowBox = alignedRow.getBoundingClientRect();
    const left = Math.max(0, Math.round(box.left - rowBox.left)), width = left + Math.round(box.width);
    if (spectrum.width !== width || plotLeft !== left) {
      spectrum.width = width;
      spectrum.style.width = `${width}px`;
      plotLeft = left;
      spectrumTitle.style.marginLeft = `${left}px`;
      draw();
    }
  }
  alignedRow.style.cssText = "display: flex; flex-direction: column; gap: 2px;";
  const host = el.closest(".rw-explorer-box") ?? el.parentElement;
  const resize = typeof ResizeObserver === "function" ? new ResizeObserver(() => align()) : null;
  if (host && resize) resize.observe(host);
  const retry = setInterval(() => { align(); if (heatmap) clearInterval(retry); }, 250);

  const onInput = () => {
    model.set("t", Number(slider.value));   // drawn at once through change:t
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; model.save_changes(); }, REST_MS);
  };
  slider.addEventListener("input", onInput);
  yaxis.addEventListener("change", draw);
  model.on("change:t", draw);
  model.on("change:buffer", load);
  model.on("change:index", load);
  model.on("change:title", () => { title.textContent = model.get("title"); });
  load();
  return () => {
    if (timer) clearTimeout(timer);
    clearInterval(retry);
    resize?.disconnect();
    themeWatch?.disconnect();
    model.off("change:t", draw);
    model.off("change:buffer", load);
    model.off("change:index", load);
    root.remove();
  };
}
