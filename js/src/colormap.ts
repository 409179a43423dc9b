// Colour lookup tables: a value -> one packed RGBA word, so a heatmap is painted by writing
// words into an ImageData buffer (no per-cell canvas call).
//
// Words are packed for a little-endian Uint32Array view over ImageData.data (every browser we
// target): byte order R, G, B, A in memory = A<<24 | B<<16 | G<<8 | R as a number.
import type { Scale } from "./state";

/** Entries per table: odd, so a diverging scale's centre (0) has its own exact entry. */
export const LUT_SIZE = 257;

// Diverging around 0: blue (negative) - near white - red (positive), ColorBrewer RdBu reversed.
const DIVERGING = [
  "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
  "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
];
// Sequential 0..1: viridis.
const SEQUENTIAL = [
  "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
  "#35b779", "#6ece58", "#b5de2b", "#fde725",
];

/** NaN and ±Inf: a colour neither scale uses, so a blown-up value is never read as a big one. */
export const NON_FINITE = "#ff00ff";

export function pack(r: number, g: number, b: number, a = 255): number {
  return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

export function unpack(word: number): [number, number, number, number] {
  return [word & 255, (word >>> 8) & 255, (word >>> 16) & 255, word >>> 24];
}

function parseHex(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function buildLut(anchors: string[]): Uint32Array {
  const rgb = anchors.map(parseHex);
  const lut = new Uint32Array(LUT_SIZE);
  for (let i = 0; i < LUT_SIZE; i++) {
    const x = (i / (LUT_SIZE - 1)) * (rgb.length - 1);
    const k = Math.min(Math.floor(x), rgb.length - 2);
    const f = x - k;
    const [r0, g0, b0] = rgb[k];
    const [r1, g1, b1] = rgb[k + 1];
    lut[i] = pack(
      Math.round(r0 + (r1 - r0) * f),
      Math.round(g0 + (g1 - g0) * f),
      Math.round(b0 + (b1 - b0) * f),
    );
  }
  return lut;
}

const LUTS: Record<Scale, Uint32Array> = {
  diverging: buildLut(DIVERGING),
  sequential: buildLut(SEQUENTIAL),
};

export const NON_FINITE_WORD = pack(...parseHex(NON_FINITE));

export function lutFor(scale: Scale): Uint32Array {
  return LUTS[scale];
}

/** The table index of a finite value, clamped to [vmin, vmax]; -1 for NaN/±Inf. */
export function lutIndex(v: number, vmin: number, vmax: number): number {
  if (!Number.isFinite(v)) return -1;
  const span = vmax - vmin;
  const f = span > 0 ? (v - vmin) / span : 0.5;
  return Math.round(Math.min(1, Math.max(0, f)) * (LUT_SIZE - 1));
}

/** The packed colour of one value. */
export function colorWord(v: number, scale: Scale, vmin: number, vmax: number): number {
  const i = lutIndex(v, vmin, vmax);
  return i < 0 ? NON_FINITE_WORD : LUTS[scale][i];
}

/** The colour of one value as a CSS string (for DOM panels: token backgrounds, bars). */
export function cssColor(v: number, scale: Scale, vmin: number, vmax: number): string {
  const [r, g, b] = unpack(colorWord(v, scale, vmin, vmax));
  return `rgb(${r}, ${g}, ${b})`;
}

/** Text colour that stays readable on a given background word (black or white). */
export function textColorOn(word: number): string {
  const [r, g, b] = unpack(word);
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
}
