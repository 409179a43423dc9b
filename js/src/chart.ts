// A chart of a few series (rnnwidgets.widgets.chart.Chart): lines through steps on a log or a
// linear y axis (gradient norms through time, a training loss), or horizontal bars per named
// category on a log axis (|grad| per parameter tensor). Drawn in SVG and HTML from one float32
// buffer; the step cursor `t` moves one line and the legend's values, so a follower of a step
// control (followers.ts) follows a scrub in the page without a redraw.
//
// Legible: ticks never crowd their axis (axes.ts: decades only on a log axis, whole steps on a
// step axis), the legend sits outside the data (under the plot), category names are shown whole
// (wrapped), and every colour of text and axes comes from JupyterLab's CSS variables.
//
// Stable DOM hooks (browser tests rely on them):
//   .rw-chart             the root (data-kind: lines | bars)      .rw-chart-title  the title
//   .rw-chart-plot        the SVG of a line chart                  .rw-chart-series one path per series
//   .rw-chart-tick        a tick label (SVG text or HTML span; data-axis: x | y)
//   .rw-chart-axis-label  an axis title               data-log on the root: the value axis is logarithmic
//   .rw-chart-cursor      the step cursor (an SVG line)            .rw-chart-legend the legend
//   .rw-chart-value       a series' value at the cursor, in its legend entry
//   .rw-chart-category    a bar chart's category name              .rw-chart-bar  one bar
//   .rw-chart-flag        the text drawn instead of a bar that cannot be (zero, non-finite)
//   .rw-chart-empty       the text shown while there is no data (or none a line can show, and why)
//   .rw-chart-dot         a point of a line that no segment reaches (a single step), as a dot
//
// Model traits: kind ("lines" | "bars"), title, x_label, y_label, y_scale ("log" | "linear"),
// x_integer (whole-number x ticks), series ([{name, colour, dash, points}]), categories (bars),
// flags (category -> text), rules ([{name, value}]: horizontal lines, e.g. a clipping threshold),
// buffer (float32: lines: x then each series' values, `points` each; bars: each series' value per
// category), points, t (the cursor, an x value; null: none), empty (the text while there is no data),
// first_step (a trace of a window of steps, rw.trace(steps=...): the model's number of step 0; x and
// t count from 0 as the Explorer's t does, the x ticks say the model's numbers: state.ts stepNumber).
import type { AnyModel } from "@anywidget/types";
import { decadeRange, decadeText, decadeTicks, extent, linearTicks, niceRange, tickText, valueText } from "./chart_axes";
import { SERIES_COLOURS } from "./colormap";
import { floatsOf } from "./decode";
import { coalesced, element } from "./dom";
import { stepNumber } from "./state";
import { seriesVariables } from "./style";

export interface SeriesSpec {
  name: string;
  colour?: number; // palette index
  dash?: boolean;
  points?: boolean; // markers only, no line
}

export interface Rule {
  name: string;
  value: number;
}

export interface ChartModel {
  kind: "lines" | "bars";
  title: string;
  x_label: string;
  y_label: string;
  y_scale: "log" | "linear";
  x_integer: boolean;
  series: SeriesSpec[];
  categories: string[];
  flags: Record<string, string>;
  rules: Rule[];
  buffer: DataView;
  points: number;
  t: number | null;
  empty: string;
  undrawn?: string; // why lines with points draw nothing (the kernel knows a 0 from a NaN), or ""
  first_step?: number; // the model's number of step 0 (a window of steps' first): the x ticks add it; 0 when absent
}

// The series colours: Okabe and Ito's hues shaded per theme (colormap.ts SERIES_COLOURS), read
// from --rw-series-k (style.ts), the light theme's where no stylesheet sets them.
export const PALETTE = SERIES_COLOURS.light;
export const RULE_COLOUR = "var(--jp-error-color1, #d32f2f)";
const TEXT = "var(--jp-ui-font-color1, #1a1a1a)";
const GRID = "var(--jp-border-color2, #e0e0e0)";
const AXIS = "var(--jp-border-color1, #bdbdbd)";
const SVG_NS = "http://www.w3.org/2000/svg";
const PLOT_HEIGHT = 200;
const EMPTY_HEIGHT = 60;
const BAR_END = 18; // px kept right of the bars and their axis alike: room for the last tick's label // a chart waiting for data: a line of text, not a tall blank box
const MARGIN = { top: 10, right: 14, bottom: 38, left: 58 };
const Y_TICK_GAP = 22; // px between y tick labels at least
const X_TICK_GAP = 64; // px between x tick labels at least

export const colourOf = (s: SeriesSpec, i: number) => {
  const k = (s.colour ?? i) % PALETTE.length;
  return `var(--rw-series-${k}, ${PALETTE[k]})`;
};

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, parent?: Element) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  parent?.append(node);
  return node;
}

/** The lines' data: x and one row per series, cut from the buffer. */
export function linesOf(buffer: Float32Array, points: number, series: number): { x: Float32Array; ys: Float32Array[] } {
  if (buffer.length !== points * (series + 1)) {
    throw new Error(`rnnwidgets chart: expected ${points} x values and ${series} series of ${points}, got ${buffer.length} values`);
  }
  return {
    x: buffer.subarray(0, points),
    ys: Array.from({ length: series }, (_, s) => buffer.subarray((s + 1) * points, (s + 2) * points)),
  };
}

/** An SVG path through the finite points (a point a log axis cannot place breaks the line). */
export function pathOf(x: ArrayLike<number>, y: ArrayLike<number>, px: (v: number) => number, py: (v: number) => number,
  log: boolean): string {
  let d = "";
  let open = false;
  for (let i = 0; i < x.length; i++) {
    const v = y[i];
    if (!Number.isFinite(v) || (log && !(v > 0))) {
      open = false;
      continue;
    }
    d += `${open ? "L" : "M"}${px(x[i]).toFixed(1)},${py(v).toFixed(1)}`;
    open = true;
  }
  return d;
}

/** The points a path cannot show: finite (positive, on a log axis) with no drawable neighbour, so
 * no segment passes through them (a run of one step; a lone value among NaN). Drawn as dots. */
export function isolatedPoints(y: ArrayLike<number>, log: boolean): number[] {
  const ok = (i: number) => i >= 0 && i < y.length && Number.isFinite(y[i]) && (!log || y[i] > 0);
  const out: number[] = [];
  for (let i = 0; i < y.length; i++) if (ok(i) && !ok(i - 1) && !ok(i + 1)) out.push(i);
  return out;
}

/** Why a line chart with points has nothing to draw (extent found none): every value NaN/inf, or,
 * some being finite, none above 0 for its log axis. */
export function nothingDrawable(ys: ArrayLike<number>[]): string {
  let finite = false;
  for (const y of ys) for (let i = 0; i < y.length && !finite; i++) finite = Number.isFinite(y[i]);
  if (!finite) return "nothing to draw: every value is NaN or infinite";
  return "nothing to draw on a log axis: every value is 0 (or below)";
}

/** The index of the point whose x is nearest `t` (x ascending), or -1. */
export function nearestIndex(x: ArrayLike<number>, t: number | null): number {
  if (t === null || !Number.isFinite(t) || x.length === 0) return -1;
  let lo = 0;
  let hi = x.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && Math.abs(x[lo - 1] - t) < Math.abs(x[lo] - t) ? lo - 1 : lo;
}

function legendEntry(parent: HTMLElement, s: SeriesSpec, colour: string): HTMLSpanElement {
  const item = element("span", "rw-chart-legend-item", parent);
  item.style.cssText = "display: inline-flex; align-items: center; gap: 4px; white-space: nowrap;";
  const swatch = svg("svg", { width: 22, height: 10, "aria-hidden": "true" });
  const mark = s.points ? svg("path", { d: "M7,1L15,9M7,9L15,1", "stroke-width": 2 }, swatch)
    : svg("line", { x1: 0, y1: 5, x2: 22, y2: 5, "stroke-width": 2.5, "stroke-dasharray": s.dash ? "5,3" : "" }, swatch);
  mark.style.stroke = colour; // a style, not an attribute: the colour may be a CSS variable
  item.append(swatch);
  const name = element("span", "rw-chart-legend-name", item);
  name.textContent = s.name; // user data (layer names): text only
  const value = element("span", "rw-chart-value", item);
  value.style.cssText = "font-variant-numeric: tabular-nums;";
  return value;
}

export function renderChart(model: AnyModel<ChartModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-chart", el);
  const style = element("style", "rw-style", root); // the theme's series colours
  style.textContent = seriesVariables(".rw-chart");
  root.style.cssText = `font: 12px sans-serif; color: ${TEXT}; display: flex; flex-direction: column; gap: 4px; min-width: 0; margin: 6px 0 10px; ` +
    "padding: 0 4px;"; // a gutter: a right-aligned parameter name never touches the output's edge
  const title = element("div", "rw-chart-title", root);
  title.style.cssText = "font-weight: bold;";
  const body = element("div", "rw-chart-body", root);
  body.style.cssText = "position: relative; min-width: 0;";
  const legend = element("div", "rw-chart-legend", root);
  legend.style.cssText = "display: flex; flex-wrap: wrap; gap: 4px 14px;";

  let cursor: SVGLineElement | null = null;
  let values: HTMLSpanElement[] = [];
  let lines: { x: Float32Array; ys: Float32Array[] } | null = null;
  let place: ((v: number) => number) | null = null;
  let width = 0;

  function showEmpty(why = ""): void {
    const note = element("div", "rw-chart-empty", body);
    note.style.cssText = `height: ${EMPTY_HEIGHT}px; display: flex; align-items: center; justify-content: center; ` +
      `border: 1px dashed ${AXIS}; text-align: center; padding: 0 8px;`;
    note.textContent = why || model.get("empty") || "no data";
  }

  function drawLines(series: SeriesSpec[], data: Float32Array): void {
    const points = model.get("points");
    lines = linesOf(data, points, series.length);
    const log = model.get("y_scale") === "log";
    const rules = model.get("rules") ?? [];
    const span = extent(Float32Array.from([...lines.ys.flatMap((y) => Array.from(y)), ...rules.map((r) => r.value)]), log);
    const xs = extent(lines.x, false);
    if (!span || !xs) {   // points, but none a line can show: say why, not "no data yet"
      showEmpty(xs && points > 0 ? model.get("undrawn") || nothingDrawable(lines.ys) : "");
      return;
    }
    const plotW = Math.max(60, width - MARGIN.left - MARGIN.right);
    const plotH = PLOT_HEIGHT;
    const integer = model.get("x_integer");
    // the x axis in the model's step numbers (a window of steps starts at its first), so its ticks
    // are round numbers of those; the data's x and the cursor count from 0, as the Explorer's t
    const steps = { firstStep: model.get("first_step") ?? 0 };
    const [x0, x1] = niceRange(stepNumber(steps, xs[0]), stepNumber(steps, xs[1]), Math.floor(plotW / X_TICK_GAP), integer);
    const [y0, y1] = log ? decadeRange(span[0], span[1]) : niceRange(span[0], span[1], Math.floor(plotH / Y_TICK_GAP) - 1);
    const at = (n: number) => MARGIN.left + ((n - x0) / (x1 - x0)) * plotW; // a step as the model numbers it
    const px = (v: number) => at(stepNumber(steps, v));
    const py = log
      ? (v: number) => MARGIN.top + (1 - (Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * plotH
      : (v: number) => MARGIN.top + (1 - (v - y0) / (y1 - y0)) * plotH;
    place = px;

    const plot = svg("svg", { class: "rw-chart-plot", width, height: MARGIN.top + plotH + MARGIN.bottom, role: "img" }, body);
    plot.setAttribute("aria-label", model.get("title"));
    plot.style.display = "block";
    const text = (x: number, y: number, s: string, cls: string, anchor: string) => {
      const node = svg("text", { x, y, class: cls, "text-anchor": anchor, "font-size": 11 }, plot);
      node.style.fill = TEXT;
      node.textContent = s;
      return node;
    };
    const yTicks = log ? decadeTicks(y0, y1, Math.floor(plotH / Y_TICK_GAP) + 1)
      : linearTicks(y0, y1, Math.floor(plotH / Y_TICK_GAP));
    // a log axis over few decades: unlabelled lines at 2..9 times each decade, to read values between
    if (log && Math.log10(y1 / y0) <= 3) {
      for (let d = y0; d < y1; d *= 10) {
        for (let m = 2; m < 10; m++) {
          const y = py(d * m);
          const minor = svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: y, y2: y, "stroke-width": 0.5,
            class: "rw-chart-minor" }, plot);
          minor.style.stroke = GRID;
        }
      }
    }
    for (const v of yTicks) {
      const y = py(v);
      svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: y, y2: y, "stroke-width": 1 }, plot).style.stroke = GRID;
      text(MARGIN.left - 6, y + 4, log ? decadeText(v) : tickText(v), "rw-chart-tick", "end").dataset.axis = "y";
    }
    for (const v of linearTicks(x0, x1, Math.floor(plotW / X_TICK_GAP), integer)) {
      const x = at(v);
      svg("line", { x1: x, x2: x, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4 }, plot).style.stroke = AXIS;
      // a whole step is said whole (step 120000, not 1e+5), as the Explorer's axes say it
      text(x, MARGIN.top + plotH + 16, integer ? String(v) : tickText(v), "rw-chart-tick", "middle").dataset.axis = "x";
    }
    const frame = svg("rect", { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, fill: "none" }, plot);
    frame.style.stroke = AXIS;
    text(MARGIN.left + plotW / 2, MARGIN.top + plotH + 32, model.get("x_label"), "rw-chart-axis-label", "middle");
    const yLabel = text(0, 0, model.get("y_label"), "rw-chart-axis-label", "middle");
    yLabel.setAttribute("transform", `translate(12,${MARGIN.top + plotH / 2}) rotate(-90)`);

    for (const rule of rules) {
      const y = py(rule.value);
      const line = svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: y, y2: y, "stroke-width": 1.5,
        "stroke-dasharray": "6,4", class: "rw-chart-rule" }, plot);
      line.style.stroke = RULE_COLOUR;
    }
    series.forEach((s, i) => {
      const y = lines?.ys[i] ?? new Float32Array(0);
      const colour = colourOf(s, i);
      if (s.points) {
        let d = "";
        for (let k = 0; k < y.length; k++) {
          if (!Number.isFinite(y[k]) || (log && !(y[k] > 0))) continue;
          const cx = px(lines?.x[k] ?? 0);
          const cy = py(y[k]);
          d += `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx - 4},${cy + 4}L${cx + 4},${cy - 4}`;
        }
        svg("path", { d, "stroke-width": 1.5, fill: "none", class: "rw-chart-series" }, plot).style.stroke = colour;
      } else {
        svg("path", { d: pathOf(lines?.x ?? [], y, px, py, log), "stroke-width": 2, fill: "none",
          "stroke-dasharray": s.dash ? "6,4" : "", "stroke-linejoin": "round", class: "rw-chart-series" }, plot)
          .style.stroke = colour; // a style: the colour is a CSS variable
        for (const k of isolatedPoints(y, log)) {   // a point no segment reaches: a dot, or it is not seen
          const dot = svg("circle", { cx: px(lines?.x[k] ?? 0).toFixed(1), cy: py(y[k]).toFixed(1), r: 3.5,
            class: "rw-chart-dot" }, plot);
          dot.style.fill = colour;
        }
      }
    });
    cursor = svg("line", { class: "rw-chart-cursor", y1: MARGIN.top, y2: MARGIN.top + plotH, "stroke-width": 1.5 }, plot);
    cursor.style.stroke = TEXT;
  }

  function drawBars(series: SeriesSpec[], data: Float32Array): void {
    const categories = model.get("categories") ?? [];
    if (data.length !== categories.length * series.length) {
      throw new Error(`rnnwidgets chart: expected ${series.length} series of ${categories.length} bars, got ${data.length} values`);
    }
    const span = extent(data, true);
    const flags = model.get("flags") ?? {};
    const grid = element("div", "rw-chart-bars", body);
    grid.style.cssText = "display: grid; grid-template-columns: fit-content(45%) minmax(120px, 1fr); gap: 3px 8px; align-items: center;";
    const [lo, hi] = span ? decadeRange(span[0], span[1]) : [1e-3, 1];
    const frac = (v: number) => (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo));
    categories.forEach((name, c) => {
      const label = element("div", "rw-chart-category", grid);
      label.style.cssText = "text-align: right; overflow-wrap: anywhere;";
      label.textContent = name; // user data (parameter names): text only, whole
      label.title = name;
      const track = element("div", "rw-chart-track", grid);
      track.style.cssText = `position: relative; height: ${series.length * 7 + 4}px; border-left: 1px solid ${AXIS}; margin-right: ${BAR_END}px;`;
      const flag = flags[name];
      if (flag) {
        const note = element("span", "rw-chart-flag", track);
        note.style.cssText = `position: absolute; left: 4px; top: 50%; transform: translateY(-50%); font-style: italic; white-space: nowrap;`;
        note.textContent = flag;
        return;
      }
      series.forEach((s, i) => {
        const v = data[i * categories.length + c];
        if (!(v > 0) || !Number.isFinite(v)) return;
        const bar = element("div", "rw-chart-bar", track);
        bar.style.cssText = `position: absolute; left: 0; top: ${2 + i * 7}px; height: 6px; ` +
          `width: ${(Math.max(0, frac(v)) * 100).toFixed(2)}%; background: ${colourOf(s, i)};`;
        bar.title = `${name} · ${s.name} · ${valueText(v)}`;
      });
    });
    // the axis: decade ticks under the tracks, thinned to the track's width
    element("div", "rw-chart-axis-spacer", grid);
    const axis = element("div", "rw-chart-axis", grid);
    axis.style.cssText = `position: relative; height: 30px; border-top: 1px solid ${AXIS}; margin-right: ${BAR_END}px;`;
    const trackWidth = Math.max(120, (width || 400) * 0.55);
    for (const v of decadeTicks(lo, hi, Math.floor(trackWidth / 48))) {
      const tick = element("span", "rw-chart-tick", axis);
      tick.style.cssText = `position: absolute; top: 2px; left: ${(frac(v) * 100).toFixed(2)}%; transform: translateX(-50%); font-size: 11px;`;
      tick.textContent = decadeText(v);
      tick.dataset.axis = "x";
    }
    const label = element("span", "rw-chart-axis-label", axis);
    label.style.cssText = "position: absolute; top: 16px; left: 50%; transform: translateX(-50%); white-space: nowrap;";
    label.textContent = model.get("x_label");
  }

  function moveCursor(): void {
    const t = model.get("t");
    const i = lines ? nearestIndex(lines.x, t) : -1;
    if (cursor && place && lines) {
      cursor.style.display = i < 0 ? "none" : "";
      if (i >= 0) {
        const x = place(lines.x[i]).toFixed(1);
        cursor.setAttribute("x1", x);
        cursor.setAttribute("x2", x);
      }
    }
    values.forEach((span, s) => {
      span.textContent = lines && i >= 0 ? `= ${valueText(lines.ys[s][i])}` : "";
    });
  }

  function draw(): void {
    width = body.clientWidth || el.clientWidth || 600;
    body.replaceChildren();
    legend.replaceChildren();
    cursor = null;
    place = null;
    lines = null;
    values = [];
    title.textContent = model.get("title");
    const series = model.get("series") ?? [];
    const data = floatsOf(model.get("buffer"));
    const bars = model.get("kind") === "bars";
    root.dataset.kind = bars ? "bars" : "lines";
    root.dataset.log = String(bars || model.get("y_scale") === "log"); // the value axis is logarithmic
    if (data.length === 0 || series.length === 0) showEmpty();
    else if (bars) drawBars(series, data);
    else drawLines(series, data);
    values = series.map((s, i) => legendEntry(legend, s, colourOf(s, i)));
    if (bars) {
      for (const v of values) v.remove(); // bars have no cursor: no value at it
      values = [];
    }
    for (const rule of model.get("rules") ?? []) legendEntry(legend, { name: rule.name, dash: true }, RULE_COLOUR).remove();
    moveCursor();
  }

  // Data traits change together (one message, hold_sync): draw once for all of them.
  const onData = coalesced(draw);
  const dataEvents = ["kind", "title", "x_label", "y_label", "y_scale", "x_integer", "series", "categories", "flags",
    "rules", "buffer", "points", "empty", "undrawn", "first_step"].map((name) => `change:${name}`);
  for (const name of dataEvents) model.on(name, onData);
  model.on("change:t", moveCursor);
  // a new width re-lays the axes (tick counts follow the room there is)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    if (Math.abs((body.clientWidth || width) - width) > 1) onData();
  });
  resize?.observe(body);
  draw();

  return () => {
    for (const name of dataEvents) model.off(name, onData);
    model.off("change:t", moveCursor);
    resize?.disconnect();
  };
}
