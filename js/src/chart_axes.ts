// Axis arithmetic for the charts (chart.ts): ranges and ticks that never crowd their axis (the
// Explorer's row and column labels are axes.ts).
//
// A log axis gets decade ticks only (1e-3, 1e-2, ...), every k-th decade when the axis is too
// short for all of them; a linear axis gets "nice" ticks (1, 2 or 5 times a power of ten), and a
// step axis only whole steps, so an axis over 0..1 steps never reads "0 0 0 0 0 1 1 1".

/** The smallest and largest finite value (positive only, on a log axis); null when there is none. */
export function extent(values: ArrayLike<number>, log: boolean): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || (log && !(v > 0))) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

/** A log axis's range: whole decades around [lo, hi], so its ends are ticks (none clipped). */
export function decadeRange(lo: number, hi: number): [number, number] {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  let b = Math.ceil(Math.log10(hi) - 1e-9);
  if (b <= a) b = a + 1;
  return [a, b].map((e) => 10 ** e) as [number, number];
}

/** Decade ticks over [lo, hi] (both powers of ten), every k-th so that no more than `most` fit. */
export function decadeTicks(lo: number, hi: number, most: number): number[] {
  const a = Math.round(Math.log10(lo));
  const b = Math.round(Math.log10(hi));
  const every = Math.max(1, Math.ceil((b - a + 1) / Math.max(1, most)));
  const ticks: number[] = [];
  for (let e = b; e >= a; e -= every) ticks.unshift(10 ** e); // the top decade always labelled
  return ticks;
}

/** A step of 1, 2 or 5 times a power of ten giving about `count` intervals over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

/** A linear axis's range [lo, hi] widened to nice ticks (a single value gets room around it). */
export function niceRange(lo: number, hi: number, count: number, integer = false): [number, number] {
  if (hi === lo) {   // one step: half a step each side, its one tick in the middle (no tick at a step absent)
    const pad = integer ? 0.5 : Math.abs(lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  if (integer) return [lo, hi]; // steps: the axis spans exactly the steps drawn
  const step = niceStep(hi - lo, count);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

/** Ticks over [lo, hi]: at most about `most` of them, whole numbers only when `integer`. */
export function linearTicks(lo: number, hi: number, most: number, integer = false): number[] {
  if (!(hi > lo)) return [lo];
  let step = niceStep(hi - lo, Math.max(1, most));
  if (integer) step = Math.max(1, Math.round(step));
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  return ticks;
}

const SUPERSCRIPT: Record<string, string> = {
  "-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹",
};

/** A decade as text: 1, 10, 0.1 near one, else 10⁻⁵. */
export function decadeText(v: number): string {
  const e = Math.round(Math.log10(v));
  if (e >= -1 && e <= 2) return String(10 ** e >= 1 ? 10 ** e : +(10 ** e).toFixed(-e));
  return `10${String(e).replace(/./g, (c) => SUPERSCRIPT[c] ?? c)}`;
}

/** A linear tick as text: short, with no float noise. */
export function tickText(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0);
  return String(+v.toPrecision(4));
}

/** A value as text for a legend or a readout. */
export function valueText(v: number): string {
  if (Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const r = +v.toPrecision(3); // float32 0.01 is 0.00999999977: round first
  const a = Math.abs(r);
  return a >= 1e4 || a < 1e-2 ? r.toExponential(2) : String(r);
}
