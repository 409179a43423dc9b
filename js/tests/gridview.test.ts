// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { NON_FINITE_WORD, colorWord } from "../src/colormap";
import { type GridModel, columnOf, columnText, gridQuantity, renderGrid } from "../src/gridview";
import { ROW_MARK, paintHeatmap, rowMarkRects } from "../src/heatmap";
import { FakeModel } from "./fake_model";

function gridModel(values: number[], rows: number, columns: number, extra: Partial<GridModel> = {}) {
  const bytes = new Float32Array(values).buffer;
  return new FakeModel<GridModel>({
    buffer: new DataView(bytes), rows, columns, row_labels: ["lstm.l0", "<b>l1</b>"],
    column_start: 0, column_step: 1, column_label: "step t", scale: "sequential", vmin: 0, vmax: 1,
    t: null, title: "norms", ...extra,
  });
}

describe("grid values as a heatmap quantity", () => {
  it("puts row r on unit r and column c on step c (row-major in, time-major out)", () => {
    const q = gridQuantity(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3, "diverging", -6, 6);
    expect(q.units).toBe(2);
    expect(q.steps).toBe(3);
    expect(Array.from(q.data)).toEqual([1, 4, 2, 5, 3, 6]);
    expect([q.scale, q.vmin, q.vmax]).toEqual(["diverging", -6, 6]);
  });

  it("colours a log scale by log10 of magnitudes; 0 at the low end, NaN/Inf non-finite", () => {
    const q = gridQuantity(Float32Array.of(1e-3, -10, 0, NaN, Infinity, 1), 1, 6, "log", 1e-3, 10);
    expect(q.scale).toBe("sequential");
    expect([q.vmin, q.vmax]).toEqual([-3, 1]);
    const out = new Uint32Array(6);
    paintHeatmap(q, null, 6, out);
    const low = colorWord(-3, "sequential", -3, 1);
    expect(out[0]).toBe(low);
    expect(out[1]).toBe(colorWord(1, "sequential", -3, 1));
    expect(out[2]).toBe(low);
    expect(out[3]).toBe(NON_FINITE_WORD);
    expect(out[4]).toBe(NON_FINITE_WORD);
    expect(out[5]).toBe(colorWord(0, "sequential", -3, 1));
  });

  it("refuses a buffer of the wrong size, saying what it expected", () => {
    expect(() => gridQuantity(new Float32Array(5), 2, 3, "sequential", 0, 1)).toThrow(/2 x 3 = 6 values, got 5/);
  });
});

describe("grid columns", () => {
  it("maps a cursor position to its column, -1 outside or when there is none", () => {
    expect(columnOf(7, 0, 1, 10)).toBe(7);
    expect(columnOf(7, 0, 4, 10)).toBe(1);
    expect(columnOf(10, 0, 1, 10)).toBe(-1);
    expect(columnOf(-1, 0, 1, 10)).toBe(-1);
    expect(columnOf(null, 0, 1, 10)).toBe(-1);
  });

  it("says what a column covers", () => {
    expect(columnText(3, 0, 1)).toBe("3");
    expect(columnText(2, 0, 4)).toBe("8.000–12.000");
  });
});

describe("row marks", () => {
  it("marks both ends of each row, skipping rows outside the grid", () => {
    expect(rowMarkRects([1, 5], 4, 100, 40, 1)).toEqual([[0, 10, 4, 10], [96, 10, 4, 10]]);
    expect(ROW_MARK).toMatch(/^#[0-9a-f]{6}$/);
  });
});

describe("renderGrid", () => {
  it("shows row labels as text, the column range and a hover readout", () => {
    const model = gridModel([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 2, 3);
    const el = document.createElement("div");
    document.body.append(el);
    const destroy = renderGrid(model, el);
    const labels = [...el.querySelectorAll(".rw-grid-row-label")].map((l) => l.textContent);
    expect(labels).toEqual(["lstm.l0", "<b>l1</b>"]);
    expect(el.querySelector(".rw-grid-rows b")).toBeNull(); // a label is never parsed as markup
    expect(el.querySelector(".rw-grid-axis")?.textContent).toBe("0step t2");
    expect(el.querySelector(".rw-grid-title")?.textContent).toBe("norms");
    expect(el.querySelector(".rw-heatmap")).not.toBeNull();
    expect(el.querySelector(".rw-cursor")).not.toBeNull();
    destroy();
    expect(model.listenerCount()).toBe(0);
  });

  it("says every value is 0 instead of a log colour bar that has no magnitude to place", () => {
    const el = document.createElement("div");
    renderGrid(gridModel([0, 0, 0, NaN], 2, 2, { scale: "log", vmin: 1e-3, vmax: 1 }), el);
    expect(el.querySelector<HTMLElement>(".rw-legend")!.style.display).toBe("none");
    expect(el.querySelector(".rw-grid-zeros")!.textContent).toMatch(/^every value is 0: nothing to place on the log colour scale/);
    const some = document.createElement("div");
    renderGrid(gridModel([0, 0.5, 0, 0.01], 2, 2, { scale: "log", vmin: 1e-3, vmax: 1 }), some);
    expect(some.querySelector<HTMLElement>(".rw-legend")!.style.display).toBe("flex");
    expect(some.querySelector(".rw-grid-zeros")!.textContent).toBe("");
    const linear = document.createElement("div");
    renderGrid(gridModel([0, 0, 0, 0], 2, 2), linear); // a linear scale places 0 on its bar
    expect(linear.querySelector(".rw-grid-zeros")!.textContent).toBe("");
  });

  it("names a one-column grid's step once, in the middle", () => {
    const el = document.createElement("div");
    renderGrid(gridModel([0.9, 0.5], 2, 1), el);
    const axis = el.querySelector<HTMLElement>(".rw-grid-axis")!;
    expect([...axis.children].map((c) => c.textContent)).toEqual(["step t 0"]);
    expect(axis.style.justifyContent).toBe("center");
  });

  it("writes a window of steps' columns as the model numbers them, its cursor still counted from 0", () => {
    const el = document.createElement("div");
    const model = gridModel([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 2, 3, { first_step: 120, t: 1 });
    renderGrid(model, el);
    expect([...el.querySelector(".rw-grid-axis")!.children].map((c) => c.textContent)).toEqual(["120", "step t", "122"]);
    const image = el.querySelector<HTMLCanvasElement>(".rw-heatmap")!;
    image.getBoundingClientRect = () => ({ left: 0, top: 0, width: 30, height: 20, right: 30, bottom: 20, x: 0, y: 0, toJSON() {} });
    // 3 columns x 2 rows over 30 x 20 px: (25, 15) is column 2 of row 1
    image.parentElement!.dispatchEvent(new MouseEvent("mousemove", { clientX: 25, clientY: 15 }));
    expect(el.querySelector(".rw-grid-readout")!.textContent).toBe("<b>l1</b> · step t 122 · 0.600");
    model.set("first_step", 0);   // the same grid counted from 0: the axis is redrawn
    return Promise.resolve().then(() => {
      expect([...el.querySelector(".rw-grid-axis")!.children].map((c) => c.textContent)).toEqual(["0", "step t", "2"]);
      const one = document.createElement("div");
      renderGrid(gridModel([0.9, 0.5], 2, 1, { first_step: 2000 }), one);
      expect(one.querySelector(".rw-grid-axis")!.textContent).toBe("step t 2000");
    });
  });

  it("redraws once when the data traits change together", async () => {
    const model = gridModel([], 0, 0);
    const el = document.createElement("div");
    renderGrid(model, el);
    expect(el.querySelector(".rw-grid-readout")?.textContent).toBe("no data yet");
    model.set("buffer", new DataView(new Float32Array([1, 2]).buffer));
    model.set("rows", 1);
    model.set("columns", 2);
    model.set("row_labels", ["only"]);
    await Promise.resolve();
    expect([...el.querySelectorAll(".rw-grid-row-label")].map((l) => l.textContent)).toEqual(["only"]);
    expect(el.querySelector(".rw-grid-readout")?.textContent).toBe("");
  });
});
