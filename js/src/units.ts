// Units: the compared units' values of the selected quantity over time as lines with a cursor at
// t, an ordering control whose permutation the heatmap shares, the top units of that order, and
// a search box for a unit number. A scrub only moves the cursor; lines redraw when what they
// show changes.
import { ORDER_KEYS, unitOrder, type OrderKey } from "./ordering";
import { selectedQuantity } from "./state";
import type { Actions, ExplorerState, Panel, Quantity } from "./state";
import { element } from "./dom";
import { columnRange, heldRange, seriesAt, stepAtX, xOfStep } from "./timeaxis";

export { columnRange, heldRange, stepAtX, xOfStep }; // the time axis lives in timeaxis.ts

export const PLOT_W = 640;
export const PLOT_H = 120;
/** Lines drawn at once: the first of `state.units` (the most recently selected first). */
export const MAX_LINES = 8;
const TOP_UNITS = 8;
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

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

/** The compared units over the steps `q` holds, padding steps (from `length` on) shaded. */
function drawLines(canvas: HTMLCanvasElement, q: Quantity, units: number[], length: number) {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const { width, height } = canvas;
  const { from, to } = heldRange(q);
  ctx.clearRect(0, 0, width, height);
  if (length < to) { // padding steps: not this element's data
    ctx.fillStyle = "#eee";
    const x = (Math.max(0, length - from) / (to - from)) * width;
    ctx.fillRect(x, 0, width - x, height);
  }
  ctx.fillStyle = "#bbb";
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
  message.style.color = "#b2182b";
  controls.append(orderSelect, search, message);

  const caption = element("div", "rw-order-caption");
  const top = element("div", "rw-units-top");
  const legend = element("div", "rw-units-legend");
  legend.style.cssText = "display:flex;gap:8px;flex-wrap:wrap;font:11px monospace";

  const plot = element("div", "rw-units-plot");
  plot.style.cssText = `position:relative;width:${PLOT_W}px;height:${PLOT_H}px;cursor:crosshair`;
  const canvas = document.createElement("canvas");
  canvas.width = PLOT_W;
  canvas.height = PLOT_H;
  const cursor = element("div", "rw-units-cursor");
  cursor.style.cssText = `position:absolute;top:0;width:1px;height:${PLOT_H}px;background:#000`;
  plot.append(canvas, cursor);
  const range = element("div", "rw-units-range");
  el.append(controls, caption, top, legend, plot, range);

  let state: ExplorerState | null = null;
  let ours: ArrayLike<number> | null = null; // the last order this panel asked for
  let drawnLines: { data: Float32Array; units: string; length: number } | null = null;
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
    const x = rect.width > 0 ? ((ev.clientX - rect.left) / rect.width) * PLOT_W : 0;
    const { from, to } = heldRange(selectedQuantity(state));
    actions.setT(from + stepAtX(x, to - from, PLOT_W));
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
    if (!drawnLines || drawnLines.data !== q.data || drawnLines.units !== key || drawnLines.length !== s.length) {
      drawLines(canvas, q, units, s.length);
      drawnLines = { data: q.data, units: key, length: s.length };
    }
    updateLegend(units, q);
    updateTop(s.order);
    const { from, to } = heldRange(q);
    range.textContent = from > 0 || to < s.steps ? `steps ${from}–${to - 1} (the window held)` : "";
    cursor.style.display = s.t >= from && s.t < to ? "" : "none";
    cursor.style.left = `${Math.floor(xOfStep(s.t - from, to - from, PLOT_W))}px`;
  }

  return { el, update };
}
