// The token strip: the heatmap's column headers, each token over its column (flat when it fits,
// written up the column and thinned when dense, the whole token at the cursor above), the current
// step highlighted, each token's background coloured by the selected unit's value at that step;
// a click jumps there. Numeric inputs with
// no tokens get a sparkline of the input features instead, over a band coloured the same way.
// Long sequences show a window of steps around t, so 100,000 steps cost what a few hundred do.
import { CHAR_PX, LINE_PX, niceStride } from "./axes";
import { colorWord, cssColor, lutVersion, NON_FINITE, textColorOn } from "./colormap";
import { selectedQuantity, stepNumber, valueAt } from "./state";
import type { Actions, ExplorerState, Panel, Quantity } from "./state";
import { columnRange, drawSeries, heldRange, stepAtX, xOfStep } from "./units";
import { createCursorLine } from "./cursor_line";
import { createStepLine, element, setText } from "./dom";

/** Token elements kept in the DOM at once; the window moves by half of it. */
export const WINDOW = 256;

/** First step of the window shown for step t: t keeps at least a quarter window of context. */
export function windowStart(t: number, steps: number, size = WINDOW): number {
  if (steps <= size) return 0;
  const stride = size / 2;
  const start = Math.floor(t / stride) * stride - stride / 2;
  return Math.max(0, Math.min(start, steps - size));
}

const VISIBLE: Record<string, string> = { " ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍", "\u00a0": "⍽" };

/** A token as it is shown: whitespace and control characters made visible, "" as "∅". */
export function visibleToken(token: string): string {
  if (token === "") return "∅";
  let out = "";
  for (const ch of token) {
    const code = ch.codePointAt(0) ?? 0; // (a character of a string always has one)
    if (ch in VISIBLE) out += VISIBLE[ch];
    else if (code < 0x20) out += String.fromCodePoint(0x2400 + code); // Control Pictures ␀..␟
    else if (code === 0x7f) out += "␡";
    else out += ch;
  }
  return out;
}

/** All the steps, as a title says "of" them: their count, or a window of steps' first–last as the
 * model numbers them (rw.trace(steps=...)). */
function stepsOf(state: ExplorerState): string {
  const first = state.firstStep ?? 0;
  return first ? `${first}–${first + state.steps - 1}` : String(state.steps);
}

/** Characters of one token shown in the strip: a pasted paragraph must not take the whole row. */
export const MAX_TOKEN_CHARS = 32;

/** The label of step t: its token (cut to MAX_TOKEN_CHARS), or with no tokens the step's number
 * as the model numbers it (`first`: a window of steps' first, rw.trace(steps=...)). */
export function stepLabel(tokens: string[] | null, t: number, first = 0): string {
  if (tokens === null) return String(first + t);
  if (t >= tokens.length) return "·";
  const chars = Array.from(visibleToken(tokens[t]));
  return chars.length > MAX_TOKEN_CHARS ? `${chars.slice(0, MAX_TOKEN_CHARS - 1).join("")}…` : chars.join("");
}

const SPARK_FEATURES = 4; // more lines than this are unreadable at sparkline size
const SPARK_COLORS = ["#1f77b4", "#e66100", "#2ca02c", "#d62728"];
const SPARK_W = 640, SPARK_H = 40, BAND_H = 8;

/**
 * The colour band under a sparkline over the absolute steps [from, to): per pixel column, the
 * colour of the selected unit's value at the step in that column's middle, as packed RGBA
 * words; 0 (transparent) where that step is not held.
 */
export function paintBand(words: Uint32Array, width: number, q: Quantity, unit: number, from: number, to: number) {
  const n = to - from;
  for (let x = 0; x < width; x++) {
    const v = n > 0 ? valueAt(q, from + Math.floor(((x + 0.5) * n) / width), unit) : NaN;
    words[x] = Number.isNaN(v) ? 0 : colorWord(v, q.scale, q.vmin, q.vmax);
  }
}

/** The input steps a sparkline shows: those held, up to the element's length. */
function sparkRange(inputs: Quantity, length: number): { from: number; to: number } {
  const { from, to } = heldRange(inputs);
  return { from, to: Math.max(from, Math.min(to, length)) };
}

/** Draws the input features over [from, to), each feature scaled to the strip's height. */
function drawSparkline(canvas: HTMLCanvasElement, inputs: Quantity, from: number, to: number) {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, SPARK_W, SPARK_H);
  for (let f = 0; f < Math.min(SPARK_FEATURES, inputs.units); f++) {
    const { lo, hi } = columnRange(inputs, f, from, to, SPARK_W);
    let mn = Infinity, mx = -Infinity;
    for (let x = 0; x < SPARK_W; x++) {
      if (lo[x] < mn) mn = lo[x];
      if (hi[x] > mx) mx = hi[x];
    }
    const span = mx > mn ? mx - mn : 1;
    ctx.strokeStyle = ctx.fillStyle = SPARK_COLORS[f];
    drawSeries(ctx, inputs, f, from, to, SPARK_W, (v) => SPARK_H - 2 - ((v - mn) / span) * (SPARK_H - 4));
  }
}

/** Characters of a token written up the column when tokens are too dense to lie flat. */
export const VERTICAL_CHARS = 8;

/**
 * How the tokens of steps `count` columns `width` pixels wide are written, `chars` a typical
 * label's length: flat, every `stride`-th so each clears the next, a longer label cut to
 * `flatChars`; or up the column (rotated) when that labels more of them, a line apart. An
 * unmeasured strip (width 0) writes them all flat.
 */
export function headerLayout(width: number, count: number, chars: number): { vertical: boolean; stride: number; height: number; flatChars: number } {
  const column = width / Math.max(1, count);
  if (width === 0) return { vertical: false, stride: 1, height: 16, flatChars: MAX_TOKEN_CHARS };
  const flat = niceStride(column, chars * CHAR_PX + 0.3);
  const upright = niceStride(column, LINE_PX);
  if (flat <= upright) return { vertical: false, stride: flat, height: 16, flatChars: Math.max(1, Math.floor((flat * column - 0.3) / CHAR_PX)) };
  return { vertical: true, stride: upright, height: Math.ceil(Math.min(chars, VERTICAL_CHARS) * CHAR_PX + 8), flatChars: 0 };
}

/** The length most labels stay within (the 90th percentile): one long token is cut to it
 * rather than spreading every label out. */
export function typicalLength(lengths: number[]): number {
  if (!lengths.length) return 1;
  const sorted = [...lengths].sort((a, b) => a - b);
  return Math.max(1, sorted[Math.floor(0.9 * (sorted.length - 1))]);
}

/** A label cut to `max` characters with an ellipsis. */
function cut(label: string, max: number): string {
  const chars = Array.from(label);
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : label;
}

export function createTokens(actions: Actions): Panel {
  const el = element("div", "rw-tokens");
  // (its text changes at every step with numeric inputs: a line laid out on its own, dom.ts)
  const info = createStepLine("div", "rw-tokens-info");
  info.size("auto", "16px");
  info.el.style.display = "none"; // while it has no text
  const full = element("div", "rw-token-full"); // the token at the cursor, whole
  const fullLabel = element("span", "rw-token-full-label", full);
  // The token headers: one element per column of the heatmap below, placed by percentages of the
  // strip, which spans exactly the heatmap's width, so each stays on its column at any width.
  const row = element("div", "rw-token-row");
  const spark = element("div", "rw-tokens-spark");
  spark.style.cssText = "position:relative;width:100%;cursor:pointer";
  const sparkCanvas = document.createElement("canvas");
  sparkCanvas.width = SPARK_W;
  sparkCanvas.height = SPARK_H;
  sparkCanvas.style.cssText = `display:block;width:100%;height:${SPARK_H}px`;
  // The cursor, drawn on a canvas over the strip (inside it at any step): a scrub moves no
  // element, so it costs no layout, paint or layerization of the page (cursor_line.ts).
  const sparkCursor = createCursorLine("rw-tokens-cursor");
  const band = element("canvas", "rw-tokens-band");
  band.width = SPARK_W;
  band.height = 1; // one row of colours, stretched to BAND_H by CSS
  band.style.cssText = `display:block;width:100%;height:${BAND_H}px;image-rendering:pixelated`;
  spark.append(sparkCanvas, band, sparkCursor.el);
  el.append(full, info.el, row, spark);

  const pool: HTMLSpanElement[] = []; // token elements, reused as the window moves
  const texts: HTMLSpanElement[] = []; // each one's label
  let current = -1; // the pool index of the highlighted token, or -1
  // what the token colours were painted from; any change repaints the window
  let painted: { start: number; data: Float32Array; unit: number; length: number; tokens: string[] | null; steps: number; lut: number; width: number } | null = null;
  let layout = headerLayout(0, 1, 1);
  let sparkFrom: { inputs: Quantity; from: number; to: number } | null = null;
  let bandFrom: { data: Float32Array; unit: number; from: number; to: number; lut: number } | null = null;
  let lastState: ExplorerState | null = null;
  let width = 0; // the strip's width in CSS pixels, kept by the resize observer (0: not attached)

  row.addEventListener("click", (ev) => {
    const target = (ev.target as HTMLElement).closest(".rw-token") as HTMLElement | null;
    if (target && target.dataset.t !== undefined) actions.setT(Number(target.dataset.t));
  });
  spark.addEventListener("click", (ev) => {
    if (!lastState?.inputs) return;
    const { from, to } = sparkRange(lastState.inputs, lastState.length);
    const rect = spark.getBoundingClientRect();
    const x = rect.width > 0 ? ((ev.clientX - rect.left) / rect.width) * SPARK_W : 0;
    if (to > from) actions.setT(from + stepAtX(x, to - from, SPARK_W));
  });

  function ensurePool(count: number) {
    while (pool.length < count) {
      const span = element("span", "rw-token");
      texts.push(element("span", "rw-token-text", span));
      row.append(span);
      pool.push(span);
    }
    for (let i = 0; i < pool.length; i++) pool[i].style.display = i < count ? "" : "none";
  }

  /** Step t's label as the headers write it now ("" for a column left unlabelled when thinned). */
  function labelOf(state: ExplorerState, t: number, isCurrent: boolean): string {
    if (t % layout.stride !== 0 && !isCurrent) return "";
    const label = stepLabel(state.tokens, t, state.firstStep ?? 0);
    return cut(label, layout.vertical ? VERTICAL_CHARS : layout.flatChars);
  }

  // Which headers of the window are drawn: all while a step has half a device pixel or more (or
  // the strip is unmeasured); with more steps a pixel (100,000 steps: the whole window of 256
  // falls on one or two pixels) only one header per pixel, as each shown one costs every frame
  // its share of style, layout and paint, and the browser would draw the others no wider than 0.
  // The others leave the layout (display: none): kept in it but hidden, the window's 256 headers
  // cost a 100,000-step scrub more layout (3.4 against 2.3 ms a step, benchmarks/browser.py) than
  // the header at the cursor coming back into it.
  let covers: Uint8Array = new Uint8Array(0);

  /** Writes header i's label: shown while it has a label or a pixel, turned upright only with a
   * label (a transformed element is a paint layer of its own). */
  function setLabel(i: number, label: string) {
    setText(texts[i], label);
    pool[i].classList.toggle("rw-token-vertical", layout.vertical && label !== "");
    pool[i].style.display = label !== "" || covers[i] ? "" : "none";
  }

  /** Which of `count` headers from step `start` get a device pixel of the strip's width. */
  function coverage(start: number, count: number, steps: number): Uint8Array {
    const out = new Uint8Array(count).fill(1);
    const px = (width * (window.devicePixelRatio || 1)) / Math.max(1, steps);
    if (width === 0 || px >= 0.5) return out;
    for (let i = 0; i < count; i++) out[i] = Math.round((start + i + 1) * px) > Math.round((start + i) * px) ? 1 : 0;
    return out;
  }

  function paintWindow(state: ExplorerState, q: Quantity, start: number, count: number) {
    const { from, to } = heldRange(q);
    const lengths = Array.from({ length: count }, (_, i) => Array.from(stepLabel(state.tokens, start + i, state.firstStep ?? 0)).length);
    layout = headerLayout(width, state.steps, typicalLength(lengths));
    row.style.height = `${layout.height}px`;
    const share = 100 / Math.max(1, state.steps);
    covers = coverage(start, count, state.steps);
    for (let i = 0; i < count; i++) {
      const t = start + i, span = pool[i];
      span.dataset.t = String(t);
      span.style.left = `${(t * share).toFixed(4)}%`;
      span.style.width = `${share.toFixed(4)}%`;
      setLabel(i, labelOf(state, t, t === state.t));
      const v = valueAt(q, t, state.unit);
      const pad = t >= state.length, held = t >= from && t < to;
      span.classList.toggle("rw-token-pad", pad);
      if (pad) {
        span.style.background = "var(--rw-faint, #e0e0e0)";
        span.style.color = "var(--rw-fg, #222)";
      } else if (!held) { // a long sequence's step outside the window the browser holds
        span.style.background = "";
        span.style.color = "";
      } else {
        span.style.background = Number.isFinite(v) ? cssColor(v, q.scale, q.vmin, q.vmax) : NON_FINITE;
        span.style.color = textColorOn(colorWord(v, q.scale, q.vmin, q.vmax));
      }
      // a label wider than its column carries its column's colour with it
      texts[i].style.background = layout.stride > 1 ? "inherit" : "";
      const value = held ? `${q.name}[${state.unit}] = ${Number.isFinite(v) ? v.toPrecision(4) : String(v)}` : "not loaded";
      span.title = `step ${stepNumber(state, t)}${state.tokens ? ` · ${visibleToken(state.tokens[t] ?? "")}` : ""} · ${value}${pad ? " (padding)" : ""}`;
    }
    painted = { start, data: q.data, unit: state.unit, length: state.length, tokens: state.tokens, steps: state.steps, lut: lutVersion(), width };
    current = -1;
    for (const span of pool) span.classList.remove("rw-token-current");
  }

  function highlight(state: ExplorerState, index: number, start: number) {
    if (index === current) return;
    if (current >= 0 && current < pool.length) {
      pool[current].classList.remove("rw-token-current");
      if (layout.stride > 1) setLabel(current, labelOf(state, start + current, false));
    }
    if (index >= 0) {
      pool[index].classList.add("rw-token-current");
      if (layout.stride > 1) setLabel(index, labelOf(state, start + index, true));
    }
    current = index;
  }

  /** The whole token at the cursor, over its column: kept inside the strip by sliding it along
   * (its anchor moves from its left end at step 0 to its right end at the last step). */
  function showFull(state: ExplorerState) {
    const f = (state.t + 0.5) / Math.max(1, state.steps);
    const text = state.t < (state.tokens?.length ?? 0) ? visibleToken(state.tokens?.[state.t] ?? "") : "";
    setText(fullLabel, text);
    // (moved inside the strip's contained box, style.ts: a step lays out that box alone; not moved
    // while it has no text, as with steps but no tokens: a moved element costs the frame a new
    // layerization of the page, cursor_line.ts)
    if (text) {
      fullLabel.style.left = `${(f * 100).toFixed(4)}%`;
      fullLabel.style.transform = `translateX(${(-f * 100).toFixed(4)}%)`;
    }
    full.style.display = "";
    full.style.visibility = text ? "" : "hidden"; // (its line kept: the title beside it)
  }

  /** The line above the strip: hidden while empty, so it takes no room. */
  function setInfo(text: string) {
    const display = text ? "" : "none";
    if (info.el.style.display !== display) info.el.style.display = display;
    info.set(text);
  }

  function updateSpark(state: ExplorerState, inputs: Quantity) {
    const q = selectedQuantity(state);
    const { from, to } = sparkRange(inputs, state.length);
    const whole = from === 0 && to >= Math.min(state.length, state.steps);
    // steps as the model numbers them (a window of steps, rw.trace(steps=...), starts at its first)
    const n = (t: number) => stepNumber(state, t);
    setInfo(`inputs: ${inputs.units} features${whole ? "" : `, steps ${n(from)}–${n(to - 1)} held`}` +
      ` · colour: ${q.name}[${state.unit}] · step ${n(state.t)} of ${stepsOf(state)}`);
    if (!sparkFrom || sparkFrom.inputs !== inputs || sparkFrom.from !== from || sparkFrom.to !== to) {
      drawSparkline(sparkCanvas, inputs, from, to);
      sparkFrom = { inputs, from, to };
    }
    if (!bandFrom || bandFrom.data !== q.data || bandFrom.unit !== state.unit || bandFrom.from !== from ||
        bandFrom.to !== to || bandFrom.lut !== lutVersion()) {
      const ctx = band.getContext("2d");
      if (ctx) {
        const image = ctx.createImageData(SPARK_W, 1);
        paintBand(new Uint32Array(image.data.buffer), SPARK_W, q, state.unit, from, to);
        ctx.putImageData(image, 0, 0);
      }
      bandFrom = { data: q.data, unit: state.unit, from, to, lut: lutVersion() };
    }
    sparkCursor.show(state.t >= from && state.t < to ? Math.floor(xOfStep(state.t - from, to - from, SPARK_W)) / SPARK_W : null);
  }

  function update(state: ExplorerState) {
    lastState = state;
    const inputs = state.tokens === null ? state.inputs : null; // numeric inputs: a sparkline
    spark.style.display = inputs ? "" : "none";
    row.style.display = inputs ? "none" : "block";
    if (inputs) {
      full.style.display = "none";
      return updateSpark(state, inputs);
    }
    const steps = state.steps;
    const start = windowStart(state.t, steps);
    const count = Math.min(WINDOW, steps - start);
    const n = (t: number) => stepNumber(state, t);
    setInfo(steps > WINDOW ? `steps ${n(start)}–${n(start + count - 1)} of ${stepsOf(state)}` : "");
    const q = selectedQuantity(state);
    if (!painted || painted.start !== start || painted.data !== q.data || painted.unit !== state.unit ||
        painted.length !== state.length || painted.tokens !== state.tokens || painted.steps !== steps ||
        painted.lut !== lutVersion() || painted.width !== width) {
      ensurePool(count);
      paintWindow(state, q, start, count);
    }
    const i = state.t - start;
    highlight(state, i >= 0 && i < count ? i : -1, start);
    showFull(state);
  }

  // The labels' layout follows the strip's width (the heatmap's): a resize may thin or unthin them.
  // (its width read from the observer's entry: reading the element's would force a layout after
  // the DOM writes of the observers called before it, as on the first paint)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
    const w = entries.length ? entries[entries.length - 1].contentRect.width : row.clientWidth;
    if (w === width || w === 0) return;
    width = w;
    if (lastState) update(lastState);
  });
  resize?.observe(row);

  return {
    el,
    update,
    destroy: () => {
      resize?.disconnect();
      sparkCursor.destroy();
    },
  };
}
