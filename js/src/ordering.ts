// Unit orderings: each returns a permutation of 0..units-1 (best first), so the units panel and
// the heatmap's row order can share it. Pure functions over time-major data[i * units + u] of
// steps t0 + i; `t` and `length` are absolute steps, and only the steps held are read.

/** The part of a quantity an ordering reads: time-major values of steps [t0, t0 + steps). */
export interface UnitSeries {
  data: Float32Array;
  units: number;
  steps: number;
  t0?: number;
}

export type OrderKey = "index" | "variance" | "value" | "correlation";

export const ORDER_KEYS: readonly OrderKey[] = ["index", "variance", "value", "correlation"];

/** Units by index: the identity permutation. */
export function orderByIndex(units: number): Int32Array {
  const order = new Int32Array(units);
  for (let u = 0; u < units; u++) order[u] = u;
  return order;
}

/** Units sorted by score, highest first; NaN scores last; ties keep index order. */
export function rankByScore(scores: Float64Array): Int32Array {
  const order = Array.from(orderByIndex(scores.length));
  order.sort((a, b) => {
    const sa = scores[a], sb = scores[b];
    const na = Number.isNaN(sa), nb = Number.isNaN(sb);
    if (na !== nb) return na ? 1 : -1;
    if (!na && sa !== sb) return sb - sa;
    return a - b;
  });
  return Int32Array.from(order);
}

/** How many of the held steps lie before `length` (the element's valid steps). */
export function validSteps(q: UnitSeries, length: number): number {
  return Math.max(0, Math.min(length - (q.t0 ?? 0), q.steps));
}

/** Per-unit variance over the held steps before `length`, skipping non-finite values (NaN if < 2 finite). */
export function varianceScores(q: UnitSeries, length: number): Float64Array {
  const { data, units } = q;
  const n = new Float64Array(units), mean = new Float64Array(units), m2 = new Float64Array(units);
  const held = validSteps(q, length);
  for (let i = 0; i < held; i++) {
    const row = i * units;
    for (let u = 0; u < units; u++) {
      const x = data[row + u];
      if (!Number.isFinite(x)) continue;
      // Welford's update: stable for long sequences with a large mean
      const k = ++n[u];
      const d = x - mean[u];
      mean[u] += d / k;
      m2[u] += d * (x - mean[u]);
    }
  }
  const out = new Float64Array(units);
  for (let u = 0; u < units; u++) out[u] = n[u] >= 2 ? m2[u] / n[u] : NaN;
  return out;
}

/** Per-unit value at step t (NaN when t is out of range or the value is not finite). */
export function valueScores(q: UnitSeries, t: number): Float64Array {
  const out = new Float64Array(q.units).fill(NaN);
  const i = t - (q.t0 ?? 0);
  if (!(i >= 0 && i < q.steps)) return out;
  const row = i * q.units;
  for (let u = 0; u < q.units; u++) {
    const x = q.data[row + u];
    if (Number.isFinite(x)) out[u] = x;
  }
  return out;
}

/**
 * Pearson correlation of every unit with unit `ref` over the held steps before `length`, using the
 * steps where both values are finite. NaN where either series is constant there.
 */
export function correlationScores(q: UnitSeries, ref: number, length: number): Float64Array {
  const { data, units } = q;
  const out = new Float64Array(units).fill(NaN);
  if (!(ref >= 0 && ref < units)) return out;
  const held = validSteps(q, length);
  const n = new Float64Array(units), sx = new Float64Array(units), sy = new Float64Array(units);
  const sxx = new Float64Array(units), syy = new Float64Array(units), sxy = new Float64Array(units);
  // two passes over the pairs where both are finite: the sums, then the sums of squares around
  // the means (without cancellation error)
  for (const around of [false, true]) {
    for (let i = 0; i < held; i++) {
      const row = i * units, y = data[row + ref];
      if (!Number.isFinite(y)) continue;
      for (let u = 0; u < units; u++) {
        const x = data[row + u];
        if (!Number.isFinite(x)) continue;
        if (!around) {
          n[u]++; sx[u] += x; sy[u] += y;
          continue;
        }
        const dx = x - sx[u] / n[u], dy = y - sy[u] / n[u];
        sxx[u] += dx * dx; syy[u] += dy * dy; sxy[u] += dx * dy;
      }
    }
  }
  for (let u = 0; u < units; u++) {
    if (sxx[u] > 0 && syy[u] > 0) out[u] = Math.max(-1, Math.min(1, sxy[u] / Math.sqrt(sxx[u] * syy[u])));
  }
  return out;
}

/** The permutation for an ordering key; `t`, `unit` and `length` are the explorer's selection. */
export function unitOrder(
  key: OrderKey,
  q: UnitSeries,
  sel: { t: number; unit: number; length: number },
): Int32Array {
  switch (key) {
    case "index": return orderByIndex(q.units);
    case "variance": return rankByScore(varianceScores(q, sel.length));
    case "value": return rankByScore(valueScores(q, sel.t));
    case "correlation": return rankByScore(correlationScores(q, sel.unit, sel.length));
  }
}
