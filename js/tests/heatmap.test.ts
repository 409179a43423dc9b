import { describe, expect, it } from "vitest";
import { NON_FINITE_WORD, colorWord, lutFor } from "../src/colormap";
import {
  cellAtFraction, cursorRects, extreme, formatValue, greyed, overviewPerUnit, paintHeatmap, paintOverview, scaledPerUnit,
} from "../src/heatmap";
import type { Quantity } from "../src/state";

function quantity(steps: number, units: number, f: (t: number, u: number) => number): Quantity {
  const data = new Float32Array(steps * units);
  for (let t = 0; t < steps; t++) for (let u = 0; u < units; u++) data[t * units + u] = f(t, u);
  return { name: "h", units, steps, data, scale: "diverging", vmin: -1, vmax: 1 };
}

describe("heatmap painting", () => {
  const q = quantity(4, 3, (t, u) => (u === 2 && t === 1 ? NaN : (t - u) / 3));

  it("puts unit u on row u and step t on column t", () => {
    const out = new Uint32Array(12);
    paintHeatmap(q, null, 4, out);
    for (let u = 0; u < 3; u++) {
      for (let t = 0; t < 4; t++) {
        const expected = u === 2 && t === 1 ? NON_FINITE_WORD : colorWord((t - u) / 3, "diverging", -1, 1);
        expect(out[u * 4 + t]).toBe(expected);
      }
    }
  });

  it("follows a row order", () => {
    const plain = new Uint32Array(12);
    const ordered = new Uint32Array(12);
    paintHeatmap(q, null, 4, plain);
    paintHeatmap(q, Int32Array.of(2, 0, 1), 4, ordered);
    expect(ordered.subarray(0, 4)).toEqual(plain.subarray(8, 12));
    expect(ordered.subarray(4, 8)).toEqual(plain.subarray(0, 4));
  });

  it("greys the padding steps past the element's length", () => {
    const out = new Uint32Array(12);
    paintHeatmap(q, null, 2, out);
    expect(out[2]).toBe(greyed(colorWord(2 / 3, "diverging", -1, 1)));
    expect(out[1]).toBe(colorWord(1 / 3, "diverging", -1, 1));
    expect(greyed(lutFor("diverging")[0])).not.toBe(lutFor("diverging")[0]);
  });

  it("clamps values past the scale's ends", () => {
    const out = new Uint32Array(2);
    paintHeatmap(quantity(2, 1, (t) => (t ? 50 : -50)), null, 2, out);
    expect(Array.from(out)).toEqual([lutFor("diverging")[0], lutFor("diverging").at(-1)]);
  });

  it("rejects an output of the wrong size", () => {
    expect(() => paintHeatmap(q, null, 4, new Uint32Array(5))).toThrow(/expected 12 pixels/);
  });
});

describe("hit testing and labels", () => {
  it("maps a point to its cell, edges included", () => {
    expect(cellAtFraction(0, 0, 10, 4)).toEqual({ t: 0, row: 0 });
    expect(cellAtFraction(0.999, 0.999, 10, 4)).toEqual({ t: 9, row: 3 });
    expect(cellAtFraction(0.55, 0.5, 10, 4)).toEqual({ t: 5, row: 2 });
  });

  it("formats values short", () => {
    expect(formatValue(0.123456)).toBe("0.123");
    expect(formatValue(123.456)).toBe("123.5");
    expect(formatValue(1e-5)).toBe("1.00e-5");
    expect(formatValue(NaN)).toBe("NaN");
  });
});

describe("a long sequence's overview", () => {
  it("shows of each bucket the value farther from the scale's middle, NaN first", () => {
    expect(extreme(-0.2, 0.9, 0)).toBe(0.9);
    expect(extreme(-0.95, 0.9, 0)).toBe(-0.95);
    expect(extreme(0.1, 0.2, 0.5)).toBe(0.1); // a sigmoid gate: 0.1 is farther from 0.5
    expect(extreme(NaN, 0.2, 0)).toBeNaN();
    expect(extreme(0, Infinity, 0)).toBe(Infinity);
  });

  it("paints columns of buckets so a one-step spike survives, greying padding columns", () => {
    const o = {
      layer: "l", quantity: "h", columns: 3, bucket: 4, units: 2,
      min: Float32Array.of(0, -0.1, -1, 0, 0, NaN),
      max: Float32Array.of(0.1, 0, 0.2, 0.5, 0, NaN),
    };
    const scale = { scale: "diverging" as const, vmin: -1, vmax: 1 };
    const out = new Uint32Array(6);
    paintOverview(o, scale, null, 8, out);
    expect(out[1]).toBe(colorWord(-1, "diverging", -1, 1)); // unit 0, column 1: the -1 spike
    expect(out[4]).toBe(colorWord(0.5, "diverging", -1, 1)); // unit 1, column 1
    expect(out[2]).toBe(greyed(colorWord(0, "diverging", -1, 1))); // column 2 starts at step 8 = length
    expect(out[5]).toBe(greyed(NON_FINITE_WORD));
    const ordered = new Uint32Array(6);
    paintOverview(o, scale, [1, 0], 8, ordered);
    expect(Array.from(ordered.subarray(0, 3))).toEqual(Array.from(out.subarray(3, 6)));
  });
});

describe("the cursor", () => {
  it("brackets step t's column and marks the selected row, on the overlay's pixels", () => {
    const { edges, ticks } = cursorRects(2, 1, 10, 4, 100, 40, 1);
    expect(edges).toEqual([[19, 0, 1, 40], [30, 0, 1, 40]]); // column 2 spans x 20..29
    expect(ticks).toEqual([[17, 10, 2, 10], [31, 10, 2, 10]]); // row 1 spans y 10..19
  });

  it("keeps a column at least a pixel wide when steps outnumber pixels", () => {
    const { edges } = cursorRects(500, 0, 1000, 1, 100, 10, 2);
    expect(edges).toEqual([[48, 0, 2, 10], [51, 0, 2, 10]]);
  });

  it("scales each unit to its own largest |value| within the length, on ±1", () => {
    // unit 0 saturates at ±9.8, unit 1 counts 0..3, unit 2 is all 0 with a NaN; step 3 is padding
    const big = quantity(4, 3, (t, u) => [t % 2 ? 9.8 : -9.8, t, u === 2 && t === 1 ? NaN : 0][u]);
    const own = scaledPerUnit({ ...big, data: big.data.map((v, i) => (i >= 9 && i % 3 === 1 ? 50 : v)), vmin: -9.8, vmax: 9.8 }, 3);
    expect([own.vmin, own.vmax, own.scale]).toEqual([-1, 1, "diverging"]);
    expect(Array.from(own.data.subarray(0, 9))).toEqual([-1, 0, 0, 1, 0.5, NaN, -1, 1, 0]);
    expect(own.data[10]).toBe(25); // the padding step's 50 is beyond unit 1's peak (2): it saturates
    const out = new Uint32Array(12);
    paintHeatmap(own, null, 3, out);
    expect(out[1 * 4 + 2]).toBe(colorWord(1, "diverging", -1, 1)); // the counter reaches the scale's end
    expect(scaledPerUnit({ ...big, scale: "sequential", vmin: 0, vmax: 1 }, 4).vmin).toBe(0);
    const o = {
      layer: "l", quantity: "h", columns: 2, bucket: 2, units: 2,
      min: Float32Array.of(-4, 0, 2, 0.5), max: Float32Array.of(0, 0.25, 8, 1),
    };
    const scaled = overviewPerUnit(o, big);
    expect(Array.from(scaled.o.min)).toEqual([-0.5, 0, 0.25, 0.5]);
    expect(Array.from(scaled.o.max)).toEqual([0, 0.25, 1, 1]);
    expect([scaled.q.vmin, scaled.q.vmax]).toEqual([-1, 1]);
  });
});
