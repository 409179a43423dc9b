// Units: the compared units' values of the selected quantity over time as lines with a cursor at
// t, an ordering control whose permutation the heatmap shares, the top units of that order, and
// a search box for a unit number. A scrub only moves the cursor; lines redraw when what they
// show changes.
//
// The selected unit's line is drawn on its own axis (left: its own range over the steps held), so
// a unit that moves between -0.2 and 3.7 fills the plot even beside one saturated at ±10; the
// other compared units share the right axis (their joint range). Line colours are the theme's
// series colours (style.ts: --rw-series-k), the same as the charts'.
import { ORDER_KEYS, unitOrder, type OrderKey } from "./ordering";
import { selectedQuantity } from "./state";
import type { Actions, ExplorerState, Panel, Quantity } from "./state";
import { createAxis, stepLabels } from "./axes";
import { SERIES_COLOURS, lutVersion } from "./colormap";
import { element, setText, themeVariable } from "./dom";
import { createCursorLine } from "./cursor_line";
import { formatValue } from "./heatmap";

import { columnRange, heldRange, seriesAt, stepAtX, xOfStep } from "./timeaxis";

export { columnRange, heldRange, stepAtX, xOfStep }; // the time axis lives in timeaxis.ts

/** The plot's width in pixels before the panel is measured; then it fills its column. */
export const PLOT_W = 640;
export const PLOT_H = 100;
/** Lines drawn at once: the first of `state.units` (the most recently selected first). */
export const MAX_LINES = 8;
// dispatched on .rw-units-plot each time its lines are drawn; its data-lo/data-hi: the left axis
export const AXES_EVENT = "rw-units-axes";
const TOP_UNITS = 8;
/** Line colours before the theme's are read (no stylesheet: a test page): the light theme's. */
const COLORS = SERIES_COLOURS.light;

const ORDER_LABELS: Record<OrderKey, string> = {
  index: "index",
  variance: "variance over the sequence",
  value: "value at t",
  correlation: "correlation with the selected unit",
};

/** The pixel row of a value on a [vmin, vmax] axis (clamped, top = vmax). */
export function yOf(v: number, vmin: number, vmax: number, height: number): number {
  const span = vmax - vmin;
  const f = span > 0 ? (Math.min(vmax, Math.max(vmin, v)) - vmin) / span : 0.5;
  return (1 - f) * (height - 1);
}

/** A line's axis: the finite values of unit `u` of `q` over the steps [from, to), with 5% room
 * above and below (a constant line gets ±1, or ±10% of its value, around it); null: no value. */
export function ownRange(q: Quantity, u: number, from: number, to: number): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let t = from; t < to; t++) {
    const v = seriesAt(q, u, t);
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(lo <= hi)) return null;
  const pad = hi > lo ? 0.05 * (hi - lo) : Math.abs(lo) * 0.1 || 1;
  return [lo - pad, hi + pad];
}

/** The joint range of several lines' ranges (null where none has a value). */
function joint(ranges: ([number, number] | null)[]): [number, number] | null {
  const known = ranges.filter((r): r is [number, number] => r !== null);
  return known.length ? [Math.min(...known.map((r) => r[0])), Math.max(...known.map((r) => r[1]))] : null;
}

/** A unit number typed by the user, or an error saying what was expected. */
export function parseUnit(text: string, units: number): { unit: number } | { error: string } {
  const s = text.trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (Number.isInteger(n) && n < units) return { unit: n };
  return { error: `no unit "${s}": expected a whole number from 0 to ${units - 1}` };
}

/** The valid steps an ordering read: those held before `length`, as "first–last". */
function validRange(q: Quantity, length: number): string {
  const { from, to } = heldRange(q);
  return `${from}–${Math.max(from, Math.min(to, length) - 1)}`;
}

/** What an order was computed from, in words. */
export function orderCaption(key: OrderKey, q: Quantity, sel: { t: number; unit: number; length: number }): string {
  switch (key) {
    case "index": return "";
    case "variance": return `by variance of ${q.name} over steps ${validRange(q, sel.length)}`;
    case "value": return `by ${q.name} at step ${sel.t}`;
    case "correlation": return `by correlation of ${q.name} with unit ${sel.unit} over steps ${validRange(q, sel.length)}`;
  }
}

/**
 * Draws series `index` of `q` over the absolute steps [from, to) across `width` pixels, `y`
 * mapping a value to its pixel row: a polyline through every step when they fit (a dot when one
 * value is finite: a one-step run), else each column's min..max, so a spike is never dropped. Uses the context's stroke and fill styles.
 */
export function drawSeries(
  ctx: CanvasRenderingContext2D, q: Quantity, index: number, from: number, to: number, width: number,
  y: (v: number) => number,
) {
  const n = to - from;
  if (n <= width) {
    ctx.beginPath();
    let points = 0, last = [0, 0];
    for (let k = 0; k < n; k++) {
      const v = seriesAt(q, index, from + k);
      if (!Number.isFinite(v)) continue;
      last = [xOfStep(k, n, width), y(v)];
      ctx.lineTo(last[0], last[1]);
      points++;
    }
    ctx.stroke();
    if (points === 1) { // a polyline of one point draws nothing: a one-step run's value is a dot
      ctx.beginPath();
      ctx.arc(last[0], last[1], Math.max(2.5, ctx.lineWidth + 1), 0, 2 * Math.PI);
      ctx.fill();
    }
    return;
  }
  const { lo, hi } = columnRange(q, index, from, to, width);
  for (let x = 0; x < width; x++) {
    if (!(lo[x] <= hi[x])) continue; // an empty or non-finite column
    ctx.fillRect(x, y(hi[x]), 1, Math.max(1, y(lo[x]) - y(hi[x])));
  }
}

/** The compared units drawn as lines: those `q` has, at most MAX_LINES. */
export function shownUnits(s: ExplorerState, q: Quantity): number[] {
  return s.units.filter((u) => u < q.units).slice(0, MAX_LINES);
}

/** The lines' axes: the selected unit's own (left) and the other compared units' joint one
 * (right; null when the selected unit is drawn alone), over the valid steps held. */
export function lineAxes(q: Quantity, units: number[], selected: number, length: number) {
  const { from, to } = heldRange(q);
  const end = Math.min(to, length) > from ? Math.min(to, length) : to; // padding steps are not data
  const fallback: [number, number] = [q.vmin, q.vmax];
  const own = units.includes(selected) ? ownRange(q, selected, from, end) ?? fallback : null;
  const others = units.filter((u) => u !== selected);
  const shared = others.length ? joint(others.map((u) => ownRange(q, u, from, end))) ?? fallback : null;
  return { left: own ?? shared ?? fallback, right: own ? shared : null };
}

/** The compared units over the steps `q` holds, the selected one (if compared) on the left axis
 * and the others on the right, padding steps (from `length` on) shaded in `faint`, each axis's zero
 * line in `axis`, the lines in `colours` (the theme's). */
function drawLines(canvas: HTMLCanvasElement, q: Quantity, units: number[], selected: number, length: number,
  ink: { faint: string; axis: string; colours: string[] }) {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const { width, height } = canvas;
  const { from, to } = heldRange(q);
  const { left, right } = lineAxes(q, units, selected, length);
  ctx.clearRect(0, 0, width, height);
  if (length < to) { // padding steps: not this element's data
    ctx.fillStyle = ink.faint;
    const x = (Math.max(0, length - from) / (to - from)) * width;
    ctx.fillRect(x, 0, width - x, height);
  }
  ctx.fillStyle = ink.axis;
  for (const [lo, hi] of right ? [left, right] : [left]) {
    if (lo < 0 && hi > 0) ctx.fillRect(0, Math.round(yOf(0, lo, hi, height)), width, 1);
  }
  // the others first, the selected unit over them, thicker
  const order = [...units.keys()].sort((a, b) => Number(units[a] === selected) - Number(units[b] === selected));
  for (const k of order) {
    const u = units[k];
    const [lo, hi] = u === selected || !right ? left : right;
    ctx.strokeStyle = ctx.fillStyle = ink.colours[k % ink.colours.length];
    ctx.lineWidth = u === selected ? 2 : 1.25;
    drawSeries(ctx, q, u, from, to, width, (v) => yOf(v, lo, hi, height));
  }
}

/** A value axis's labels at the plot's top, middle and bottom (none for an axis not drawn). */
function labelAxis(axis: ReturnType<typeof createAxis>, range: [number, number] | null) {
  if (!range) {
    axis.set(0, []);
    axis.el.style.width = "0";
    return;
  }
  const [lo, hi] = range;
  const fmt = (v: number) => formatValue(v).replace("-", "−");
  // the top, middle and bottom of the plot (item -0.5 of 2 is its top edge, 1.5 its bottom)
  const ends = [fmt(hi), fmt((lo + hi) / 2), fmt(lo)];
  axis.set(2, [{ at: -0.5, text: ends[0] }, { at: 0.5, text: ends[1] }, { at: 1.5, text: ends[2] }]);
  axis.el.style.width = `${Math.max(...ends.map((e) => e.length))}ch`; // (its labels are placed absolutely)
  // inside the plot's height: the top label hangs below its line, the bottom one sits on it
  const [top, middle, bottom] = axis.el.children as unknown as HTMLElement[];
  top.style.transform = "none";
  middle.style.transform = "translateY(-50%)";
  bottom.style.transform = "translateY(-100%)";
}

export function createUnits(actions: Actions): Panel {
  const el = element("div", "rw-units");
  const controls = document.createElement("div");
  controls.style.cssText = "display:flex;gap:8px;align-items:center;flex-wrap:wrap";
  const orderSelect = element("select", "rw-order");
  for (const key of ORDER_KEYS) {
    const option = document.createElement("option");
    option.value = key;
    option.textContent = `order by ${ORDER_LABELS[key]}`;
    orderSelect.append(option);
  }
  const search = element("input", "rw-unit-search");
  search.placeholder = "unit #";
  search.inputMode = "numeric";
  search.size = 7;
  const message = element("span", "rw-unit-search-msg");
  controls.append(orderSelect, search, message);

  const caption = element("div", "rw-order-caption");
  const top = element("div", "rw-units-top");
  const legend = element("div", "rw-units-legend");
  legend.style.cssText = "display:flex;gap:8px;flex-wrap:wrap;font:11px monospace";

  // The plot with its axes: the value scale left of it, the steps under it.
  const frame = element("div", "rw-units-frame");
  frame.style.cssText = "display:grid;grid-template-columns:max-content minmax(0,1fr) max-content;column-gap:4px";
  const yAxis = createAxis("rw-units-yaxis", "y"); // the selected unit's own axis
  yAxis.el.style.height = `${PLOT_H}px`;
  const yRight = createAxis("rw-units-yaxis rw-units-yaxis-right", "y"); // the other compared units'
  yRight.el.style.height = `${PLOT_H}px`;
  const plot = element("div", "rw-units-plot");
  plot.style.height = `${PLOT_H}px`;
  const canvas = element("canvas", "rw-units-lines");
  canvas.width = PLOT_W;
  canvas.height = PLOT_H;
  canvas.style.height = `${PLOT_H}px`;
  // the step's cursor, drawn on a canvas over the lines: a scrub moves no element (cursor_line.ts)
  const cursor = createCursorLine("rw-units-cursor");
  plot.append(canvas, cursor.el);
  const xTitle = element("span", "rw-axis-title");
  xTitle.textContent = "step";
  const xAxis = createAxis("rw-step-axis", "x");
  frame.append(yAxis.el, plot, yRight.el, xTitle, xAxis.el);
  const range = element("div", "rw-units-range");
  el.append(controls, caption, top, legend, frame, range);

  let state: ExplorerState | null = null;
  let ours: ArrayLike<number> | null = null; // the last order this panel asked for
  let drawnLines: { data: Float32Array; units: string; length: number; width: number; lut: number } | null = null;
  let width = PLOT_W; // the canvas's width in pixels: the column's, once measured
  // The lines are drawn once the resize observer has reported the column's width (drawn at PLOT_W
  // first, they would be drawn twice on the first render: again at the column's width when the
  // observer reports it, before that frame is shown); the axes are labelled at once.
  let measured = false;
  let ink = { lut: -1, faint: "#eee", axis: "#bbb", colours: COLORS };
  let legendFor = "", topFor: ArrayLike<number> | null | undefined = undefined;

  orderSelect.addEventListener("change", () => {
    if (!state) return;
    const key = orderSelect.value as OrderKey;
    const q = selectedQuantity(state);
    caption.textContent = orderCaption(key, q, state);
    ours = key === "index" ? null : unitOrder(key, q, state);
    actions.setOrder(ours);
  });

  function submitSearch() {
    if (!state) return;
    const result = parseUnit(search.value, selectedQuantity(state).units);
    if ("error" in result) {
      message.textContent = result.error;
      return;
    }
    message.textContent = "";
    actions.setUnit(result.unit);
  }
  search.addEventListener("change", submitSearch);
  search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") submitSearch(); });

  top.addEventListener("click", (ev) => {
    const button = (ev.target as HTMLElement).closest("button");
    if (button?.dataset.unit !== undefined) actions.setUnit(Number(button.dataset.unit));
  });
  legend.addEventListener("click", (ev) => {
    const button = (ev.target as HTMLElement).closest("button");
    if (!state || button?.dataset.remove === undefined) return;
    const unit = Number(button.dataset.remove);
    actions.setUnits(state.units.filter((u) => u !== unit));
  });
  plot.addEventListener("click", (ev) => {
    if (!state) return;
    const rect = plot.getBoundingClientRect();
    const x = rect.width > 0 ? ((ev.clientX - rect.left) / rect.width) * width : 0;
    const { from, to } = heldRange(selectedQuantity(state));
    actions.setT(from + stepAtX(x, to - from, width));
  });

  function updateLegend(units: number[], q: Quantity, selected: number) {
    const key = `${q.name}:${units.join(",")}:${selected}`;
    if (key === legendFor) return;
    legendFor = key;
    legend.replaceChildren(...units.map((u, k) => {
      const entry = element("span", "rw-units-entry");
      const swatch = document.createElement("span");
      swatch.style.cssText = `display:inline-block;width:10px;height:10px;margin-right:3px;` +
        `background:var(--rw-series-${k % COLORS.length}, ${COLORS[k % COLORS.length]})`;
      const name = document.createElement("span");
      name.textContent = `${q.name} unit ${u}`;
      entry.append(swatch, name);
      if (units.length > 1) { // which axis reads this line
        const note = element("span", "rw-units-axis-note");
        note.textContent = u === selected ? " (left axis: its own range)" : " (right axis)";
        entry.append(note);
      }
      if (units.length > 1) {
        const remove = document.createElement("button");
        remove.textContent = "×";
        remove.title = `stop comparing unit ${u}`;
        remove.dataset.remove = String(u);
        entry.append(remove);
      }
      return entry;
    }));
  }

  function updateTop(order: ArrayLike<number> | null) {
    if (order === topFor) return;
    topFor = order;
    if (!order) {
      top.replaceChildren();
      return;
    }
    const label = document.createElement("span");
    label.textContent = "top: ";
    const buttons = Array.from({ length: Math.min(TOP_UNITS, order.length) }, (_, k) => {
      const button = document.createElement("button");
      button.textContent = String(order[k]);
      button.dataset.unit = String(order[k]);
      return button;
    });
    top.replaceChildren(label, ...buttons);
  }

  function update(s: ExplorerState) {
    state = s;
    const q = selectedQuantity(s);
    if (s.order !== ours) { // someone else set or cleared the order (e.g. a new layer)
      ours = s.order;
      if (!s.order) {
        orderSelect.value = "index";
        caption.textContent = "";
      }
    }
    const units = shownUnits(s, q);
    const key = `${units.join(",")}|${s.unit}`;
    if (!drawnLines || drawnLines.data !== q.data || drawnLines.units !== key || drawnLines.length !== s.length ||
        drawnLines.width !== width || drawnLines.lut !== lutVersion()) {
      const draw = measured || !resize;
      if (draw && canvas.width !== width) canvas.width = width;
      if (draw && ink.lut !== lutVersion()) { // the theme's colours, read again only after a theme change
        const read = (name: string, fallback: string) => themeVariable(el, name, lutVersion()) || fallback;
        ink = { lut: lutVersion(), faint: read("--jp-layout-color2", "#eee"), axis: read("--jp-border-color1", "#bbb"),
                colours: COLORS.map((c, k) => read(`--rw-series-${k}`, c)) };
      }
      if (draw) drawLines(canvas, q, units, s.unit, s.length, ink);
      drawnLines = draw ? { data: q.data, units: key, length: s.length, width, lut: lutVersion() } : null;
      const { left, right } = lineAxes(q, units, s.unit, s.length);
      labelAxis(yAxis, left);
      labelAxis(yRight, right);
      // what the left axis spans, for what is drawn over the lines on it (the patterns' θ)
      plot.dataset.lo = String(left[0]);
      plot.dataset.hi = String(left[1]);
      plot.dispatchEvent(new CustomEvent(AXES_EVENT));
      const { from: a, to: b } = heldRange(q);
      xAxis.set(b - a, stepLabels(b - a, width, (s.firstStep ?? 0) + a));
    }
    updateLegend(units, q, s.unit);
    updateTop(s.order);
    const { from, to } = heldRange(q);
    setText(range, from > 0 || to < s.steps ? `steps ${from}–${to - 1} (the window held)` : "");
    cursor.show(s.t >= from && s.t < to ? Math.floor(xOfStep(s.t - from, to - from, width)) / width : null);
  }

  // The plot fills its column: redrawn at its width in pixels.
  // (from the observer's entry: reading the element would force a layout after the DOM writes of
  // the observers called before this one, as on the first paint)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
    const w = Math.round(entries.length ? entries[entries.length - 1].contentRect.width : plot.clientWidth);
    if (w <= 0 || (measured && w === width)) return;
    measured = true;
    width = w;
    if (state) update(state);
  });
  resize?.observe(plot);

  return {
    el,
    update,
    destroy: () => {
      resize?.disconnect();
      cursor.destroy();
    },
  };
}
