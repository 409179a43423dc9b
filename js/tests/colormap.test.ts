import { describe, expect, it } from "vitest";
import {
  SERIES_COLOURS, contrast, LUT_SIZE, NON_FINITE_WORD, colorWord, cssColor, isDark, lutFor, lutIndex, pack, parseColor, setBackground,
  textColorOn, unpack,
} from "../src/colormap";

/** Perceived lightness of a packed colour, 0..255. */
const lightness = (word: number) => {
  const [r, g, b] = unpack(word);
  return 0.299 * r + 0.587 * g + 0.114 * b;
};

describe("the diverging map on the page background", () => {
  it("reads the theme's background colour as CSS writes it", () => {
    expect(parseColor("#111")).toEqual([17, 17, 17]);
    expect(parseColor(" #1A2b3c ")).toEqual([26, 43, 60]);
    expect(parseColor("rgb(33, 33, 33)")).toEqual([33, 33, 33]);
    expect(parseColor("white")).toEqual([255, 255, 255]);
    expect(parseColor("var(--x)")).toBeNull();
    expect(isDark([17, 17, 17])).toBe(true);
    expect(isDark([255, 255, 255])).toBe(false);
  });

  it("has the background as its midpoint under a dark theme, magnitudes lighter outwards", () => {
    try {
      setBackground("#111111");
      expect(unpack(colorWord(0, "diverging", -2, 2))).toEqual([0x11, 0x11, 0x11, 255]);
      expect(lightness(colorWord(2, "diverging", -2, 2))).toBeGreaterThan(lightness(colorWord(0.5, "diverging", -2, 2)));
      expect(lightness(colorWord(-2, "diverging", -2, 2))).toBeGreaterThan(lightness(colorWord(-0.5, "diverging", -2, 2)));
      const [rn, , bn] = unpack(colorWord(-1, "diverging", -2, 2));
      const [rp, , bp] = unpack(colorWord(1, "diverging", -2, 2));
      expect(bn).toBeGreaterThan(rn); // still blue below 0, red above
      expect(rp).toBeGreaterThan(bp);
      expect(lutFor("sequential")[0]).toBe(pack(0x44, 0x01, 0x54)); // sigmoid gates keep viridis
    } finally {
      setBackground("#ffffff");
    }
    expect(unpack(colorWord(0, "diverging", -2, 2))).toEqual([255, 255, 255, 255]);
    expect(lightness(colorWord(2, "diverging", -2, 2))).toBeLessThan(lightness(colorWord(0.5, "diverging", -2, 2)));
  });
});

describe("colour lookup tables", () => {
  it("packs RGBA for a little-endian Uint32 view over ImageData bytes", () => {
    const word = pack(1, 2, 3, 4);
    expect(Array.from(new Uint8Array(Uint32Array.of(word).buffer))).toEqual([1, 2, 3, 4]);
    expect(unpack(word)).toEqual([1, 2, 3, 4]);
  });

  it("runs from the first anchor colour to the last", () => {
    expect(lutFor("diverging").length).toBe(LUT_SIZE);
    expect(unpack(lutFor("diverging")[0])).toEqual([0x05, 0x30, 0x61, 255]);
    expect(unpack(lutFor("diverging")[LUT_SIZE - 1])).toEqual([0x67, 0x00, 0x1f, 255]);
    expect(unpack(lutFor("sequential")[0])).toEqual([0x44, 0x01, 0x54, 255]);
    expect(unpack(lutFor("sequential")[LUT_SIZE - 1])).toEqual([0xfd, 0xe7, 0x25, 255]);
  });

  it("maps 0 on a symmetric diverging scale to the exact neutral centre", () => {
    expect(lutIndex(0, -3, 3)).toBe((LUT_SIZE - 1) / 2);
    expect(unpack(colorWord(0, "diverging", -3, 3))).toEqual([255, 255, 255, 255]); // the default page
    // negative is blue-ish, positive red-ish
    const [rn, , bn] = unpack(colorWord(-1.5, "diverging", -3, 3));
    const [rp, , bp] = unpack(colorWord(1.5, "diverging", -3, 3));
    expect(bn).toBeGreaterThan(rn);
    expect(rp).toBeGreaterThan(bp);
  });

  it("clamps values outside the scale to its ends", () => {
    expect(colorWord(5, "sequential", 0, 1)).toBe(lutFor("sequential")[LUT_SIZE - 1]);
    expect(colorWord(-5, "sequential", 0, 1)).toBe(lutFor("sequential")[0]);
    expect(lutIndex(1e30, -1, 1)).toBe(LUT_SIZE - 1);
  });

  it("gives NaN and ±Inf their own colour, used by neither scale", () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      expect(colorWord(v, "diverging", -1, 1)).toBe(NON_FINITE_WORD);
      expect(colorWord(v, "sequential", 0, 1)).toBe(NON_FINITE_WORD);
    }
    expect(lutFor("diverging")).not.toContain(NON_FINITE_WORD);
    expect(lutFor("sequential")).not.toContain(NON_FINITE_WORD);
  });

  it("puts every value in the middle when the scale has no span", () => {
    expect(lutIndex(7, 2, 2)).toBe((LUT_SIZE - 1) / 2);
  });

  it("gives CSS colours and a readable text colour", () => {
    expect(cssColor(0, "diverging", -1, 1)).toBe("rgb(255, 255, 255)");
    expect(textColorOn(pack(255, 255, 255))).toBe("#000");
    expect(textColorOn(pack(0, 0, 0))).toBe("#fff");
  });
});

describe("series colours", () => {
  it("keep 3:1 against JupyterLab Light's and Dark's page, in one fixed order of hues", () => {
    const rgb = (hex: string) => parseColor(hex)!;
    for (const [theme, page] of [["light", "#ffffff"], ["dark", "#111111"]] as const) {
      expect(SERIES_COLOURS[theme]).toHaveLength(8);
      for (const c of SERIES_COLOURS[theme]) expect(contrast(rgb(c), rgb(page))).toBeGreaterThanOrEqual(3);
    }
  });
});
