// Axis labels for the Explorer's panels: which rows, steps or units get a label at a given size,
// and the label elements themselves, placed by percentages of their axis so they stay on their
// row or column at every width and zoom without reading the layout.
import { element } from "./dom";

/** The smallest of 1, 2, 5, 10, 20, 50, ... whose labels, `pitch` pixels apart per item, are at
 * least `minGap` pixels apart (1 when every item has room). */
export function niceStride(pitch: number, minGap: number): number {
  if (!(pitch > 0)) return 1;
  for (let decade = 1; ; decade *= 10) {
    for (const m of [1, 2, 5]) if (m * decade * pitch >= minGap) return m * decade;
  }
}

/** The items 0, stride, 2·stride, ... below `count`. */
export function ticks(count: number, stride: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i += stride) out.push(i);
  return out;
}

/** The `left` of an "x" axis label (its strip's rules in style.ts and patterns.ts): its column's
 * centre, `--rw-at`, held half its width, `--rw-half`, from either end of the strip. */
export const X_TICK_LEFT = "left: clamp(var(--rw-half), var(--rw-at), calc(100% - var(--rw-half)));";

/** Pixels one label needs along its axis: a horizontal label's width is its text's, a row
 * label's height one line's. */
export const LINE_PX = 14;
export const CHAR_PX = 6.65; // a character of the 11px monospace the labels use (0.6 em and a little)

/**
 * A strip of labels along one axis ("x": left to right, "y": top to bottom), each centred on
 * its item: item i of `count` sits at (i + 0.5) / count of the strip (an "x" label held inside
 * the strip where its column is nearer an end than half the label's width). `set` reuses the label
 * elements, so a redraw with the same labels touches nothing.
 */
export function createAxis(className: string, direction: "x" | "y") {
  const el = element("div", `rw-axis ${className}`);
  let shown = "";
  function set(count: number, items: { at: number; text: string }[]): void {
    const key = `${count}|${items.map((i) => `${i.at}:${i.text}`).join(",")}`;
    if (key === shown) return;
    shown = key;
    el.replaceChildren(...items.map(({ at, text }) => {
      const label = element("span", "rw-tick");
      label.textContent = text;
      const where = `${(((at + 0.5) / count) * 100).toFixed(4)}%`;
      if (direction === "x") {
        // centred on its column, but never past the strip's ends: step 0 of a long run sits at the
        // very left edge, and half its label reached into the axis title beside it ("step0")
        // (the stylesheet's X_TICK_LEFT clamps; custom properties, since not every DOM parses clamp())
        label.style.setProperty("--rw-at", where);
        label.style.setProperty("--rw-half", `${((text.length * CHAR_PX) / 2).toFixed(1)}px`);
      } else label.style.top = where;
      return label;
    }));
  }
  return { el, set };
}

/** The steps labelled along `width` pixels of `steps` columns: each label clear of the next.
 * `first`: the step number of column 0 (a trace of a window of steps, `rw.trace(steps=...)`,
 * labels its columns with the model's own step numbers). */
export function stepLabels(steps: number, width: number, first = 0): { at: number; text: string }[] {
  const label = String(first + Math.max(0, steps - 1)).length * CHAR_PX + 10;
  return ticks(steps, niceStride(width / steps, label)).map((t) => ({ at: t, text: String(first + t) }));
}
