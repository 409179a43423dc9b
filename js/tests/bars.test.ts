// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { colorWord, NON_FINITE_WORD } from "../src/colormap";
import { BAR_W, columnSlots, createBars, longestValue, paintBars, rowOf, slotOfUnit } from "../src/bars";
import { explorerState, layer, quantity, recordingActions } from "./fake-state";
import { fakeResizeObservers } from "./fake-resize";

/** The rows of column x that hold a given word. */
function rowsWith(pixels: Uint32Array, width: number, height: number, x: number, word: number): number[] {
  const out = [];
  for (let y = 0; y < height; y++) if (pixels[y * width + x] === word) out.push(y);
  return out;
}

describe("bar geometry", () => {
  it("maps values onto rows, clamped to the axis", () => {
    expect(rowOf(1, -1, 1, 11)).toBe(0);
    expect(rowOf(-1, -1, 1, 11)).toBe(10);
    expect(rowOf(0, -1, 1, 11)).toBe(5);
    expect(rowOf(7, -1, 1, 11)).toBe(0);
    expect(rowOf(0, 0, 1, 11)).toBe(10);
  });

  it("covers every slot exactly once when there are more columns than slots", () => {
    const seen = new Set<number>();
    for (let x = 0; x < 100; x++) {
      const [a, b] = columnSlots(x, 7, 100);
      expect(b - a).toBe(1);
      seen.add(a);
    }
    expect(seen.size).toBe(7);
    // more slots than columns: every slot falls in some column
    let covered = 0;
    for (let x = 0; x < 10; x++) { const [a, b] = columnSlots(x, 1024, 10); covered += b - a; }
    expect(covered).toBe(1024);
  });

  it("paints each bar from zero to its value in its value's colour", () => {
    const width = 4, height = 11;
    const pixels = new Uint32Array(width * height);
    const values = Float32Array.from([1, -1, 0.5, NaN]);
    paintBars(pixels, width, height, values, null, { scale: "diverging", vmin: -1, vmax: 1, selectedSlot: -1, muted: false });
    const w = (v: number) => colorWord(v, "diverging", -1, 1);
    expect(rowsWith(pixels, width, height, 0, w(1))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rowsWith(pixels, width, height, 1, w(-1))).toEqual([5, 6, 7, 8, 9, 10]);
    expect(rowsWith(pixels, width, height, 2, w(0.5))).toEqual([3, 4, 5]);
    expect(rowsWith(pixels, width, height, 3, NON_FINITE_WORD)).toHaveLength(height);
    expect(rowsWith(pixels, width, height, 0, 0)).toEqual([6, 7, 8, 9, 10]); // empty above/below
  });

  it("follows the display order and marks the selected slot", () => {
    const width = 3, height = 5;
    const pixels = new Uint32Array(width * height);
    const values = Float32Array.from([0.2, 0.9, 0.5]);
    const order = Int32Array.from([1, 2, 0]);
    const style = { scale: "sequential" as const, vmin: 0, vmax: 1, selectedSlot: slotOfUnit(0, order), muted: false };
    expect(style.selectedSlot).toBe(2);
    paintBars(pixels, width, height, values, order, style);
    const w = (v: number) => colorWord(v, "sequential", 0, 1);
    expect(pixels[4 * width + 0]).toBe(w(values[1])); // slot 0 shows unit 1
    expect(pixels[4 * width + 1]).toBe(w(values[2]));
    expect(pixels[4 * width + 2]).toBe(w(values[0]));
    // the selected slot has a background above its bar; the others are empty there
    expect(pixels[0 * width + 2]).not.toBe(0);
    expect(pixels[0 * width + 1]).toBe(0); // slot 1 (unit 2, 0.5) stops at row 2
  });

  it("a column over many slots shows the one farthest from zero", () => {
    const width = 2, height = 9;
    const pixels = new Uint32Array(width * height);
    const values = Float32Array.from([0.1, -0.9, 0.3, 0.2, 0.4, 0.1]);
    paintBars(pixels, width, height, values, null, { scale: "diverging", vmin: -1, vmax: 1, selectedSlot: -1, muted: false });
    expect(pixels[8 * width + 0]).toBe(colorWord(-0.9, "diverging", -1, 1));
    expect(pixels[2 * width + 1]).toBe(colorWord(0.4, "diverging", -1, 1));
  });
});

describe("state-at-t panel", () => {
  const units = 5;
  const lstm = layer("lstm.l0", "lstm", [
    quantity("h", 6, units, (t, u) => Math.tanh(t - u)),
    quantity("c", 6, units, (t, u) => (t - u) * 0.5),
    quantity("forget", 6, units, (t, u) => 1 / (1 + Math.exp(u - t)), "sequential"),
  ]);

  it("one canvas per quantity, labelled with the selected unit's value at t", () => {
    const panel = createBars(recordingActions().actions);
    panel.update(explorerState([lstm], { t: 4, unit: 2 }));
    expect(panel.el.classList.contains("rw-bars")).toBe(true);
    expect(panel.el.querySelectorAll("canvas")).toHaveLength(3);
    const labels = [...panel.el.querySelectorAll(".rw-bars-label")].map((l) => l.textContent);
    expect(labels[0]).toBe(`h  unit 2 = ${Math.fround(Math.tanh(2)).toFixed(3)}`);
    expect(labels[1]).toBe("c  unit 2 = 1.000");
    // a scrub updates the same elements in place
    const canvases = [...panel.el.querySelectorAll("canvas")];
    panel.update(explorerState([lstm], { t: 1, unit: 2 }));
    expect([...panel.el.querySelectorAll("canvas")]).toEqual(canvases);
    expect(panel.el.querySelector(".rw-bars-label")!.textContent).toBe(`h  unit 2 = ${Math.fround(Math.tanh(-1)).toFixed(3)}`);
    expect(panel.el.querySelector(".rw-bars-header")!.textContent).toBe("lstm.l0 at step 1");
    panel.update(explorerState([lstm], { t: 5, unit: 2, length: 5 }));
    expect(panel.el.querySelector(".rw-bars-header")!.textContent).toContain("padding");
  });

  it("fits the labels' column to the longest label any step writes, and keeps it through a scrub", () => {
    const panel = createBars(recordingActions().actions);
    const read = (t: number, unit = 2) => {
      panel.update(explorerState([lstm], { t, unit }));
      // (each label's text sits in a box of a fixed size, laid out on its own: dom.ts createStepLine)
      const labels = [...panel.el.querySelectorAll<HTMLElement>(".rw-bars-label")];
      const boxes = labels.map((l) => l.querySelector<HTMLElement>(".rw-step-line")!);
      return { widths: boxes.map((b) => b.style.width), texts: labels.map((l) => l.textContent ?? "") };
    };
    for (const unit of [2, 4]) {
      const steps = [0, 1, 2, 3, 4, 5].map((t) => read(t, unit));
      const longest = Math.max(...steps.flatMap((s) => s.texts.map((text) => text.length)));
      for (const s of steps) expect(s.widths).toEqual(Array(3).fill(`${longest}ch`)); // every row, every step
    }
    // unit 2: "forget  unit 2 = " and sigmoid values "0.xxx" make the longest label, not c's "-1.000"
    expect(read(0).widths[0]).toBe(`${"forget  unit 2 = 0.119".length}ch`);
  });

  it("longestValue: the longest text a unit's values write, a sign and non-finite values included", () => {
    const q = quantity("h", 4, 2, (t, u) => [0.5, -0.25, 123.4567, 2][t] * (u === 0 ? 1 : -1));
    expect(longestValue(q, 0)).toBe("123.457".length);
    expect(longestValue(q, 1)).toBe("-123.457".length);
    q.data[2] = Number.NEGATIVE_INFINITY;
    expect(longestValue(q, 0)).toBe("-Infinity".length);
    expect(longestValue({ ...q, data: new Float32Array(8).fill(Number.NaN) }, 1)).toBe("NaN".length);
  });

  it("reads the absolute step from a window of a long sequence", () => {
    const h = { ...quantity("h", 3, 2, (t, u) => t * 0.1 + u * 0.01), t0: 500 }; // steps 500..502
    const panel = createBars(recordingActions().actions);
    panel.update(explorerState([layer("l", "lstm", [h])], { t: 501, unit: 1, steps: 1000, length: 1000 }));
    expect(panel.el.querySelector(".rw-bars-label")!.textContent).toBe("h  unit 1 = 0.110");
  });

  it("clicking a bar selects the unit in that display slot", () => {
    const { actions, calls } = recordingActions();
    const panel = createBars(actions);
    document.body.append(panel.el);
    panel.update(explorerState([lstm], { order: Int32Array.from([4, 3, 2, 1, 0]) }));
    const canvas = panel.el.querySelector("canvas")!;
    canvas.getBoundingClientRect = () => ({ left: 0, top: 0, width: BAR_W, height: 48 }) as DOMRect;
    canvas.dispatchEvent(new MouseEvent("click", { clientX: 10, clientY: 5 }));
    canvas.dispatchEvent(new MouseEvent("click", { clientX: BAR_W - 1, clientY: 5 }));
    expect(calls).toEqual([["setUnit", 4], ["setUnit", 0]]);
    panel.el.remove();
  });
});

describe("the bars' first paint", () => {
  it("waits for the resize observer's width instead of painting every row twice", () => {
    const resize = fakeResizeObservers();
    const getContext = HTMLCanvasElement.prototype.getContext;
    let puts = 0; // canvases painted
    const fake = {
      createImageData: (w: number, h: number) => ({ data: new Uint8ClampedArray(w * h * 4), width: w, height: h }),
      putImageData: () => puts++,
    };
    HTMLCanvasElement.prototype.getContext = (() => fake) as unknown as typeof getContext;
    try {
      const units = 5;
      const lstm = layer("lstm.l0", "lstm", [quantity("h", 6, units, (t, u) => Math.tanh(t - u)),
        quantity("c", 6, units, (t, u) => (t - u) * 0.5)]);
      const panel = createBars(recordingActions().actions);
      panel.update(explorerState([lstm], { t: 4, unit: 2 }));
      // built and labelled (the layout needs them), not painted
      expect(panel.el.querySelectorAll("canvas")).toHaveLength(2);
      expect(panel.el.querySelector(".rw-bars-label")!.textContent).toBe(`h  unit 2 = ${Math.fround(Math.tanh(2)).toFixed(3)}`);
      expect(puts).toBe(0);
      resize.report(300, 50);
      expect(puts).toBe(2); // each row once, at the reported width
      expect([...panel.el.querySelectorAll("canvas")].map((c) => c.width)).toEqual([300, 300]);
      // the same width reported again (or the same step) paints nothing more
      resize.report(300, 50);
      panel.update(explorerState([lstm], { t: 4, unit: 2 }));
      expect(puts).toBe(2);
      panel.update(explorerState([lstm], { t: 3, unit: 2 })); // a scrub paints at once
      expect(puts).toBe(4);
      panel.destroy?.();
    } finally {
      resize.restore();
      HTMLCanvasElement.prototype.getContext = getContext;
    }
  });
});
