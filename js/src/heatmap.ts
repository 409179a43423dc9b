// A units x time heatmap on a canvas: one pixel per (step, unit) painted as words through a
// colour lookup table into ImageData, scaled up by CSS. The cursor (current step and unit) is on
// a second canvas laid over it, so a scrub redraws a few lines instead of the whole image.
import { LUT_SIZE, NON_FINITE, colorWord, lutFor, pack, unpack } from "./colormap";
import type { Overview } from "./decode";
import type { Quantity } from "./state";
import { element } from "./dom";

const PADDING_GREY = [205, 205, 205];

/** A colour washed towards grey: how steps past a batch element's length are shown. */
export function greyed(word: number): number {
  const [r, g, b] = unpack(word);
  const mix = (c: number, k: number) => Math.round(c * 0.25 + PADDING_GREY[k] * 0.75);
  return pack(mix(r, 0), mix(g, 1), mix(b, 2));
}

/**
 * Paint `q` into `out` (width = steps, height = units, row-major pixels): row r shows unit
 * order[r] (or r), column t step t; steps >= length are greyed.
 */
export function paintHeatmap(q: Quantity, order: ArrayLike<number> | null, length: number, out: Uint32Array): void {
  const { units, steps, data, scale, vmin, vmax } = q;
  if (out.length !== units * steps) throw new Error(`heatmap: expected ${units * steps} pixels, got ${out.length}`);
  const lut = lutFor(scale);
  const span = vmax - vmin;
  const k = span > 0 ? (LUT_SIZE - 1) / span : 0;
  const nonFinite = colorWord(NaN, scale, vmin, vmax);
  for (let r = 0; r < units; r++) {
    const u = order ? order[r] : r;
    const row = r * steps;
    for (let t = 0; t < steps; t++) {
      const v = data[t * units + u];
      let word: number;
      if (v - v !== 0) {
        word = nonFinite; // NaN or ±Inf
      } else {
        const i = span > 0 ? Math.round((v - vmin) * k) : (LUT_SIZE - 1) >> 1;
        word = lut[i < 0 ? 0 : i >= LUT_SIZE ? LUT_SIZE - 1 : i];
      }
      out[row + t] = t < length ? word : greyed(word);
    }
  }
}

/** Of a bucket's min and max, the one farther from the scale's middle (NaN if either is): what a
 * column of many steps shows, so a one-step spike is not averaged away. */
export function extreme(lo: number, hi: number, middle: number): number {
  if (lo - lo !== 0 || hi - hi !== 0) return lo - lo !== 0 ? lo : hi;
  return middle - lo > hi - middle ? lo : hi;
}

/**
 * Paint an overview into `out` (width = columns, height = units): each column the extreme of
 * its bucket of steps, coloured on `q`'s scale; columns starting at or past `length` greyed.
 */
export function paintOverview(
  o: Overview, q: Pick<Quantity, "scale" | "vmin" | "vmax">, order: ArrayLike<number> | null, length: number, out: Uint32Array,
): void {
  const { columns, units, bucket, min, max } = o;
  if (out.length !== units * columns) throw new Error(`overview: expected ${units * columns} pixels, got ${out.length}`);
  const middle = (q.vmin + q.vmax) / 2;
  for (let r = 0; r < units; r++) {
    const u = order ? order[r] : r;
    for (let c = 0; c < columns; c++) {
      const word = colorWord(extreme(min[c * units + u], max[c * units + u], middle), q.scale, q.vmin, q.vmax);
      out[r * columns + c] = c * bucket < length ? word : greyed(word);
    }
  }
}

/** Each unit's largest finite |value| among `values` (time-major, `units` wide, the first
 * `rows` rows), 1 for a unit with none (so dividing by it leaves its zeros and NaNs as they are). */
function unitPeaks(values: Float32Array, units: number, rows: number): Float64Array {
  const peak = new Float64Array(units);
  for (let i = 0; i < rows * units; i++) {
    const a = Math.abs(values[i]);
    if (a > peak[i % units] && a - a === 0) peak[i % units] = a;
  }
  return peak.map((p) => p || 1);
}

function divideByUnit(values: Float32Array, units: number, peak: Float64Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / peak[i % units];
  return out;
}

/** `q` with each unit divided by its own largest |value| over its first `length` steps, on a
 * scale of ±1 (0..1 for a sequential one): every row uses its whole colour range. */
export function scaledPerUnit(q: Quantity, length: number): Quantity {
  const rows = Math.max(0, Math.min(q.steps, length - (q.t0 ?? 0)));
  const peak = unitPeaks(q.data, q.units, rows);
  return { ...q, data: divideByUnit(q.data, q.units, peak), vmin: q.scale === "diverging" ? -1 : 0, vmax: 1 };
}

/** The overview's counterpart of `scaledPerUnit` (each unit's peak over its buckets' min and max). */
export function overviewPerUnit(o: Overview, q: Quantity): { o: Overview; q: Quantity } {
  const both = new Float32Array(o.min.length * 2);
  both.set(o.min);
  both.set(o.max, o.min.length);
  const peak = unitPeaks(both, o.units, 2 * o.columns);
  return {
    o: { ...o, min: divideByUnit(o.min, o.units, peak), max: divideByUnit(o.max, o.units, peak) },
    q: { ...q, vmin: q.scale === "diverging" ? -1 : 0, vmax: 1 },
  };
}

type Rect = [x: number, y: number, w: number, h: number];

/**
 * The cursor on a w x h pixel overlay: dark lines at both edges of step t's column (`edges`) and
 * light ticks beside the selected row (`ticks`); `line` is one line's width in pixels.
 */
export function cursorRects(
  t: number, row: number, steps: number, units: number, w: number, h: number, line: number,
): { edges: Rect[]; ticks: Rect[] } {
  const x0 = Math.floor((t / steps) * w);
  const x1 = Math.max(x0 + 1, Math.floor(((t + 1) / steps) * w));
  const y0 = Math.floor((row / units) * h);
  const y1 = Math.max(y0 + 1, Math.floor(((row + 1) / units) * h));
  return {
    edges: [[x0 - line, 0, line, h], [x1, 0, line, h]],
    ticks: [[x0 - 3 * line, y0, 2 * line, y1 - y0], [x1 + line, y0, 2 * line, y1 - y0]],
  };
}

/** The colour of a marked row's ends: far from both colour scales and from the NaN magenta. */
export const ROW_MARK = "#00e676";

/** Marks at the left and right ends of each of `rows` (of `units`) on a w x h pixel overlay. */
export function rowMarkRects(rows: ArrayLike<number>, units: number, w: number, h: number, line: number): Rect[] {
  const out: Rect[] = [];
  const width = 4 * line;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (!(row >= 0 && row < units)) continue;
    const y0 = Math.floor((row / units) * h);
    const y1 = Math.max(y0 + 1, Math.floor(((row + 1) / units) * h));
    out.push([0, y0, width, y1 - y0], [w - width, y0, width, y1 - y0]);
  }
  return out;
}

/** Which (step, row) a point at fractions (fx, fy) of the drawn box falls on. */
export function cellAtFraction(fx: number, fy: number, steps: number, units: number): { t: number; row: number } {
  const clamp = (x: number, n: number) => Math.min(n - 1, Math.max(0, Math.floor(x * n)));
  return { t: clamp(fx, steps), row: clamp(fy, units) };
}

export interface Heatmap {
  el: HTMLElement;
  /** Repaint the image (when the quantity, row order, data or length changed). */
  draw(q: Quantity, order: ArrayLike<number> | null, length: number): void;
  /** Paint a long sequence's overview of `steps` steps instead, on `q`'s colour scale. */
  drawOverview(o: Overview, q: Quantity, order: ArrayLike<number> | null, length: number, steps: number): void;
  /** Blank the image (while the data for a new selection is on its way). */
  clear(): void;
  /** Redraw only the cursor: the column of step t (none if t < 0), the row of the selected unit
   * (none if row < 0), and a mark at both ends of each row in `marks` (e.g. a co-cluster's units). */
  drawCursor(t: number, row: number, marks?: ArrayLike<number>): void;
  /** The cursor's colours: its lines and the contrasting ticks beside the selected row (a
   * theme's text and background colours, so the cursor shows on a dark page too). */
  setInk(line: string, contrast: string): void;
  /** The (step, row) under a mouse event, or null outside the image. */
  cellAt(ev: MouseEvent): { t: number; row: number } | null;
  /** The image's displayed size in CSS pixels (0 before the view is attached) and its grid. */
  size(): { w: number; h: number; steps: number; units: number };
  destroy(): void;
}

/** The Explorer's heatmap height for `units` rows: a readable row each (room for its id) up to
 * a height that leaves the rest of the dashboard on screen. */
export function shownHeight(units: number): number {
  return Math.min(320, Math.max(140, units * 14));
}

/** The displayed height of other views' heatmaps (a few pixels a row). */
function compactHeight(rows: number): number {
  return Math.min(360, Math.max(120, rows * 3));
}

/** `halo`: a light line outside each dark cursor line, so the cursor shows on dark colours too
 * (a log scale's vanished gradients are the darkest viridis). */
/** `rowLines`: the selected row's top and bottom edges drawn across the whole image (the
 * Explorer's selected unit), so the row stands out wherever the eye lands. */
export function createHeatmap(
  options: { halo?: boolean; rowLines?: boolean; height?: (rows: number) => number; onResize?: () => void } = {},
): Heatmap {
  const heightOf = options.height ?? compactHeight;
  const el = element("div", "rw-heatmap-box");
  el.setAttribute("role", "img");
  el.style.cssText = "position: relative; width: 100%; cursor: crosshair;";
  const image = element("canvas", "rw-heatmap");
  image.style.cssText = "display: block; width: 100%; image-rendering: pixelated;";
  const cursor = element("canvas", "rw-cursor");
  cursor.style.cssText = "position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none;";
  el.append(image, cursor);

  let steps = 1;
  let units = 1;
  // The image's displayed size in CSS pixels, kept by the resize observer so that a scrub never
  // forces a layout to read it (0 until the view is attached).
  let shown = { w: 0, h: 0 };
  let observed = false; // the resize observer has reported the image's size
  const measure = () => (shown = { w: image.clientWidth, h: image.clientHeight });

  /** Crisp cells when each gets a pixel or more; smoothed when shrunk, so a row or column the
   * browser would otherwise skip still tints the pixel it falls in. */
  function fitRendering(): void {
    const shownHeight = parseFloat(image.style.height) || shown.h;
    const shrunk = image.height > shownHeight || (shown.w > 0 && image.width > shown.w);
    image.style.imageRendering = shrunk ? "auto" : "pixelated";
  }

  /** Size the image to width x height pixels and fill it with `paint`. */
  function paintImage(width: number, height: number, paint: (out: Uint32Array) => void): void {
    if (image.width !== width || image.height !== height) {
      image.width = width;
      image.height = height;
    }
    image.style.height = `${heightOf(height)}px`;
    fitRendering(); // (a new height reaches `shown` through the resize observer)
    const ctx = image.getContext("2d");
    if (!ctx || width === 0 || height === 0) return;
    const img = ctx.createImageData(width, height);
    paint(new Uint32Array(img.data.buffer));
    ctx.putImageData(img, 0, 0);
  }

  function draw(q: Quantity, order: ArrayLike<number> | null, length: number): void {
    steps = q.steps;
    units = q.units;
    paintImage(q.steps, q.units, (out) => paintHeatmap(q, order, length, out));
  }

  function drawOverview(o: Overview, q: Quantity, order: ArrayLike<number> | null, length: number, total: number): void {
    steps = total;
    units = o.units;
    paintImage(o.columns, o.units, (out) => paintOverview(o, q, order, length, out));
  }

  function clear(): void {
    image.getContext("2d")?.clearRect(0, 0, image.width, image.height);
  }

  let ink = { line: "rgba(0, 0, 0, 0.85)", contrast: "rgba(255, 255, 255, 0.9)" };
  let cursorAt: { t: number; row: number; marks: ArrayLike<number> } | null = null; // null: never drawn
  let drawn: Rect[] = []; // what the cursor covers now: cleared alone on the next move
  function drawCursor(t: number, row: number, marks: ArrayLike<number> = []): void {
    cursorAt = { t, row, marks };
    // Before the observer's first report (the view just built, not laid out yet) it draws the
    // cursor itself, after the page's own layout: measuring here would force one mid-build.
    if (!observed && resize) return;
    if (shown.w === 0) measure();
    // The overlay matches the displayed size (not the image's), so lines stay crisp.
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(shown.w * ratio));
    const h = Math.max(1, Math.round(shown.h * ratio));
    if (cursor.width !== w || cursor.height !== h) {
      cursor.width = w; // (resizing clears the canvas)
      cursor.height = h;
      drawn = [];
    }
    const ctx = cursor.getContext("2d");
    if (!ctx) return;
    for (const [x, y, rw, rh] of drawn) ctx.clearRect(x, y, rw, rh);
    const line = Math.max(1, Math.round(ratio));
    const { edges, ticks } = cursorRects(t, row, steps, units, w, h, line);
    const shownEdges = t >= 0 ? edges : [];
    const shownTicks = row >= 0 ? ticks : [];
    const halo: Rect[] = options.halo ? shownEdges.map(([x, y, rw, rh], i) => [i === 0 ? x - line : x + line, y, rw, rh]) : [];
    const markRects = rowMarkRects(marks, units, w, h, line);
    const rowEdges: Rect[] = [];
    if (options.rowLines && row >= 0) {
      const [[, y0, , rh]] = ticks; // (the ticks beside the row span its height)
      rowEdges.push([0, Math.max(0, y0 - line), w, line], [0, y0 + rh, w, line]);
    }
    ctx.fillStyle = ink.line;
    for (const r of [...shownEdges, ...rowEdges]) ctx.fillRect(...r);
    ctx.fillStyle = ink.contrast;
    for (const r of [...shownTicks, ...halo]) ctx.fillRect(...r);
    ctx.fillStyle = ROW_MARK;
    for (const r of markRects) ctx.fillRect(...r);
    drawn = [...shownEdges, ...rowEdges, ...shownTicks, ...halo, ...markRects];
  }

  function cellAt(ev: MouseEvent): { t: number; row: number } | null {
    const box = image.getBoundingClientRect();
    const fx = (ev.clientX - box.left) / box.width;
    const fy = (ev.clientY - box.top) / box.height;
    if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return null;
    return cellAtFraction(fx, fy, steps, units);
  }

  // The displayed size changes with the notebook's width (and is 0 until the view is attached).
  // (read from the observer's entry: reading the element would force a layout after the DOM
  // writes of the observers called before this one, as on the first paint)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
    const box = entries.length ? entries[entries.length - 1].contentRect : null;
    if (box) shown = { w: box.width, h: box.height };
    else measure();
    observed = true;
    fitRendering();
    if (cursorAt) drawCursor(cursorAt.t, cursorAt.row, cursorAt.marks);
    options.onResize?.();
  });
  resize?.observe(image);

  function setInk(line: string, contrast: string): void {
    ink = { line, contrast };
    if (cursorAt) {
      drawn = [[0, 0, cursor.width, cursor.height]]; // clear it all
      drawCursor(cursorAt.t, cursorAt.row, cursorAt.marks);
    }
  }
  const size = () => ({ ...shown, steps, units });
  return { el, draw, drawOverview, clear, drawCursor, setInk, cellAt, size, destroy: () => resize?.disconnect() };
}

/** The colour scale of a quantity: a gradient bar with its ends and the non-finite swatch. */
export function createLegend(): { el: HTMLElement; draw(q: Quantity, format?: (v: number) => string): void } {
  const el = element("div", "rw-legend");
  el.style.cssText = "display: flex; align-items: center; gap: 6px; font: 11px sans-serif;";
  const lo = document.createElement("span");
  const bar = document.createElement("canvas");
  bar.width = LUT_SIZE;
  bar.height = 1;
  bar.style.cssText = "width: 160px; height: 10px; image-rendering: pixelated;";
  const hi = document.createElement("span");
  const swatch = document.createElement("span");
  swatch.style.cssText = `display: inline-block; width: 10px; height: 10px; background: ${NON_FINITE};`;
  const swatchLabel = document.createElement("span");
  swatchLabel.textContent = "NaN/Inf";
  el.append(lo, bar, hi, swatch, swatchLabel);

  /** `format` writes an end's value (a log scale's ends are exponents: it shows 10^v). */
  function draw(q: Quantity, format: (v: number) => string = formatValue): void {
    lo.textContent = format(q.vmin);
    hi.textContent = format(q.vmax);
    const ctx = bar.getContext("2d");
    if (!ctx) return;
    const img = ctx.createImageData(LUT_SIZE, 1);
    new Uint32Array(img.data.buffer).set(lutFor(q.scale));
    ctx.putImageData(img, 0, 0);
  }
  return { el, draw };
}

/** A number short enough for a legend or a readout. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return v.toFixed(Math.abs(v) >= 100 ? 1 : 3);
}
