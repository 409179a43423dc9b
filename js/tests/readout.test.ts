import { describe, expect, it } from "vitest";
import type { Overview } from "../src/decode";
import { formatValue } from "../src/heatmap";
import { readoutText } from "../src/readout";
import { explorerState, layer, quantity } from "./fake-state";

const f = (t: number, u: number) => t / 10 - u;

describe("the heatmap's readout", () => {
  const state = explorerState([layer("rnn.l0", "rnn", [quantity("h", 4, 3, f)])], { tokens: ["a", " ", "c"], length: 3 });

  it("names the cell's unit, step, token and value, and marks padding", () => {
    expect(readoutText(state, null, { t: 1, row: 2 })).toBe(`unit 2 · step 1 · ␣ · h = ${formatValue(f(1, 2))}`);
    expect(readoutText(state, null, { t: 3, row: 0 })).toBe(`unit 0 · step 3 · h = ${formatValue(f(3, 0))} (padding)`);
  });

  it("numbers a window's steps as the model does", () => {
    const window = { ...state, firstStep: 120 };
    expect(readoutText(window, null, { t: 1, row: 2 })).toBe(`unit 2 · step 121 · ␣ · h = ${formatValue(f(1, 2))}`);
  });

  it("reads a row through the order", () => {
    const ordered = { ...state, order: Int32Array.of(2, 0, 1) };
    expect(readoutText(ordered, null, { t: 0, row: 0 })).toBe(`unit 2 · step 0 · a · h = ${formatValue(f(0, 2))}`);
  });

  it("gives the overview's range for a column outside the window held", () => {
    // a window of steps [2, 4) of 8; an overview of 4 columns of 2 steps, 1 unit
    const windowed = explorerState([layer("rnn.l0", "rnn", [{ ...quantity("h", 2, 1, f), t0: 2 }])], { steps: 8, length: 7 });
    const overview: Overview = {
      layer: "rnn.l0", quantity: "h", columns: 4, bucket: 2, units: 1,
      min: Float32Array.of(0, 0.2, 0.4, 0.6), max: Float32Array.of(0.1, 0.3, 0.5, 0.7),
    };
    expect(readoutText(windowed, overview, { t: 7, row: 0 })).toBe("unit 0 · steps 6–7 · h in [0.600, 0.700] (padding)");
    expect(readoutText(windowed, overview, { t: 3, row: 0 })).toBe(`unit 0 · step 3 · h = ${formatValue(f(1, 0))}`);
  });
});
