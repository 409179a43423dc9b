// Colour lookup tables: a value -> one packed RGBA word, so a heatmap is painted by writing
// words into an ImageData buffer (no per-cell canvas call).
//
// Words are packed for a little-endian Uint32Array view over ImageData.data (every browser we
// target): byte order R, G, B, A in memory = A<<24 | B<<16 | G<<8 | R as a number.
import type { Scale } from "./state";

/** Entries per table: odd, so a diverging scale's centre (0) has its own exact entry. */
export const LUT_SIZE = 257;

// Diverging around 0: blue (negative) - the page background - red (positive), perceptually
// uniform: each half is a straight line in OKLab (Ottosson's perceptual colour space) from the
// background to its end colour, so lightness changes linearly from the midpoint to each end and
// equal steps of value are equal perceptual steps (constant OKLab distance), with the two halves
// mirror images in lightness and chroma. The midpoint is the page's background, so 0 reads as
// "nothing" in any theme. On a light page a value darkens with its magnitude; on a dark page it
// lightens instead (ends at L 0.80), so a large value stands out from the dark background.
// Ends are given in OKLCh (lightness 0..1, chroma, hue in degrees) and are inside sRGB's gamut
// along the whole line for JupyterLab Light's white and Dark's #111.
// The colour-blind-safe palette swaps in purple - orange (ColorBrewer PuOr's hues, told apart under
// every common colour-vision deficiency) and cividis (viridis made for deuteranomaly).
// (The default's light ends are the still image's too: rnnwidgets/widgets/still.py builds the same
// table; js/tests/fixtures/diverging-light.json, written from it, is checked by both test suites.)
export type LCh = [number, number, number];
interface DivergingEnds {
  light: { negative: LCh; positive: LCh };
  dark: { negative: LCh; positive: LCh };
}
const DIVERGING: DivergingEnds = {
  light: { negative: [0.42, 0.13, 257], positive: [0.42, 0.13, 25] },
  dark: { negative: [0.8, 0.1, 250], positive: [0.8, 0.1, 25] },
};
const DIVERGING_CB: DivergingEnds = {
  light: { negative: [0.45, 0.105, 303], positive: [0.45, 0.105, 55] },
  dark: { negative: [0.8, 0.11, 303], positive: [0.8, 0.11, 60] },
};
// Sequential 0..1: viridis.
const SEQUENTIAL = [
  "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
  "#35b779", "#6ece58", "#b5de2b", "#fde725",
];
const PALETTES = {
  default: { diverging: DIVERGING, sequential: SEQUENTIAL },
  "colour-blind safe": {
    diverging: DIVERGING_CB,
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

type Lab = [number, number, number];

const srgbToLinear = (c: number) => {
  const s = c / 255;
  return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
};
const linearToSrgb = (c: number) => 255 * (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);

/** OKLab (L 0..1, a, b) of an sRGB colour (Ottosson 2020). */
export function oklab(rgb: ArrayLike<number>): Lab {
  const [r, g, b] = [rgb[0], rgb[1], rgb[2]];
  const [lr, lg, lb] = [srgbToLinear(r), srgbToLinear(g), srgbToLinear(b)];
  const l = Math.cbrt(0.4122214708 * lr + 0.5363325363 * lg + 0.0514459929 * lb);
  const m = Math.cbrt(0.2119034982 * lr + 0.6806995451 * lg + 0.1073969566 * lb);
  const s = Math.cbrt(0.0883024619 * lr + 0.2817188376 * lg + 0.6299787005 * lb);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

/** The sRGB colour (0..255 each, rounded and clamped to the gamut) of an OKLab colour. */
export function fromOklab([L, a, b]: Lab): RGB {
  const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (L - 0.0894841775 * a - 1.291485548 * b) ** 3;
  const rgb = [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
  return rgb.map((c) => Math.min(255, Math.max(0, Math.round(linearToSrgb(c))))) as RGB;
}

const fromLch = ([L, C, h]: LCh): Lab => [L, C * Math.cos((h * Math.PI) / 180), C * Math.sin((h * Math.PI) / 180)];

/** The diverging map's end colours in OKLab, negative end first, for a page background. */
export function divergingEnds(background: RGB, palette: Palette = "default"): [Lab, Lab] {
  const ends = PALETTES[palette].diverging[isDark(background) ? "dark" : "light"];
  return [fromLch(ends.negative), fromLch(ends.positive)];
}

/** The diverging table around a background: entry LUT_SIZE/2 is the background itself, and each
 * half a straight line in OKLab out to its end, in equal steps. */
function buildDiverging(background: RGB, palette: Palette): Uint32Array {
  const [negative, positive] = divergingEnds(background, palette);
  const centre = oklab(background);
  const half = (LUT_SIZE - 1) / 2;
  const lut = new Uint32Array(LUT_SIZE);
  for (let i = 0; i < LUT_SIZE; i++) {
    const end = i < half ? negative : positive;
    const f = Math.abs(i - half) / half;
    const lab = centre.map((c, k) => c + (end[k] - c) * f) as Lab;
    lut[i] = pack(...(i === half ? background : fromOklab(lab)));
  }
  return lut;
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
  diverging: buildDiverging(parseHex(DEFAULT_BACKGROUND), "default"),
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
  LUTS.diverging = buildDiverging(rgb, palette);
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
