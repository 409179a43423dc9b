// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createCursorLine, lineColumn } from "../src/cursor_line";
import { fakeResizeObservers } from "./fake-resize";

describe("lineColumn", () => {
  it("puts a line one CSS pixel wide at the nearest device pixel, inside the canvas", () => {
    expect(lineColumn(0, 500, 1)).toEqual({ x: 0, w: 1 });
    expect(lineColumn(0.29, 100, 1)).toEqual({ x: 29, w: 1 }); // (0.29 * 100 is 28.999...)
    expect(lineColumn(0.5, 1000, 2)).toEqual({ x: 500, w: 2 });
    expect(lineColumn(1, 500, 1)).toEqual({ x: 499, w: 1 }); // the right edge: still drawn
    expect(lineColumn(1, 500, 2)).toEqual({ x: 498, w: 2 });
    expect(lineColumn(-0.1, 500, 1)).toEqual({ x: 0, w: 1 });
    expect(lineColumn(0.25, 400, 1.5)).toEqual({ x: 100, w: 2 });
  });
});

describe("createCursorLine", () => {
  let resize: ReturnType<typeof fakeResizeObservers>;
  let calls: string[] = [];

  beforeEach(() => {
    calls = [];
    resize = fakeResizeObservers();
    const ctx = {
      fillStyle: "",
      clearRect: (...r: number[]) => calls.push(`clear ${r.join(",")}`),
      fillRect: (...r: number[]) => calls.push(`fill ${r.join(",")} ${ctx.fillStyle}`),
    };
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(() => ctx as unknown as CanvasRenderingContext2D);
  });
  afterEach(() => {
    resize.restore();
    vi.restoreAllMocks();
  });

  const report = (width: number, height: number) => resize.report(width, height);

  it("moves by redrawing its canvas: the element's style is never written after it is made", () => {
    const ratio = window.devicePixelRatio || 1;
    const line = createCursorLine("rw-x-cursor");
    const style = line.el.style.cssText;
    document.body.append(line.el);
    line.show(0.25);
    expect(calls).toEqual([]); // not laid out yet: drawn once the observer reports a size
    report(200, 40);
    expect(line.el.width).toBe(200 * ratio);
    const w = Math.max(1, Math.round(ratio));
    expect(calls).toEqual([`fill ${50 * ratio},0,${w},${40 * ratio} #000`]);
    calls = [];
    line.show(0.5); // a scrub step: the old line cleared alone, the new one drawn
    expect(calls).toEqual([`clear ${50 * ratio},0,${w},${40 * ratio}`, `fill ${100 * ratio},0,${w},${40 * ratio} #000`]);
    calls = [];
    line.show(0.5); // the same column: nothing drawn
    line.show(0.5 + 0.1 / (200 * ratio));
    expect(calls).toEqual([]);
    line.show(null); // none (a step outside the steps shown)
    expect(calls).toEqual([`clear ${100 * ratio},0,${w},${40 * ratio}`]);
    expect(line.shown()).toBeNull();
    expect(line.el.style.cssText).toBe(style);
    line.el.remove();
    line.destroy();
  });

  it("draws in the theme's strongest text colour, read again after a theme change", async () => {
    const { setBackground } = await import("../src/colormap");
    const root = document.createElement("div");
    root.className = "rw-explorer";
    root.style.setProperty("--rw-strong", "#123456");
    const line = createCursorLine("rw-x-cursor");
    root.append(line.el);
    document.body.append(root);
    report(100, 10);
    line.show(0.5);
    expect(calls.at(-1)).toMatch(/ #123456$/);
    root.style.setProperty("--rw-strong", "#fedcba");
    line.show(0.5);
    expect(calls.at(-1)).toMatch(/ #123456$/); // the page was not re-themed: no style read
    setBackground("#111111"); // a theme change rebuilds the colour tables
    line.show(0.5); // the same column, a new colour: redrawn
    expect(calls.at(-1)).toMatch(/ #fedcba$/);
    setBackground("#ffffff");
    root.remove();
    line.destroy();
  });
});
