// Units: the compared units' values of the selected quantity over time as lines with a cursor at
// t, an ordering control whose permutation the heatmap shares, the top units of that order, and
// a search box for a unit number. A scrub only moves the cursor; lines redraw when what they
// show changes.
import { ORDER_KEYS, unitOrder, type OrderKey } from "./ordering";
import { selectedQuantity } from "./state";
import type { Actions, ExplorerState, Panel, Quantity } from "./state";
import { createAxis, stepLabels } from "./axes";
import { lutVersion } from "./colormap";
import { element, setText } from "./dom";
import { formatValue } from "./heatmap";

import { columnRange, heldRange, seriesAt, stepAtX, xOfStep } from "./timeaxis";

export { columnRange, heldRange, stepAtX, xOfStep }; // the time axis lives in timeaxis.ts

/** The plot's width in pixels before the panel is measured; then it fills its column. */
export const PLOT_W = 640;
export const PLOT_H = 100;
/** Lines drawn at once: the first of `state.units` (the most recently selected first). */
export const MAX_LINES = 8;
const TOP_UNITS = 8;
// Okabe & Ito's palette, told apart under colour-vision deficiencies; each reads on white and black.
const COLORS = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#999999"];

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
 * mapping a value to its pixel row: a polyline through every step when they fit, else each
 * column's min..max, so a spike is never dropped. Uses the context's stroke and fill styles.
 */
export function drawSeries(
  ctx: CanvasRenderingContext2D, q: Quantity, index: number, from: number, to: number, width: number,
  y: (v: number) => number,
) {
  const n = to - from;
  if (n <= width) {
    ctx.beginPath();
    for (let k = 0; k < n; k++) {
      const v = seriesAt(q, index, from + k);
      if (Number.isFinite(v)) ctx.lineTo(xOfStep(k, n, width), y(v));
    }
    ctx.stroke();
    return;
  }
  const { lo, hi } = columnRange(q, index, from, to, width);
  for (let x = 0; x < width; x++) {
    if (!(lo[x] <= hi[x])) continue; // an empty or non-finite column
    ctx.fillRect(x, y(hi[x]), 1, Math.max(1, y(lo[x]) - y(hi[x])));
  }
}

/** The compared units over the steps `q` holds, padding steps (from `length` on) shaded in
 * `faint`, the zero line in `axis` (the theme's colours). */
function drawLines(canvas: HTMLCanvasElement, q: Quantity, units: number[], length: number, faint = "#eee", axis = "#bbb") {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const { width, height } = canvas;
  const { from, to } = heldRange(q);
  ctx.clearRect(0, 0, width, height);
  if (length < to) { // padding steps: not this element's data
    ctx.fillStyle = faint;
    const x = (Math.max(0, length - from) / (to - from)) * width;
    ctx.fillRect(x, 0, width - x, height);
  }
  ctx.fillStyle = axis;
  ctx.fillRect(0, Math.round(yOf(0, q.vmin, q.vmax, height)), width, 1);
  units.forEach((u, k) => {
    ctx.strokeStyle = ctx.fillStyle = COLORS[k % COLORS.length];
    drawSeries(ctx, q, u, from, to, width, (v) => yOf(v, q.vmin, q.vmax, height));
  });
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
  frame.style.cssText = "display:grid;grid-template-columns:max-content minmax(0,1fr);column-gap:4px";
  const yAxis = createAxis("rw-units-yaxis", "y");
  yAxis.el.style.height = `${PLOT_H}px`;
  const plot = element("div", "rw-units-plot");
  plot.style.height = `${PLOT_H}px`;
  const canvas = document.createElement("canvas");
  canvas.width = PLOT_W;
  canvas.height = PLOT_H;
  canvas.style.height = `${PLOT_H}px`;
  const cursor = element("div", "rw-units-cursor");
  cursor.style.cssText = `position:absolute;top:0;width:1px;height:${PLOT_H}px`;
  plot.append(canvas, cursor);
  const xTitle = element("span", "rw-axis-title");
  xTitle.textContent = "step";
  const xAxis = createAxis("rw-step-axis", "x");
  frame.append(yAxis.el, plot, xTitle, xAxis.el);
  const range = element("div", "rw-units-range");
  el.append(controls, caption, top, legend, frame, range);

  let state: ExplorerState | null = null;
  let ours: ArrayLike<number> | null = null; // the last order this panel asked for
  let drawnLines: { data: Float32Array; units: string; length: number; width: number; lut: number } | null = null;
  let width = PLOT_W; // the canvas's width in pixels: the column's, once measured
  let ink: { lut: number; faint?: string; axis?: string } = { lut: -1 };
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

  function shownUnits(s: ExplorerState, q: Quantity): number[] {
    return s.units.filter((u) => u < q.units).slice(0, MAX_LINES);
  }

  function updateLegend(units: number[], q: Quantity) {
    const key = `${q.name}:${units.join(",")}`;
    if (key === legendFor) return;
    legendFor = key;
    legend.replaceChildren(...units.map((u, k) => {
      const entry = element("span", "rw-units-entry");
      const swatch = document.createElement("span");
      swatch.style.cssText = `display:inline-block;width:10px;height:10px;margin-right:3px;background:${COLORS[k % COLORS.length]}`;
      const name = document.createElement("span");
      name.textContent = `${q.name} unit ${u}`;
      entry.append(swatch, name);
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
    const key = units.join(",");
    if (!drawnLines || drawnLines.data !== q.data || drawnLines.units !== key || drawnLines.length !== s.length ||
        drawnLines.width !== width || drawnLines.lut !== lutVersion()) {
      if (canvas.width !== width) canvas.width = width;
      if (ink.lut !== lutVersion()) { // the theme's colours, read again only after a theme change
        const look = getComputedStyle(el);
        ink = { lut: lutVersion(), faint: look.getPropertyValue("--jp-layout-color2").trim() || undefined,
                axis: look.getPropertyValue("--jp-border-color1").trim() || undefined };
      }
      drawLines(canvas, q, units, s.length, ink.faint, ink.axis);
      drawnLines = { data: q.data, units: key, length: s.length, width, lut: lutVersion() };
      const fmt = (v: number) => formatValue(v).replace("-", "−");
      // the top, middle and bottom of the plot (item -0.5 of 2 is its top edge, 1.5 its bottom)
      const ends = [fmt(q.vmax), fmt((q.vmin + q.vmax) / 2), fmt(q.vmin)];
      yAxis.set(2, [{ at: -0.5, text: ends[0] }, { at: 0.5, text: ends[1] }, { at: 1.5, text: ends[2] }]);
      yAxis.el.style.width = `${Math.max(...ends.map((e) => e.length))}ch`; // (its labels are placed absolutely)
      // inside the plot's height: the top label hangs below its line, the bottom one sits on it
      const [top, middle, bottom] = yAxis.el.children as unknown as HTMLElement[];
      top.style.transform = "none";
      middle.style.transform = "translateY(-50%)";
      bottom.style.transform = "translateY(-100%)";
      const { from: a, to: b } = heldRange(q);
      xAxis.set(b - a, stepLabels(b - a, width).map(({ at }) => ({ at, text: String(a + at) })));
    }
    updateLegend(units, q);
    updateTop(s.order);
    const { from, to } = heldRange(q);
    setText(range, from > 0 || to < s.steps ? `steps ${from}–${to - 1} (the window held)` : "");
    cursor.style.display = s.t >= from && s.t < to ? "" : "none";
    cursor.style.left = `${Math.floor(xOfStep(s.t - from, to - from, width))}px`;
  }

  // The plot fills its column: redrawn at its width in pixels.
  // (from the observer's entry: reading the element would force a layout after the DOM writes of
  // the observers called before this one, as on the first paint)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
    const w = Math.round(entries.length ? entries[entries.length - 1].contentRect.width : plot.clientWidth);
    if (w <= 0 || w === width) return;
    width = w;
    if (state) update(state);
  });
  resize?.observe(plot);

  return { el, update, destroy: () => resize?.disconnect() };
}
