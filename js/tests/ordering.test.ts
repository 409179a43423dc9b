import { describe, expect, it } from "vitest";
import {
  correlationScores, orderByIndex, rankByScore, unitOrder, validSteps, valueScores, varianceScores, type UnitSeries,
} from "../src/ordering";

/** Builds time-major data from one column (a function of t) per unit. */
function series(steps: number, columns: Array<(t: number) => number>): UnitSeries {
  const units = columns.length;
  const data = new Float32Array(steps * units);
  for (let t = 0; t < steps; t++) for (let u = 0; u < units; u++) data[t * units + u] = columns[u](t);
  return { data, units, steps };
}

describe("orderings", () => {
  it("by index is the identity", () => {
    expect(Array.from(orderByIndex(4))).toEqual([0, 1, 2, 3]);
  });

  it("rankByScore puts the highest first, NaN last, ties in index order", () => {
    const order = rankByScore(Float64Array.from([1, NaN, 3, 1, -2]));
    expect(Array.from(order)).toEqual([2, 0, 3, 4, 1]);
  });

  it("variance matches the two-pass definition and ranks the widest unit first", () => {
    const q = series(50, [t => 0.1 * Math.sin(t), t => 2 * Math.cos(t), () => 5, t => t / 50]);
    const scores = varianceScores(q, 50);
    for (let u = 0; u < 4; u++) {
      const xs = Array.from({ length: 50 }, (_, t) => q.data[t * 4 + u]);
      const mean = xs.reduce((a, b) => a + b) / xs.length;
      const v = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
      expect(scores[u]).toBeCloseTo(v, 10);
    }
    expect(Array.from(unitOrder("variance", q, { t: 0, unit: 0, length: 50 }))).toEqual([1, 3, 0, 2]);
  });

  it("variance ignores padding steps past the length", () => {
    // unit 0 is flat inside the valid steps and wild in the padding
    const q = series(20, [t => (t < 10 ? 1 : t * 100), t => (t % 2 ? 1 : -1)]);
    const scores = varianceScores(q, 10);
    expect(scores[0]).toBe(0);
    expect(Array.from(unitOrder("variance", q, { t: 0, unit: 0, length: 10 }))).toEqual([1, 0]);
  });

  it("variance skips non-finite values", () => {
    const q = series(4, [t => [1, NaN, 3, Infinity][t]]);
    expect(varianceScores(q, 4)[0]).toBeCloseTo(1, 12); // var of {1, 3}
  });

  it("by value at t ranks the values of that step", () => {
    const q = series(3, [t => t, t => -t, t => 10 - t * 5]);
    expect(Array.from(unitOrder("value", q, { t: 0, unit: 0, length: 3 }))).toEqual([2, 0, 1]);
    expect(Array.from(unitOrder("value", q, { t: 2, unit: 0, length: 3 }))).toEqual([0, 2, 1]);
    expect(Array.from(valueScores(q, 7)).every(Number.isNaN)).toBe(true);
  });

  it("by correlation: the reference first, correlated before unrelated before anti-correlated", () => {
    const base = (t: number) => Math.sin(t * 0.7) + 0.3 * Math.cos(t * 1.9);
    const q = series(64, [
      t => -base(t),                       // anti-correlated
      t => Math.cos(t * 3.1) * Math.sin(t), // roughly unrelated
      t => base(t),                         // the reference
      t => 3 * base(t) + 2,                 // perfectly correlated, scaled and shifted
      () => 1,                              // constant: correlation undefined
    ]);
    const r = correlationScores(q, 2, 64);
    expect(r[2]).toBeCloseTo(1, 6);
    expect(r[3]).toBeCloseTo(1, 6);
    expect(r[0]).toBeCloseTo(-1, 6);
    expect(Math.abs(r[1])).toBeLessThan(0.5);
    expect(Number.isNaN(r[4])).toBe(true);
    const order = Array.from(unitOrder("correlation", q, { t: 0, unit: 2, length: 64 }));
    expect(order.slice(0, 2).sort()).toEqual([2, 3]);
    expect(order.slice(2)).toEqual([1, 0, 4]);
  });

  it("correlation matches Pearson's r on the valid steps only", () => {
    const q = series(30, [t => Math.sin(t), t => (t < 20 ? Math.sin(t) * 0.5 + t * 0.01 : 1e6)]);
    const r = correlationScores(q, 0, 20)[1];
    const xs = Array.from({ length: 20 }, (_, t) => q.data[t * 2 + 1]);
    const ys = Array.from({ length: 20 }, (_, t) => q.data[t * 2]);
    const mx = xs.reduce((a, b) => a + b) / 20, my = ys.reduce((a, b) => a + b) / 20;
    let sxy = 0, sxx = 0, syy = 0;
    for (let i = 0; i < 20; i++) {
      sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; syy += (ys[i] - my) ** 2;
    }
    expect(r).toBeCloseTo(sxy / Math.sqrt(sxx * syy), 10);
  });

  it("a window of a long sequence (t0): absolute t and length, only held steps read", () => {
    // steps 100..109 held; the element's length is 105
    const q = { ...series(10, [t => t, t => -2 * t, t => (t >= 5 ? 1000 : 0)]), t0: 100 };
    expect(validSteps(q, 105)).toBe(5);
    expect(validSteps(q, 50)).toBe(0);
    expect(Array.from(varianceScores(q, 105))).toEqual([2, 8, 0]); // var of 0..4, of 0,-2..-8; flat before 105
    expect(Array.from(valueScores(q, 103))).toEqual([3, -6, 0]);
    expect(Array.from(valueScores(q, 3)).every(Number.isNaN)).toBe(true);
    expect(correlationScores(q, 0, 105)[1]).toBeCloseTo(-1, 10);
    expect(Array.from(unitOrder("value", q, { t: 108, unit: 0, length: 110 }))).toEqual([2, 0, 1]);
  });

  it("every ordering is a permutation", () => {
    const q = series(40, Array.from({ length: 9 }, (_, u) => (t: number) => Math.sin(t * (u + 1)) * (u % 3)));
    for (const key of ["index", "variance", "value", "correlation"] as const) {
      const order = Array.from(unitOrder(key, q, { t: 5, unit: 4, length: 40 }));
      expect([...order].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
  });
});
