// A step cursor drawn on a canvas laid over a plot: a vertical line one CSS pixel wide, at a
// fraction of the plot's width, in the theme's strongest text colour (--rw-strong).
//
// Why a canvas and not an element moved by `left` or `transform`: in Chromium a moved element's
// paint chunk lies somewhere else, and the page is then layerized again whole
// (PaintArtifactCompositor::Update, about 2 ms of main thread a frame in JupyterLab; the same for
// a `will-change: transform` layer). A redrawn canvas only sends its layer a new picture: no
// style, layout, paint or layerization (measured in a Chromium trace of a scrub; README).
import { lutVersion } from "./colormap";
import { element, themeVariable } from "./dom";

/** The device-pixel column `x` and width `w` of a line at `fraction` of a canvas `width` device
 * pixels wide, `ratio` device pixels a CSS pixel: one CSS pixel wide (at least one device pixel),
 * its left edge on the nearest pixel, kept inside the canvas. */
export function lineColumn(fraction: number, width: number, ratio: number): { x: number; w: number } {
  const w = Math.max(1, Math.round(ratio));
  return { x: Math.max(0, Math.min(width - w, Math.round(fraction * width))), w };
}

export interface CursorLine {
  /** The canvas, as wide and tall as the plot it is laid over (its caller places it). */
  el: HTMLCanvasElement;
  /** Draws the line at `fraction` of the width (0: the left edge), or none for null. Draws only
   * on the canvas: the element's style and the page's layout stay as they are. */
  show(fraction: number | null): void;
  /** The fraction shown (null: none). */
  shown(): number | null;
  destroy(): void;
}

const lines = new WeakMap<Element, CursorLine>();

/** The fraction the cursor line drawn on canvas `el` shows (null: none, or not a cursor line):
 * what a test reads, the element itself carrying nothing that changes with the step. */
export function cursorAt(el: Element | null): number | null {
  return (el && lines.get(el)?.shown()) ?? null;
}

export function createCursorLine(className: string): CursorLine {
  const el = element("canvas", className);
  el.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none";
  let at: number | null = null; // the fraction asked for
  let drawn: { x: number; w: number; ink: string } | null = null; // what the canvas holds now
  let ink = { colour: "#000", lut: -1 };
  let size = { w: 0, h: 0 }; // the displayed size in CSS pixels, from the resize observer

  /** The theme's text colour, read again only after a theme change (a new colour table). */
  function colour(): string {
    if (ink.lut !== lutVersion()) {
      const css = themeVariable(el, "--rw-strong", lutVersion());
      ink = { colour: css || "#000", lut: lutVersion() };
    }
    return ink.colour;
  }

  function draw(): void {
    if (size.w === 0 || size.h === 0) return; // not laid out yet: the observer draws it
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(size.w * ratio)), h = Math.max(1, Math.round(size.h * ratio));
    if (el.width !== w || el.height !== h) {
      el.width = w; // (resizing clears the canvas)
      el.height = h;
      drawn = null;
    }
    const next = at === null ? null : { ...lineColumn(at, w, ratio), ink: colour() };
    if (drawn?.x === next?.x && drawn?.w === next?.w && drawn?.ink === next?.ink) return;
    const ctx = el.getContext("2d");
    if (!ctx) return;
    if (drawn) ctx.clearRect(drawn.x, 0, drawn.w, h);
    if (next) {
      ctx.fillStyle = next.ink;
      ctx.fillRect(next.x, 0, next.w, h);
    }
    drawn = next;
  }

  // (the size from the observer's entry: reading the element would force a layout mid-scrub)
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
    const box = entries.length ? entries[entries.length - 1].contentRect : null;
    if (!box) return;
    size = { w: box.width, h: box.height };
    draw();
  });
  resize?.observe(el);

  const line: CursorLine = {
    el,
    show(fraction) {
      at = fraction;
      draw();
    },
    shown: () => at,
    destroy: () => resize?.disconnect(),
  };
  lines.set(el, line);
  return line;
}
