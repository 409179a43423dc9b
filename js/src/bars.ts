// State at t: every quantity of the selected layer (h, c, each gate) at the current step as bars,
// units along x in the display order, the selected unit marked. Bars are painted into an
// ImageData buffer from the colour tables, so a scrub costs a few thousand word writes per row.
import { CHAR_PX, createAxis, niceStride, ticks } from "./axes";
import { colorWord, lutVersion, NON_FINITE_WORD, pack, parseColor } from "./colormap";
import { selectedLayer, stepAt, stepNumber } from "./state";
import type { Actions, ExplorerState, LayerData, Panel, Quantity } from "./state";
import { type StepLine, createStepLine, element, themeVariable } from "./dom";

/** The bars' width in pixels before the panel is measured; then they fill their column. */
export const BAR_W = 640;
export const BAR_H = 22;

const SELECTED_BG = pack(221, 221, 221);
const BASELINE = pack(136, 136, 136);
const MUTED = pack(176, 176, 176); // bars of a padding step: not the element's data

/** A theme variable's colour as a packed word (`fallback` where the page has none). */
function themeWord(el: Element, name: string, fallback: number): number {
  const rgb = parseColor(themeVariable(el, name, lutVersion()));
  return rgb ? pack(...rgb) : fallback;
}

/** The units labelled under bars `width` pixels wide: each label clear of the next. */
export function slotLabels(order: ArrayLike<number> | null, slots: number, width: number): { at: number; text: string }[] {
  const label = String(Math.max(0, slots - 1)).length * CHAR_PX + 8;
  return ticks(slots, niceStride(width / slots, label)).map((s) => ({ at: s, text: String(order ? order[s] : s) }));
}

/** The slots (display positions) a pixel column covers: [first, end). */
export function columnSlots(x: number, slots: number, width: number): [number, number] {
  const a = Math.floor((x * slots) / width);
  return [a, Math.max(a + 1, Math.floor(((x + 1) * slots) / width))];
}

/** The display position of `unit` under a display order; null order = by index. */
export function slotOfUnit(unit: number, order: ArrayLike<number> | null): number {
  return order ? Array.prototype.indexOf.call(order, unit) : unit;
}

/** The pixel row of a value on a [vmin, vmax] axis of `height` pixels (clamped). */
export function rowOf(v: number, vmin: number, vmax: number, height: number): number {
  const span = vmax - vmin;
  const f = span > 0 ? (Math.min(vmax, Math.max(vmin, v)) - vmin) / span : 0.5;
  return Math.round((1 - f) * (height - 1));
}

export interface BarStyle {
  scale: Quantity["scale"];
  vmin: number;
  vmax: number;
  selectedSlot: number; // -1: none
  muted: boolean;
  selectedBackground?: number; // the selected slot's column (default a light grey)
}

/**
 * Paints bars into `pixels` (width × height, row-major, packed RGBA words): slot s holds
 * values[order[s]], drawn from the zero line (clamped into the axis) to its value, coloured by
 * value. A column covering several slots draws the one farthest from zero; a non-finite value
 * fills its column with the non-finite colour.
 */
export function paintBars(
  pixels: Uint32Array, width: number, height: number,
  values: ArrayLike<number>, order: ArrayLike<number> | null, style: BarStyle,
) {
  pixels.fill(0);
  const slots = values.length;
  if (slots === 0) return;
  const base = rowOf(0, style.vmin, style.vmax, height);
  const gap = width / slots >= 4; // wide bars get a one-pixel gap so neighbours stay apart
  for (let x = 0; x < width; x++) {
    const [s0, s1] = columnSlots(x, slots, width);
    if (gap && x + 1 < width && columnSlots(x + 1, slots, width)[0] !== s0) continue;
    let v = 0, far = -1, selected = false;
    for (let s = s0; s < s1 && s < slots; s++) {
      const value = values[order ? order[s] : s];
      if (s === style.selectedSlot) selected = true;
      const d = Number.isFinite(value) ? Math.abs(value) : Infinity;
      if (d > far) { far = d; v = value; }
    }
    if (selected) for (let y = 0; y < height; y++) pixels[y * width + x] = style.selectedBackground ?? SELECTED_BG;
    if (!Number.isFinite(v)) {
      for (let y = 0; y < height; y++) pixels[y * width + x] = NON_FINITE_WORD;
      continue;
    }
    const top = rowOf(v, style.vmin, style.vmax, height);
    const word = style.muted ? MUTED : colorWord(v, style.scale, style.vmin, style.vmax);
    if (top === base) pixels[base * width + x] = BASELINE; // a zero: the axis shows through
    else for (let y = Math.min(top, base); y <= Math.max(top, base); y++) pixels[y * width + x] = word;
  }
}

function formatValue(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : String(v);
}

interface Row {
  el: HTMLDivElement;
  label: StepLine;
  canvas: HTMLCanvasElement;
  image: ImageData | null;
  words: Uint32Array;
}

/** The longest text formatValue writes for `unit`'s values over the steps `q` holds ("NaN" where
 * a step is not held). Its length grows with a value's size and sign, so the longest is that of the
 * lowest or the highest value. */
export function longestValue(q: Quantity, unit: number): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let longest = "NaN".length;
  for (let i = unit; i < q.data.length; i += q.units) {
    const v = q.data[i];
    if (!Number.isFinite(v)) {
      longest = Math.max(longest, String(v).length);
      continue;
    }
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? Math.max(longest, formatValue(lo).length, formatValue(hi).length) : longest;
}

/** Characters a quantity's label can take at a unit, whatever the step of those held (`longest`
 * counts the value's). */
function labelRoom(name: string, q: Quantity, unit: number, longest: (q: Quantity, unit: number) => number): number {
  return unit < q.units ? `${name}  unit ${unit} = `.length + longest(q, unit) : `${name}  (${q.units} features)`.length;
}

export function createBars(actions: Actions): Panel {
  const el = element("div", "rw-bars");
  // The header and each row's label change at every step: lines laid out on their own (dom.ts).
  const header = createStepLine("div", "rw-bars-header");
  header.size("auto", "16px");
  // label | bars, one grid row per quantity (rows are `display: contents`), the unit ids under them
  const rowsEl = element("div", "rw-bars-rows");
  rowsEl.style.cssText = "display:grid;grid-template-columns:max-content minmax(0,1fr);column-gap:6px;row-gap:2px;align-items:center";
  const axis = createAxis("rw-bars-axis", "x");
  const axisTitle = element("span", "rw-axis-title");
  axisTitle.textContent = "unit";
  el.append(header.el, rowsEl);

  let rows = new Map<string, Row>(); // by quantity name, rebuilt when the layer changes
  let rowsFor: string[] = [];
  let width = BAR_W; // the bars' width in pixels: their column's, once measured
  // The rows are painted once the resize observer has reported their column's width: painted at
  // BAR_W first, every row would be painted twice on the first render (again at the column's
  // width when the observer reports it, before that frame is shown).
  let measured = false;
  let drawn: { t: number; unit: number; order: ArrayLike<number> | null; layer: LayerData; length: number; lut: number; width: number } | null = null;
  let lastState: ExplorerState | null = null;
  let selectedBackground = SELECTED_BG;
  // longestValue of the quantities' data at a unit, kept while they hold the same data
  const rooms = new WeakMap<Float32Array, Map<number, number>>();
  const valueRoom = (q: Quantity, unit: number) => {
    const byUnit = rooms.get(q.data) ?? new Map<number, number>();
    rooms.set(q.data, byUnit);
    const room = byUnit.get(unit) ?? longestValue(q, unit);
    byUnit.set(unit, room);
    return room;
  };

  function makeRow(name: string): Row {
    const rowEl = element("div", "rw-bars-row");
    rowEl.style.display = "contents";
    rowEl.dataset.quantity = name;
    const label = createStepLine("span", "rw-bars-label");
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = BAR_H;
    canvas.style.cssText = `width:100%;height:${BAR_H}px;cursor:pointer;display:block`;
    canvas.addEventListener("click", (ev) => {
      const q = lastState && selectedLayer(lastState).quantities[name];
      if (!q || !lastState) return;
      const rect = canvas.getBoundingClientRect();
      const x = rect.width > 0 ? ((ev.clientX - rect.left) / rect.width) * canvas.width : 0;
      const [slot] = columnSlots(Math.max(0, Math.min(canvas.width - 1, Math.floor(x))), q.units, canvas.width);
      actions.setUnit(orderFor(lastState, q)?.[slot] ?? slot);
    });
    rowEl.append(label.el, canvas);
    return { el: rowEl, label, canvas, image: null, words: new Uint32Array(0) }; // sized when first painted
  }

  function sizeRow(row: Row): void {
    row.canvas.width = width;
    const ctx = row.canvas.getContext("2d");
    row.image = ctx ? ctx.createImageData(width, BAR_H) : null;
    row.words = row.image ? new Uint32Array(row.image.data.buffer) : new Uint32Array(width * BAR_H);
  }

  /** The display order applies to quantities with one value per unit of the layer. */
  function orderFor(state: ExplorerState, q: Quantity): ArrayLike<number> | null {
    return state.order && state.order.length === q.units ? state.order : null;
  }

  function update(state: ExplorerState) {
    lastState = state;
    const layer = selectedLayer(state);
    if (drawn && drawn.t === state.t && drawn.unit === state.unit && drawn.order === state.order &&
        drawn.layer === layer && drawn.length === state.length && drawn.lut === lutVersion() && drawn.width === width) return;
    const paint = measured || !resize;
    if (paint && (!drawn || drawn.lut !== lutVersion())) selectedBackground = themeWord(el, "--jp-layout-color2", SELECTED_BG);
    const names = Object.keys(layer.quantities);
    if (names.join("\n") !== rowsFor.join("\n")) {
      rows = new Map(names.map((n) => [n, makeRow(n)]));
      rowsFor = names;
      const axisRow = element("div", "rw-bars-row rw-bars-axis-row");
      axisRow.style.display = "contents";
      axisRow.append(axisTitle, axis.el);
      rowsEl.replaceChildren(...[...rows.values()].map((r) => r.el), axisRow);
    }
    const pad = state.t >= state.length;
    header.set(`${layer.name} at step ${stepNumber(state, state.t)}${pad ? " (padding: past this element's length)" : ""}`);
    const first = Object.values(layer.quantities)[0];
    if (first) axis.set(first.units, slotLabels(orderFor(state, first), first.units, width));
    // The labels' column is as wide as the longest label any held step writes (characters of the
    // monospace font), and no wider: its width then stays put during a scrub, and each label, a
    // box of a fixed size under contain: strict (dom.ts), lays out alone.
    const labelWidth = `${Math.max(...[...rows.keys()].map((name) => labelRoom(name, layer.quantities[name], state.unit, valueRoom)))}ch`;
    for (const [name, row] of rows) {
      const q = layer.quantities[name];
      row.label.size(labelWidth, "14px");
      const values = stepAt(q, state.t); // absolute step: NaN if a long sequence's window lacks it
      if (paint) {
        if (row.canvas.width !== width || row.words.length === 0) sizeRow(row);
        const order = orderFor(state, q);
        const selectedSlot = state.unit < q.units ? slotOfUnit(state.unit, order) : -1;
        paintBars(row.words, width, BAR_H, values, order,
          { scale: q.scale, vmin: q.vmin, vmax: q.vmax, selectedSlot, muted: pad, selectedBackground });
        if (row.image) row.canvas.getContext("2d")?.putImageData(row.image, 0, 0);
      }
      row.label.set(state.unit < q.units
        ? `${name}  unit ${state.unit} = ${formatValue(values[state.unit])}`
        : `${name}  (${q.units} features)`);
    }
    drawn = paint ? { t: state.t, unit: state.unit, order: state.order, layer, length: state.length, lut: lutVersion(), width } : null;
  }

  // The bars fill their column: repainted at its width in pixels, so they stay crisp.
  // (the column's width from the observer's entry: reading it would force a layout after the DOM
  // writes of the observers called before this one, as on the first paint)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
    const w = Math.round(entries.length ? entries[entries.length - 1].contentRect.width : axis.el.clientWidth);
    if (w <= 0 || (measured && w === width)) return;
    measured = true;
    width = w;
    if (lastState) update(lastState);
  });
  resize?.observe(axis.el);

  return { el, update, destroy: () => resize?.disconnect() };
}
