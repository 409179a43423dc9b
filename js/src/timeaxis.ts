// The time axis of the front end: where a step lies on a plot, which steps a quantity holds (a
// long sequence arrives as a window), and runs of steps reduced to pixel columns (min and max,
// so a one-step spike is never dropped). The kernel's counterpart is rnnwidgets/timeaxis.py.
import type { Quantity } from "./state";

/** The x of step t's centre on a plot of `steps` steps. */
export function xOfStep(t: number, steps: number, width: number): number {
  return ((t + 0.5) / Math.max(1, steps)) * width;
}

/** The step under x on a plot of `steps` steps. */
export function stepAtX(x: number, steps: number, width: number): number {
  return Math.max(0, Math.min(steps - 1, Math.floor((x / width) * steps)));
}

/**
 * An overview's column of `bucket` steps that holds step t, and the steps it covers (first and
 * last, inclusive; the last column may be short). The kernel buckets the same way
 * (timeaxis.py: column runs of `bucket` steps from step 0).
 */
export function bucketColumn(t: number, bucket: number, steps: number): { column: number; first: number; last: number } {
  const column = Math.floor(t / bucket);
  const first = column * bucket;
  return { column, first, last: Math.min(steps, first + bucket) - 1 };
}

/**
 * A long sequence's window of `held` steps from t0 (on the longest layer's axis) as a layer of
 * `steps` steps holds it: its first step and its steps held, kept inside the layer's own steps.
 * The kernel windows each layer by the same rule (timeaxis.py window_in_layer).
 */
export function windowInLayer(t0: number, held: number, steps: number): { t0: number; held: number } {
  const count = Math.min(held, steps);
  return { t0: Math.max(0, Math.min(t0, steps - count)), held: count };
}

/** The absolute steps [from, to) a quantity holds: all of them, or a window of a long sequence. */
export function heldRange(q: Quantity): { from: number; to: number } {
  const from = q.t0 ?? 0;
  return { from, to: from + q.steps };
}

/** Series `index` of `q` at absolute step t, NaN where not held. */
export function seriesAt(q: Quantity, index: number, t: number): number {
  const i = t - (q.t0 ?? 0);
  return i >= 0 && i < q.steps ? q.data[i * q.units + index] : NaN;
}

/**
 * Per pixel column, the min and max of series `index` over the absolute steps [from, to) that
 * column covers, so a line of 100,000 steps draws `width` segments and hides no spike. NaN
 * where a column holds no finite value.
 */
export function columnRange(q: Quantity, index: number, from: number, to: number, width: number) {
  const lo = new Float32Array(width).fill(NaN), hi = new Float32Array(width).fill(NaN);
  const n = to - from;
  for (let x = 0; x < width && n > 0; x++) {
    const a = Math.floor((x * n) / width), b = Math.max(a + 1, Math.floor(((x + 1) * n) / width));
    let mn = Infinity, mx = -Infinity;
    for (let k = a; k < b; k++) {
      const v = seriesAt(q, index, from + k);
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (mn <= mx) { lo[x] = mn; hi[x] = mx; }
  }
  return { lo, hi };
}

/** A half-open step range [start, end), as every view writes one (Python's slices, the DataFrames). */
export function stepRange(start: number, end: number): string {
  return `[${start}, ${end})`;
}
