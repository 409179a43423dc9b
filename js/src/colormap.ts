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
// The colour-blind-safe palette swaps in ColorBrewer's PuOr (purple - orange, told apart under
// every common colour-vision deficiency) and cividis (viridis made for deuteranomaly).
// (The default's anchors are the still image's too: rnnwidgets/widgets/still.py, checked by tests/test_export.py.)
const NEGATIVE = ["#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"];
const POSITIVE = ["#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"];
// Sequential 0..1: viridis.
const SEQUENTIAL = [
  "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
  "#35b779", "#6ece58", "#b5de2b", "#fde725",
];
const PALETTES = {
  default: { negative: NEGATIVE, positive: POSITIVE, sequential: SEQUENTIAL },
  "colour-blind safe": {
    negative: ["#d8daeb", "#b2abd2", "#8073ac", "#542788", "#2d004b"],
    positive: ["#fee0b6", "#fdb863", "#e08214", "#b35806", "#7f3b08"],
    sequential: [ // cividis
      "#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8779",
      "#a69d75", "#c4b56c", "#e4cf5b", "#fee838",
    ],
  },
};
export type Palette = keyof typeof PALETTES;

// Series colours (the lines and bars of data: compared units, models, layers, gate paths): Okabe &
// Ito's colour-blind-safe hues in a fixed order, shaded per theme so that every one keeps at least
// 3:1 against the page (JupyterLab Light's white, Dark's #111): the light theme's darker, the dark
// theme's lighter. Yellow is left out (1.3:1 on white). style.ts turns them into --rw-series-k.
export const SERIES_COLOURS = {
  light: ["#0072b2", "#d55e00", "#008a64", "#b8609a", "#a66a00", "#2f86c0", "#666666", "#7a5195"],
  dark: ["#56b4e9", "#f07f3c", "#19b489", "#d98cb9", "#e69f00", "#9ecae1", "#bbbbbb", "#b69ce0"],
};
export const PALETTE_NAMES = Object.keys(PALETTES) as Palette[];
/** The background assumed where the page names none (no JupyterLab theme): white. */
export const DEFAULT_BACKGROUND = "#ffffff";

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
export function divergingAnchors(background: RGB, palette: Palette = "default"): RGB[] {
  const dark = isDark(background);
  const { negative, positive } = PALETTES[palette];
  const out = (side: string[]) => (dark ? [...side].reverse() : side).map(parseHex);
  return [...out(negative).reverse(), background, ...out(positive)];
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
  sequential: buildLut(PALETTES.default.sequential.map(parseHex)),
};
let background = parseHex(DEFAULT_BACKGROUND).join(","); // the centre the map was built on
let palette: Palette = "default";
let version = 0; // counts rebuilds of the tables: a view painted at an older one repaints

/** Which tables colours come from now: changes whenever the background or the palette does. */
export function lutVersion(): number {
  return version;
}

export function currentPalette(): Palette {
  return palette;
}

function rebuild(rgb: RGB): void {
  LUTS.diverging = buildLut(divergingAnchors(rgb, palette));
  LUTS.sequential = buildLut(PALETTES[palette].sequential.map(parseHex));
  version++;
}

/** Colour everything drawn from now on with `name`'s maps (a page-wide choice, like the theme). */
export function setPalette(name: Palette): void {
  if (name === palette || !(name in PALETTES)) return;
  palette = name;
  rebuild(background.split(",").map(Number) as RGB);
}

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
  rebuild(rgb);
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

/** WCAG's relative luminance of an sRGB colour. */
export function luminance(rgb: ArrayLike<number>): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
}

/** WCAG's contrast ratio of two colours (1 to 21). */
export function contrast(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [la, lb] = [luminance(a), luminance(b)];
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** Text colour that stays readable on a given background word: black or white, whichever has
 * the higher contrast (at least 4.58:1 on any colour). */
export function textColorOn(word: number): string {
  const rgb = unpack(word);
  return contrast(rgb, [0, 0, 0]) >= contrast(rgb, [255, 255, 255]) ? "#000" : "#fff";
}
