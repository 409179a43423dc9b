// Colour lookup tables: a value -> one packed RGBA word, so a heatmap is painted by writing
// words into an ImageData buffer (no per-cell canvas call).
//
// Words are packed for a little-endian Uint32Array view over ImageData.data (every browser we
// target): byte order R, G, B, A in memory = A<<24 | B<<16 | G<<8 | R as a number.
import type { Scale } from "./state";

/** Entries per table: odd, so a diverging scale's centre (0) has its own exact entry. */
export const LUT_SIZE = 257;

// Diverging around 0: blue (negative) - the page background - red (positive), ColorBrewer RdBu
// reversed with its white centre replaced by the background, so 0 reads as "nothing" in any theme.
// Each side is listed from 0 outwards. On a light page a value darkens with its magnitude; on a
// dark page the sides run the other way (darkest next to 0, lightest at the ends), so a large
// value stands out from the dark background instead of fading into it.
const NEGATIVE = ["#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"];
const POSITIVE = ["#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"];
/** The background assumed where the page names none (no JupyterLab theme): white. */
export const DEFAULT_BACKGROUND = "#ffffff";
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

type RGB = [number, number, number];

function parseHex(hex: string): RGB {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A CSS colour as a theme variable writes it (#rgb, #rrggbb, rgb()/rgba(), white, black), or
 * null for anything else. */
export function parseColor(css: string): RGB | null {
  const c = css.trim().toLowerCase();
  if (c === "white") return [255, 255, 255];
  if (c === "black") return [0, 0, 0];
  if (/^#[0-9a-f]{3}$/.test(c)) return parseHex(`#${c[1]}${c[1]}${c[2]}${c[2]}${c[3]}${c[3]}`);
  if (/^#[0-9a-f]{6}([0-9a-f]{2})?$/.test(c)) return parseHex(c.slice(0, 7));
  const m = /^rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)/.exec(c);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])].map((v) => Math.min(255, v)) as RGB : null;
}

/** Whether a background is dark (relative luminance under half, roughly sRGB's mid grey). */
export function isDark([r, g, b]: RGB): boolean {
  return 0.299 * r + 0.587 * g + 0.114 * b < 128;
}

/** The diverging map's anchors, negative end first, around a background colour. */
export function divergingAnchors(background: RGB): RGB[] {
  const dark = isDark(background);
  const out = (side: string[]) => (dark ? [...side].reverse() : side).map(parseHex);
  return [...out(NEGATIVE).reverse(), background, ...out(POSITIVE)];
}

function buildLut(rgb: RGB[]): Uint32Array {
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
  diverging: buildLut(divergingAnchors(parseHex(DEFAULT_BACKGROUND))),
  sequential: buildLut(SEQUENTIAL.map(parseHex)),
};
let background = parseHex(DEFAULT_BACKGROUND).join(","); // the centre the map was built on

export const NON_FINITE_WORD = pack(...parseHex(NON_FINITE));

export function lutFor(scale: Scale): Uint32Array {
  return LUTS[scale];
}

/** The page background behind `el`: JupyterLab's --jp-layout-color0, white elsewhere. */
export function pageBackground(el: Element): string {
  const css = getComputedStyle(el).getPropertyValue("--jp-layout-color0").trim();
  return css && parseColor(css) ? css : DEFAULT_BACKGROUND;
}

/** Centre the diverging map on `css` (a page background) for everything drawn from now on. */
export function setBackground(css: string): void {
  const rgb = parseColor(css) ?? parseHex(DEFAULT_BACKGROUND);
  const key = rgb.join(",");
  if (key === background) return;
  background = key;
  LUTS.diverging = buildLut(divergingAnchors(rgb));
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
