// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { BOUNDS_MARGIN, cellValues, createCellview, equationLines, flowWeights, fmt, templateOf, unrecordedFlows, unrecordedGates } from "../src/cellview";
import type { Quantity } from "../src/state";
import { explorerState, layer, quantity, recordingActions } from "./fake-state";
import { KINDS } from "./payload";

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A one-input LSTM run in float32 with per-unit weights, recorded like the capture does. */
function lstmLayer(steps: number, units: number, c0 = 0, reverse = false) {
  const names = ["input", "forget", "cell", "output", "c", "h"];
  const data = Object.fromEntries(names.map((n) => [n, new Float32Array(steps * units)]));
  for (let u = 0; u < units; u++) {
    let c = c0, h = 0;
    for (let s = 0; s < steps; s++) {
      const t = reverse ? steps - 1 - s : s;
      const x = Math.sin(t * 0.9 + u), k = t * units + u;
      const i = Math.fround(sigmoid(0.8 * x + 0.3 * h + 0.1 * u));
      const f = Math.fround(sigmoid(1.5 - 0.5 * x + 0.2 * h));
      const g = Math.fround(Math.tanh(1.2 * x - 0.7 * h));
      const o = Math.fround(sigmoid(0.4 * x + 0.9 * h));
      c = Math.fround(f * c + i * g);
      h = Math.fround(o * Math.tanh(c));
      data.input[k] = i; data.forget[k] = f; data.cell[k] = g; data.output[k] = o; data.c[k] = c; data.h[k] = h;
    }
  }
  const q = (name: string): Quantity => ({
    name, units, steps, data: data[name], scale: ["input", "forget", "output"].includes(name) ? "sequential" : "diverging", vmin: -1, vmax: 1,
  });
  return layer(reverse ? "lstm.l0.reverse" : "lstm.l0", "lstm", names.map(q), { reverse });
}

/** All decimal numbers written in a line, in order (a minus right after a digit is a subtraction). */
function numbers(line: string): number[] {
  return [...line.replace(/−/g, "-").matchAll(/(?<!\d)-?\d+\.\d+/g)].map((m) => Number(m[0]));
}

describe("cell view equations", () => {
  it("LSTM: the displayed c_t = f·c_{t-1} + i·g and h_t = o·tanh(c_t) hold for the displayed values", () => {
    const l = lstmLayer(12, 3);
    for (const [t, unit] of [[5, 1], [11, 2], [1, 0]]) {
      const lines = equationLines(cellValues(l, t, unit));
      const value = (prefix: string) => numbers(lines.find((s) => s.startsWith(prefix))!).at(-1)!;
      const [i, f, g, o, cPrev] = ["i =", "f =", "g =", "o =", "cₜ₋₁ ="].map(value);
      const q = l.quantities;
      expect(i).toBeCloseTo(q.input.data[t * 3 + unit], 3);
      expect(cPrev).toBeCloseTo(q.c.data[(t - 1) * 3 + unit], 3);
      const cLine = numbers(lines.find((s) => s.startsWith("cₜ ="))!);
      // f, c_{t-1}, i, g, f·c_{t-1}, i·g, c_t
      expect(cLine.slice(0, 4)).toEqual([f, cPrev, i, g]);
      expect(cLine[6]).toBeCloseTo(f * cPrev + i * g, 2);
      expect(cLine[4] + cLine[5]).toBeCloseTo(cLine[6], 2);
      expect(cLine[6]).toBeCloseTo(q.c.data[t * 3 + unit], 3);
      const hLine = numbers(lines.find((s) => s.startsWith("hₜ ="))!);
      expect(hLine.at(-1)).toBeCloseTo(o * Math.tanh(cLine[6]), 2);
      expect(hLine.at(-1)).toBeCloseTo(q.h.data[t * 3 + unit], 3);
    }
  });

  it("negative factors and terms are written in parentheses", () => {
    const k = (name: string, v: number) => quantity(name, 2, 1, () => v, "sequential");
    const l = layer("l", "lstm", [k("input", 0.5), k("forget", 0.5), k("cell", -0.5), k("output", 0.5), k("c", -0.5), k("h", -0.231)]);
    const lines = equationLines(cellValues(l, 1, 0));
    expect(lines[5]).toBe("cₜ = f·cₜ₋₁ + i·g = 0.500·(−0.500) + 0.500·(−0.500) = −0.250 + (−0.250) = −0.500");
    expect(lines[6]).toBe(`hₜ = o·tanh(cₜ) = 0.500·tanh(−0.500) = 0.500·(${fmt(Math.tanh(-0.5))}) = −0.231`);
  });

  it("LSTM at t = 0 solves the initial cell state from step 0 when the trace has none", () => {
    const cv = cellValues(lstmLayer(4, 2, 0.75), 0, 1);
    expect(cv.prevFrom).toBe("solved");
    expect(cv.prev).toBeCloseTo(0.75, 5);
    expect(equationLines(cv)[4]).toContain("initial state, solved from step 0");
  });

  it("LSTM at t = 0 shows the recorded initial state", () => {
    const l = lstmLayer(4, 2, 0.75);
    l.initial = { h: Float32Array.of(0, 0), c: Float32Array.of(0.75, 0.75) };
    const cv = cellValues(l, 0, 1);
    expect([cv.prevFrom, cv.prev]).toEqual(["initial", 0.75]);
    expect(equationLines(cv)[4]).toBe("cₜ₋₁ = 0.750  (initial state)");
    expect(cellValues(l, 1, 1).prevFrom).toBe("step");
  });

  it("a reverse layer's state before step t is step t+1's, and its initial state feeds its last valid step", () => {
    const l = lstmLayer(6, 2, 0.5, true);
    l.initial = { h: Float32Array.of(0, 0), c: Float32Array.of(0.5, 0.5) };
    const q = l.quantities;
    for (const t of [0, 2, 4]) {
      const cv = cellValues(l, t, 1, 6);
      expect([cv.reverse, cv.prevFrom, cv.prev]).toEqual([true, "step", q.c.data[(t + 1) * 2 + 1]]);
      const lines = equationLines(cv);
      expect(lines.join("\n")).not.toContain("ₜ₋₁");
      const cLine = numbers(lines.find((s) => s.startsWith("cₜ = f·cₜ₊₁ + i·g ="))!);
      expect(cLine[6]).toBeCloseTo(cLine[0] * cLine[1] + cLine[2] * cLine[3], 2);
      expect(cLine[6]).toBeCloseTo(q.c.data[t * 2 + 1], 3);
    }
    const last = cellValues(l, 5, 0, 6);
    expect([last.first, last.prevFrom, last.prev]).toEqual([true, "initial", 0.5]);
    expect(equationLines(last)).toContain("cₜ₊₁ = 0.500  (initial state)");
    // a shorter batch element: the reverse direction starts at its own last step
    expect(cellValues(l, 3, 0, 4).prevFrom).toBe("initial");
  });

  it("reads absolute steps from a window of a long sequence, solving c_{t-1} at its first step", () => {
    const whole = lstmLayer(12, 3);
    const windowed = layer("lstm.l0", "lstm", Object.values(whole.quantities).map((q) => ({
      ...q, t0: 1004, steps: 8, data: q.data.subarray(4 * 3), // steps 4..11 held as 1004..1011
    })));
    const a = cellValues(whole, 7, 2), b = cellValues(windowed, 1007, 2);
    expect(b.values).toEqual(a.values);
    expect(b.prev).toBe(a.prev);
    expect(b.prevFrom).toBe("step");
    const first = cellValues(windowed, 1004, 2), truth = cellValues(whole, 4, 2);
    expect(first.prevFrom).toBe("solved");
    expect(first.prev).toBeCloseTo(truth.prev, 5);
    expect(equationLines(first)[4]).toContain("step not loaded, solved from step 1004");
  });

  it("LSTM with proj_size shows o·tanh(c_t) before the projection and says so", () => {
    const l = lstmLayer(5, 4);
    l.quantities.h = quantity("h", 5, 2, () => 0.123);
    const cv = cellValues(l, 3, 3);
    expect(cv.projected).toBe(true);
    const lines = equationLines(cv);
    expect(lines.some((s) => s.startsWith("hₜ ="))).toBe(false);
    const out = lines.find((s) => s.startsWith("o·tanh(cₜ) ="))!;
    const k = 3 * 4 + 3;
    expect(numbers(out).at(-1)).toBeCloseTo(l.quantities.output.data[k] * Math.tanh(l.quantities.c.data[k]), 3);
    expect(lines.at(-1)).toContain("proj_size");
  });

  it("GRU: h_t = (1−z)·n + z·h_{t-1} holds for the displayed values", () => {
    const steps = 6, units = 2;
    const z = quantity("update", steps, units, (t, u) => sigmoid(t - u - 2), "sequential");
    const n = quantity("new", steps, units, (t, u) => Math.tanh(0.5 * t - u));
    const r = quantity("reset", steps, units, () => 0.5, "sequential");
    const hData = new Float32Array(steps * units);
    for (let u = 0; u < units; u++) {
      let h = 0.25;
      for (let t = 0; t < steps; t++) {
        const k = t * units + u;
        h = Math.fround((1 - z.data[k]) * n.data[k] + z.data[k] * h);
        hData[k] = h;
      }
    }
    const h: Quantity = { ...quantity("h", steps, units, () => 0), data: hData };
    const gru = layer("gru.l0", "gru", [h, r, z, n]);
    expect(templateOf(gru)).toBe("gru");
    const lines = equationLines(cellValues(gru, 4, 1));
    const hLine = numbers(lines.find((s) => s.startsWith("hₜ ="))!);
    // z, n, z, h_{t-1}, (1−z)·n, z·h_{t-1}, h_t  (the "1" of "1−z" is not a decimal)
    const [zv, nv, , hPrev, a, b, ht] = hLine;
    expect(ht).toBeCloseTo((1 - zv) * nv + zv * hPrev, 2);
    expect(a + b).toBeCloseTo(ht, 2);
    expect(ht).toBeCloseTo(hData[4 * units + 1], 3);
    expect(cellValues(gru, 0, 0).prev).toBeCloseTo(0.25, 4); // the initial state, solved
  });

  it("plain RNN and recorded-only kinds", () => {
    const rnn = layer("rnn.l0", "rnn", [quantity("h", 3, 2, (t, u) => Math.tanh(t + u))]);
    const lines = equationLines(cellValues(rnn, 2, 1));
    expect(lines[0]).toBe(`hₜ₋₁ = ${fmt(Math.fround(Math.tanh(2)))}`);
    expect(lines[1]).toBe(`hₜ = tanh(W_ih xₜ + b_ih + W_hh hₜ₋₁ + b_hh) = ${fmt(Math.fround(Math.tanh(3)))}`);
    expect(equationLines(cellValues(rnn, 0, 0))[0]).toContain("not recorded");
    const custom = layer("m.cell", "custom", [quantity("h", 3, 2, (t) => t / 4), quantity("i2h", 3, 4, () => -2)]);
    expect(templateOf(custom)).toBe("cell");
    expect(equationLines(cellValues(custom, 2, 1))).toEqual(["hₜ₋₁ = 0.250", "hₜ = 0.500", "i2h = −2.000"]);
    expect(equationLines(cellValues(custom, 0, 1))[0]).toContain("not recorded");
    expect(equationLines(cellValues(custom, 1, 3))).toEqual(["i2h = −2.000"]); // a track wider than h
    expect(flowWeights(cellValues(custom, 2, 1))).toEqual({ recur: 0.5, out: 1 });
    const tracksOnly = layer("m.cell", "custom", [quantity("i2h", 3, 4, () => -2)]);
    expect(templateOf(tracksOnly)).toBe("list");
    expect(equationLines(cellValues(tracksOnly, 1, 0))).toEqual(["i2h = −2.000"]);
  });

  it("takes gate names and the direction from the layer's data, not from its name", () => {
    const l = lstmLayer(6, 2);
    // an LSTMCell in a user's loop is kind "cell" with the LSTM's recurrence: the LSTM equations
    const cell = layer("rnn_cell", "cell", Object.values(l.quantities), { recurrence: KINDS.lstm });
    expect(templateOf(cell)).toBe("lstm");
    expect(equationLines(cellValues(cell, 3, 1))).toEqual(equationLines(cellValues(l, 3, 1)));
    // tracks that happen to carry gate names do not make a custom layer an LSTM
    const custom = layer("m.cell", "custom", Object.values(l.quantities));
    expect(templateOf(custom)).toBe("cell");
    // a layer named ".reverse" is not reversed unless its data says so, and the reverse flag alone reverses it
    const named = layer("lstm.l0.reverse", "lstm", Object.values(l.quantities));
    expect(cellValues(named, 3, 1).prev).toBe(l.quantities.c.data[2 * 2 + 1]);
    const flagged = layer("lstm.l0", "lstm", Object.values(l.quantities), { reverse: true });
    expect(cellValues(flagged, 3, 1).prev).toBe(l.quantities.c.data[4 * 2 + 1]);
    // gates come in the recurrence's chunk order, whatever order the quantities arrive in
    const shuffled = layer("lstm.l0", "lstm", [...Object.values(l.quantities)].reverse());
    expect(cellValues(shuffled, 3, 1).gates).toEqual(["input", "forget", "cell", "output"].map((g) => l.quantities[g].data[3 * 2 + 1]));
  });

  it("an LSTM traced with quantities=(\"h\", \"c\") keeps the LSTM's equations, its gates not recorded", () => {
    const full = lstmLayer(6, 2);
    const hc = layer("lstm.l0", "lstm", [full.quantities.h, full.quantities.c]); // the kind from the payload
    expect(templateOf(hc)).toBe("lstm");
    expect(unrecordedGates(hc)).toEqual(["input", "forget", "cell", "output"]);
    const cv = cellValues(hc, 3, 1);
    const c = full.quantities.c.data, h = full.quantities.h.data;
    expect(cv.gates.every(Number.isNaN)).toBe(true);
    expect(cv.prev).toBe(c[2 * 2 + 1]); // c_{t-1} is a recorded state, not a gate
    const lines = equationLines(cv);
    expect(lines.slice(0, 4).every((line) => line.endsWith(": not recorded"))).toBe(true);
    expect(lines[4]).toBe(`cₜ₋₁ = ${fmt(c[2 * 2 + 1])}`);
    expect(lines[5]).toBe(`cₜ = f·cₜ₋₁ + i·g = ${fmt(c[3 * 2 + 1])}`);
    expect(lines[6]).toBe(`hₜ = o·tanh(cₜ) = o·tanh(${fmt(c[3 * 2 + 1])}) = ${fmt(h[3 * 2 + 1])}`);
    expect(lines[7]).toContain("gates not recorded: input, forget, cell, output");
    expect(unrecordedFlows(cv).sort()).toEqual(["carry", "write"]);
    expect(flowWeights(cv)).toEqual({ carry: 0, write: 0, out: 1 }); // out is |h_t|, known
    // one gate kept: only the flows that need a missing gate are unknown
    const withForget = layer("lstm.l0", "lstm", [full.quantities.h, full.quantities.c, full.quantities.forget]);
    const cf = cellValues(withForget, 3, 1);
    expect(unrecordedFlows(cf)).toEqual(["write"]);
    expect(equationLines(cf)[1]).toBe(equationLines(cellValues(full, 3, 1))[1]);
    // a GRU traced with h only keeps the GRU's equations
    const gru = layer("gru.l0", "gru", [quantity("h", 4, 2, (t, u) => t / 8 + u)]);
    expect(templateOf(gru)).toBe("gru");
    expect(equationLines(cellValues(gru, 2, 0))[4]).toBe(`hₜ = (1−z)·n + z·hₜ₋₁ = ${fmt(0.25)}`);
    // an LSTM without c cannot run its equations: it lists what it has
    expect(templateOf(layer("lstm.l0", "lstm", [full.quantities.h]))).toBe("list");
  });

  it("flow weights compare f·c_{t-1} with i·g and are scaled to the largest", () => {
    const cv = cellValues(lstmLayer(6, 1), 3, 0);
    const w = flowWeights(cv);
    const v = cv.values;
    const raw = { carry: Math.abs(v.forget * cv.prev), write: Math.abs(v.input * v.cell), out: Math.abs(v.output * Math.tanh(v.c)) };
    const top = Math.max(...Object.values(raw));
    for (const k of ["carry", "write", "out"] as const) expect(w[k]).toBeCloseTo(raw[k] / top, 10);
    expect(Math.max(...Object.values(w))).toBe(1);
  });
});

describe("cell view panel", () => {
  it("follows t and unit, shades the drawing, updates lines in place", () => {
    const l = lstmLayer(8, 3);
    const panel = createCellview(recordingActions().actions);
    panel.update(explorerState([l], { t: 2, unit: 1 }));
    expect(panel.el.classList.contains("rw-cellview")).toBe(true);
    const lines = [...panel.el.querySelectorAll(".rw-eq")];
    expect(lines.map((e) => e.textContent)).toEqual(equationLines(cellValues(l, 2, 1)));
    const carry = panel.el.querySelector('path[data-flow="carry"]')!;
    const width = carry.getAttribute("stroke-width");
    panel.update(explorerState([l], { t: 6, unit: 2 }));
    expect([...panel.el.querySelectorAll(".rw-eq")]).toEqual(lines);
    expect(lines.map((e) => e.textContent)).toEqual(equationLines(cellValues(l, 6, 2)));
    expect(panel.el.querySelector(".rw-cellview-header")!.textContent).toBe("lstm.l0 · unit 2 · step 6");
    expect(panel.el.querySelector('path[data-flow="carry"]')).toBe(carry);
    expect(carry.getAttribute("stroke-width")).not.toBe(width);
    // the drawing's paint keeps its bounds through a scrub: an unfilled box drawn first, around
    // the whole drawing and past it by BOUNDS_MARGIN, which holds every stroke at its widest (8:
    // 1 + 7 × the largest flow) with its miter (up to twice the width past a corner)
    const svg = panel.el.querySelector("svg")!;
    const bounds = svg.firstElementChild!;
    const [, , w, h] = svg.getAttribute("viewBox")!.split(" ").map(Number);
    expect([bounds.tagName, bounds.getAttribute("fill")]).toEqual(["rect", "none"]);
    expect(["x", "y", "width", "height"].map((a) => Number(bounds.getAttribute(a))))
      .toEqual([-BOUNDS_MARGIN, -BOUNDS_MARGIN, w + 2 * BOUNDS_MARGIN, h + 2 * BOUNDS_MARGIN]);
    expect(BOUNDS_MARGIN).toBeGreaterThanOrEqual(2 * 8);
    const coordinates = [...svg.querySelectorAll("path")].flatMap((p) => (p.getAttribute("d")!.match(/[0-9]+/g) ?? []).map(Number));
    expect(coordinates.every((v) => v >= 0 && v <= w)).toBe(true);
    const reverse = lstmLayer(12, 3, 0, true);
    panel.update(explorerState([l, reverse], { layer: reverse.name, t: 3 }));
    const labels = [...panel.el.querySelectorAll("svg text")].map((e) => e.textContent);
    expect(labels).toContain("cₜ₊₁"); // the reverse layer's drawing reads its state from t+1
    expect(labels).not.toContain("cₜ₋₁");
  });

  it("draws the LSTM cell for an h, c-only LSTM layer, its unrecorded gates dashed and marked", () => {
    const full = lstmLayer(8, 3);
    const hc = layer("lstm.l0", "lstm", [full.quantities.h, full.quantities.c]);
    const panel = createCellview(recordingActions().actions);
    panel.update(explorerState([hc], { t: 3, unit: 1 }));
    const flows = [...panel.el.querySelectorAll("svg path[data-flow]")].map((p) => p.getAttribute("data-flow"));
    expect(flows).toEqual(["carry", "write", "out"]); // the LSTM's drawing, not the generic cell's "recur"
    const labels = [...panel.el.querySelectorAll("svg text")].map((e) => e.textContent);
    expect(labels).toContain("cₜ₋₁");
    expect(labels).toEqual(expect.arrayContaining(["f?", "i · g?", "o?", "? dashed: gates not recorded"]));
    for (const name of ["carry", "write"]) {
      const path = panel.el.querySelector(`path[data-flow="${name}"]`)!;
      expect(path.getAttribute("stroke-dasharray")).toBe("4 4");
      expect(path.querySelector("title")!.textContent).toContain("not recorded");
    }
    expect(panel.el.querySelector('path[data-flow="out"]')!.getAttribute("stroke-dasharray")).toBeNull();
    // the full layer's drawing has no dashes and no question marks
    panel.update(explorerState([full], { t: 3, unit: 1 }));
    expect(panel.el.querySelector("[stroke-dasharray]")).toBeNull();
    expect([...panel.el.querySelectorAll("svg text")].map((e) => e.textContent)).toContain("f");
  });

  it("names from user code are shown as text", () => {
    const hostile = "<img src=x onerror=alert(1)>";
    const panel = createCellview(recordingActions().actions);
    const l = layer(hostile, "custom", [quantity("h", 2, 1, () => 0), quantity(hostile, 2, 1, () => 1)]);
    panel.update(explorerState([l], { t: 1 }));
    expect(panel.el.querySelector("img")).toBeNull();
    expect(panel.el.textContent).toContain(hostile);
    expect(panel.el.querySelector('path[data-flow="recur"]')).not.toBeNull(); // the generic cell drawing
    const tracksOnly = layer("m", "custom", [quantity(hostile, 2, 1, () => 1)]);
    panel.update(explorerState([tracksOnly]));
    expect(panel.el.querySelector("svg")).toBeNull(); // nothing to draw without h
  });
});
