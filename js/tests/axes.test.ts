// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { CHAR_PX, LINE_PX, X_TICK_LEFT, createAxis, niceStride, stepLabels, ticks } from "../src/axes";
import { EXPLORER_CSS } from "../src/style";
import { slotLabels } from "../src/bars";
import { PALETTE_NAMES, colorWord, contrast, currentPalette, lutVersion, setPalette, textColorOn, unpack } from "../src/colormap";
import { rowLabels } from "../src/heatmap_panel";
import { hoverBoxes } from "../src/readout";
import { headerLayout, typicalLength } from "../src/tokens";

describe("axis labels", () => {
  it("strides of 1, 2, 5, 10, ... keep labels a gap apart", () => {
    expect(niceStride(20, LINE_PX)).toBe(1);
    expect(niceStride(10, LINE_PX)).toBe(2);
    expect(niceStride(3, LINE_PX)).toBe(5);
    expect(niceStride(1, LINE_PX)).toBe(20);
    expect(niceStride(0.01, 30)).toBe(5000);
    expect(niceStride(0, 30)).toBe(1);
    expect(ticks(11, 5)).toEqual([0, 5, 10]);
  });

  it("labels every row when each has a line, and names the unit drawn there under an order", () => {
    expect(rowLabels({ order: null }, 16, 224).map((l) => l.text)).toEqual(Array.from({ length: 16 }, (_, u) => String(u)));
    const order = Int32Array.of(3, 1, 0, 2);
    expect(rowLabels({ order }, 4, 140)).toEqual([
      { at: 0, text: "3" }, { at: 1, text: "1" }, { at: 2, text: "0" }, { at: 3, text: "2" },
    ]);
    const many = rowLabels({ order: null }, 256, 320); // 1.25 px per row: every 20th
    expect(many.map((l) => l.at).slice(0, 3)).toEqual([0, 20, 40]);
    for (let k = 1; k < many.length; k++) expect(((many[k].at - many[k - 1].at) * 320) / 256).toBeGreaterThanOrEqual(LINE_PX);
  });

  it("step ticks stay clear of each other at any width", () => {
    for (const [steps, width] of [[12, 600], [80, 600], [200, 500], [100_000, 900]]) {
      const labels = stepLabels(steps, width);
      expect(labels[0]).toEqual({ at: 0, text: "0" });
      const widest = String(steps - 1).length * CHAR_PX;
      for (let k = 1; k < labels.length; k++) expect(((labels[k].at - labels[k - 1].at) * width) / steps).toBeGreaterThan(widest);
    }
    expect(stepLabels(12, 600)).toHaveLength(12);
  });

  it("a window of steps is labelled with the model's own step numbers, as far apart as their width needs", () => {
    const labels = stepLabels(50, 300, 9_990); // steps 9,990 ... 10,039 of a trace made with steps=
    expect(labels[0]).toEqual({ at: 0, text: "9990" });
    const widest = "10039".length * CHAR_PX;
    for (let k = 1; k < labels.length; k++) expect(((labels[k].at - labels[k - 1].at) * 300) / 50).toBeGreaterThan(widest);
    expect(labels.every(({ at, text }) => text === String(9_990 + at))).toBe(true);
  });

  it("the bars' unit ids follow the display order", () => {
    expect(slotLabels(Int32Array.of(2, 0, 1), 3, 300).map((l) => l.text)).toEqual(["2", "0", "1"]);
    expect(slotLabels(null, 100, 300).map((l) => l.at).slice(0, 3)).toEqual([0, 10, 20]); // 3 px a unit
  });

  it("places each label at its item's centre, in percent, and reuses the strip for the same labels", () => {
    const axis = createAxis("rw-test-axis", "x");
    axis.set(4, [{ at: 0, text: "a" }, { at: 3, text: "b" }]);
    const [a, b] = [...axis.el.querySelectorAll<HTMLElement>(".rw-tick")];
    expect([a, b].map((l) => l.style.getPropertyValue("--rw-at"))).toEqual(["12.5000%", "87.5000%"]);
    axis.set(4, [{ at: 0, text: "a" }, { at: 3, text: "b" }]);
    expect(axis.el.querySelector(".rw-tick")).toBe(a);
    const rows = createAxis("rw-test-y", "y");
    rows.set(2, [{ at: 0, text: "0" }]);
    expect(rows.el.querySelector<HTMLElement>(".rw-tick")?.style.top).toBe("25.0000%");
  });

  it("keeps an end label inside its strip: step 0 of a long run does not reach into the title beside it", () => {
    const axis = createAxis("rw-test-axis", "x");
    axis.set(2500, [{ at: 0, text: "0" }, { at: 2000, text: "2000" }]);
    const [first, wide] = [...axis.el.querySelectorAll<HTMLElement>(".rw-tick")];
    // centred (translateX(-50%)) on its column, held half the label's width from either end
    expect(first.style.getPropertyValue("--rw-at")).toBe("0.0200%");
    expect(first.style.getPropertyValue("--rw-half")).toBe(`${(CHAR_PX / 2).toFixed(1)}px`);
    expect(wide.style.getPropertyValue("--rw-half")).toBe(`${(2 * CHAR_PX).toFixed(1)}px`);
    expect(first.style.left).toBe(""); // the clamp is the stylesheet's, for every x axis
    expect(X_TICK_LEFT).toBe("left: clamp(var(--rw-half), var(--rw-at), calc(100% - var(--rw-half)));");
    for (const strip of [".rw-explorer .rw-step-axis .rw-tick", ".rw-explorer .rw-bars-axis .rw-tick"]) {
      const rule = EXPLORER_CSS.slice(EXPLORER_CSS.indexOf(strip)).split("}")[0];
      expect(rule).toContain(X_TICK_LEFT);
    }
  });
});

describe("token headers", () => {
  it("lie flat when every token fits its column, else go up the column, thinned a line apart", () => {
    expect(headerLayout(0, 80, 5)).toMatchObject({ vertical: false, stride: 1, height: 16 }); // not measured yet
    expect(headerLayout(950, 12, 7).vertical).toBe(false);
    expect(headerLayout(600, 80, 1)).toEqual({ vertical: false, stride: 1, height: 16, flatChars: 1 }); // one character in 7.5 px
    expect(headerLayout(500, 80, 1)).toEqual({ vertical: false, stride: 2, height: 16, flatChars: 1 }); // 6.25 px: every other one
    // a long token among short ones is cut to its column's width instead of spreading them all out
    expect(typicalLength([2, 2, 3, 3, 3, 3, 3, 3, 3, 32])).toBe(3);
    expect(headerLayout(770, 24, 3)).toEqual({ vertical: false, stride: 1, height: 16, flatChars: 4 });
    const dense = headerLayout(600, 80, 7);
    expect(dense.vertical).toBe(true);
    expect(dense.stride).toBe(2); // 7.5 px columns: every other one, a line apart
    expect(headerLayout(600, 200, 7).stride).toBe(5);
    expect(headerLayout(600, 30, 40).height).toBeLessThan(80); // a long token is cut, not the whole strip
  });
});

describe("the pointer", () => {
  it("outlines the hovered cell and draws the crosshair through its centre", () => {
    const { cell, row, column } = hoverBoxes(3, 1, 12, 4);
    expect(cell).toEqual({ left: "25.0000%", width: "8.3333%", top: "25.0000%", height: "25.0000%" });
    expect(row.top).toBe("37.5000%");
    expect(column.left).toBe("29.1667%");
  });
});

describe("colour and contrast", () => {
  it("writes text on a colour in black or white, whichever reads at 4.5:1 or more", () => {
    for (let v = -1; v <= 1; v += 0.05) {
      for (const scale of ["diverging", "sequential"] as const) {
        const word = colorWord(v, scale, -1, 1);
        const text = textColorOn(word) === "#000" ? [0, 0, 0] : [255, 255, 255];
        expect(contrast(unpack(word), text)).toBeGreaterThanOrEqual(4.5);
      }
    }
    expect(contrast([0, 0, 0], [255, 255, 255])).toBeCloseTo(21, 5);
  });

  it("offers a colour-blind-safe palette that recolours both scales", () => {
    expect(PALETTE_NAMES).toContain("colour-blind safe");
    const before = [colorWord(1, "diverging", -1, 1), colorWord(1, "sequential", 0, 1), colorWord(0, "diverging", -1, 1)];
    const version = lutVersion();
    setPalette("colour-blind safe");
    try {
      expect(currentPalette()).toBe("colour-blind safe");
      expect(lutVersion()).toBeGreaterThan(version);
      expect(colorWord(1, "diverging", -1, 1)).not.toBe(before[0]);
      expect(colorWord(1, "sequential", 0, 1)).not.toBe(before[1]);
      expect(colorWord(0, "diverging", -1, 1)).toBe(before[2]); // the middle is still the background
    } finally {
      setPalette("default");
    }
    expect([colorWord(1, "diverging", -1, 1), colorWord(1, "sequential", 0, 1)]).toEqual(before.slice(0, 2));
  });
});
