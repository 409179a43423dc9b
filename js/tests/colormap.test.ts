import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import {
  SERIES_COLOURS, contrast, LUT_SIZE, NON_FINITE_WORD, PALETTE_NAMES, colorWord, cssColor, fromOklab, isDark, lutFor, lutIndex, oklab,
  pack, parseColor, setBackground, setPalette, textColorOn, unpack,
} from "../src/colormap";

/** The still image's table (rnnwidgets/widgets/still.py), one [r, g, b] per entry. */
const STILL_LUT: number[][] = JSON.parse(
  readFileSync(new URL("./fixtures/diverging-light.json", import.meta.url), "utf-8"),
).lut;

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

describe("perceptually uniform diverging maps", () => {
  it("converts to OKLab as Ottosson's published values, and back", () => {
    const cases: [number[], number[]][] = [
      [[255, 255, 255], [1, 0, 0]], [[255, 0, 0], [0.62796, 0.22486, 0.12585]],
      [[0, 255, 0], [0.86644, -0.23389, 0.1795]], [[0, 0, 255], [0.45201, -0.03246, -0.31153]],
    ];
    for (const [rgb, lab] of cases) {
      for (const [k, v] of oklab(rgb).entries()) expect(v).toBeCloseTo(lab[k], 3);
      expect(fromOklab(oklab(rgb))).toEqual(rgb);
    }
  });

  // Every palette on JupyterLab Light's and Dark's page (and a grey one), sampled at 33 points.
  for (const name of PALETTE_NAMES) {
    for (const page of ["#ffffff", "#111111", "#f0f0f0", "#2b2b2b"]) {
      it(`${name} on ${page}: L linear out from the page on each half, mirror halves, equal steps`, () => {
        try {
          setPalette(name);
          setBackground(page);
          const lut = lutFor("diverging");
          const mid = (LUT_SIZE - 1) / 2;
          expect(unpack(lut[mid]).slice(0, 3)).toEqual(parseColor(page));
          const lab = Array.from({ length: 33 }, (_, k) => oklab(unpack(lut[k * 8])));
          const L = lab.map((c) => c[0]);
          const chroma = lab.map(([, a, b]) => Math.hypot(a, b));
          const dark = isDark(parseColor(page)!);
          for (const half of [L.slice(0, 17).reverse(), L.slice(16)]) {
            for (let k = 1; k < half.length; k++) {
              // away from the page's lightness at every step: lighter on a dark page, darker on a light one
              expect(dark ? half[k] - half[k - 1] : half[k - 1] - half[k]).toBeGreaterThan(0.01);
              expect(half[k]).toBeCloseTo(half[0] + ((half[16] - half[0]) * k) / 16, 2);
            }
          }
          for (let k = 0; k <= 16; k++) {
            expect(Math.abs(L[16 - k] - L[16 + k])).toBeLessThan(0.005);
            expect(Math.abs(chroma[16 - k] - chroma[16 + k])).toBeLessThan(0.005);
          }
          const steps = lab.slice(1).map((c, k) => Math.hypot(...c.map((v, j) => v - lab[k][j])));
          const mean = steps.reduce((a, b) => a + b) / steps.length;
          for (const d of steps) expect(Math.abs(d / mean - 1)).toBeLessThan(0.08); // 8-bit rounding
          expect(Math.abs(L[0] - L[16])).toBeGreaterThan(0.35); // the ends stand well off the page
        } finally {
          setPalette("default");
          setBackground("#ffffff");
        }
      });
    }
  }

  it("tells the two sides apart by hue: blue - red, purple - orange", () => {
    try {
      const hue = (w: number) => {
        const [, a, b] = oklab(unpack(w));
        return ((Math.atan2(b, a) * 180) / Math.PI + 360) % 360;
      };
      for (const page of ["#ffffff", "#111111"]) {
        setBackground(page);
        setPalette("default");
        const lut = lutFor("diverging");
        expect(hue(lut[0])).toBeGreaterThan(230);
        expect(hue(lut[0])).toBeLessThan(270);
        expect(hue(lut[LUT_SIZE - 1])).toBeLessThan(40);
        setPalette("colour-blind safe");
        const cb = lutFor("diverging");
        expect(hue(cb[0])).toBeGreaterThan(280);
        expect(hue(cb[0])).toBeLessThan(320);
        expect(hue(cb[LUT_SIZE - 1])).toBeGreaterThan(45);
        expect(hue(cb[LUT_SIZE - 1])).toBeLessThan(75);
      }
    } finally {
      setPalette("default");
      setBackground("#ffffff");
    }
  });
});

describe("colour lookup tables", () => {
  it("packs RGBA for a little-endian Uint32 view over ImageData bytes", () => {
    const word = pack(1, 2, 3, 4);
    expect(Array.from(new Uint8Array(Uint32Array.of(word).buffer))).toEqual([1, 2, 3, 4]);
    expect(unpack(word)).toEqual([1, 2, 3, 4]);
  });

  it("builds on a white page the still image's table, entry for entry", () => {
    expect(lutFor("diverging").length).toBe(LUT_SIZE);
    expect(Array.from(lutFor("diverging"), (w) => unpack(w).slice(0, 3))).toEqual(STILL_LUT);
    expect(unpack(lutFor("diverging")[0])).toEqual([20, 75, 146, 255]);
    expect(unpack(lutFor("diverging")[LUT_SIZE - 1])).toEqual([134, 39, 38, 255]);
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
