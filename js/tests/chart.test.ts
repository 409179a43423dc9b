// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { decadeRange, decadeText, decadeTicks, extent, linearTicks, niceRange, valueText } from "../src/chart_axes";
import { type ChartModel, isolatedPoints, linesOf, nearestIndex, pathOf, renderChart } from "../src/chart";
import { renderSteps, type StepsModel } from "../src/steps";
import { FakeModel } from "./fake_model";

describe("series colours", () => {
  it("come from the theme's --rw-series-k, with the dark theme's set where the page is dark", () => {
    const el = document.createElement("div");
    document.body.append(el);
    const model = new FakeModel<ChartModel>({
      kind: "lines", title: "t", x_label: "x", y_label: "y", y_scale: "linear", x_integer: true,
      series: [{ name: "a" }, { name: "b", colour: 9 }], categories: [], flags: {}, rules: [],
      buffer: new DataView(Float32Array.from([0, 1, 1, 2, 3, 4]).buffer), points: 2, t: null, empty: "",
    });
    renderChart(model, el);
    const strokes = [...el.querySelectorAll<SVGPathElement>("path.rw-chart-series")].map((p) => p.style.stroke);
    expect(strokes).toEqual(["var(--rw-series-0, #0072b2)", "var(--rw-series-1, #d55e00)"]); // 9 wraps to 1
    const css = el.querySelector("style")!.textContent!;
    expect(css).toContain('[data-jp-theme-light="false"] .rw-chart');
    expect(css).toContain("--rw-series-0: #56b4e9");
    el.remove();
  });
});

describe("axes", () => {
  it("labels a log axis at decades only, thinned to what fits, the top decade always shown", () => {
    const [lo, hi] = decadeRange(3.2e-16, 0.7);
    expect([lo, hi]).toEqual([1e-16, 1]);
    const all = decadeTicks(lo, hi, 100);
    expect(all).toHaveLength(17);
    const fitted = decadeTicks(lo, hi, 8); // 170 px of axis: every third decade
    expect(fitted.length).toBeLessThanOrEqual(8);
    expect(fitted.at(-1)).toBe(1);
    for (const v of fitted) expect(Math.log10(v)).toBeCloseTo(Math.round(Math.log10(v)), 9);
  });

  it("gives a single decade of data a whole decade of axis (its ends are ticks, none clipped)", () => {
    expect(decadeRange(2, 5)).toEqual([1, 10]);
    expect(decadeRange(10, 10)).toEqual([10, 100]);
  });

  it("writes decades as a student reads them", () => {
    expect([1e-5, 1e-3, 0.1, 1, 10, 100, 1e4].map(decadeText)).toEqual(["10⁻⁵", "10⁻³", "0.1", "1", "10", "100", "10⁴"]);
  });

  it("never labels a step axis with repeated or fractional steps", () => {
    expect(linearTicks(0, 1, 10, true)).toEqual([0, 1]);
    expect(niceRange(0, 0, 5, true)).toEqual([-0.5, 0.5]);   // one step: its tick in the middle, no step 1
    expect(linearTicks(-0.5, 0.5, 10, true)).toEqual([0]);
    expect(niceRange(7, 7, 5, true)).toEqual([6.5, 7.5]);
    const ticks = linearTicks(0, 37, 6, true);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.every(Number.isInteger)).toBe(true);
    expect(ticks.length).toBeLessThanOrEqual(7);
  });

  it("finds the range a log axis can draw, or none", () => {
    expect(extent([0, -1, NaN, 1e-3, 5], true)).toEqual([1e-3, 5]);
    expect(extent([0, -1, NaN], true)).toBeNull();
    expect(extent([0, -1], false)).toEqual([-1, 0]);
    expect(valueText(NaN)).toBe("–");
  });
});

describe("chart data", () => {
  it("cuts x and each series from one buffer, and refuses a buffer of the wrong size", () => {
    const { x, ys } = linesOf(Float32Array.of(0, 1, 2, 5, 6, 7, 8, 9, 10), 3, 2);
    expect(Array.from(x)).toEqual([0, 1, 2]);
    expect(ys.map((y) => Array.from(y))).toEqual([[5, 6, 7], [8, 9, 10]]);
    expect(() => linesOf(new Float32Array(5), 3, 2)).toThrow(/expected 3 x values/);
  });

  it("breaks a line where a log axis cannot place a point", () => {
    const d = pathOf([0, 1, 2, 3], [1, 0, 2, 3], (v) => v, (v) => v, true);
    expect(d).toBe("M0.0,1.0M2.0,2.0L3.0,3.0");
  });

  it("finds the points no segment passes through, to draw them as dots", () => {
    expect(isolatedPoints([0.5], true)).toEqual([0]);
    expect(isolatedPoints([1, NaN, 2, 3, 0, 4], true)).toEqual([0, 5]);
    expect(isolatedPoints([1, NaN, 2, 3, 0, 4], false)).toEqual([0]);
    expect(isolatedPoints([NaN, NaN], false)).toEqual([]);
  });

  it("finds the point under the cursor", () => {
    expect(nearestIndex([0, 1, 2, 3], 2.4)).toBe(2);
    expect(nearestIndex([0, 10, 20], 16)).toBe(2);
    expect(nearestIndex([0, 1], null)).toBe(-1);
  });
});

function chartModel(extra: Partial<ChartModel> = {}) {
  const x = [0, 1, 2, 3];
  const buffer = new Float32Array([...x, 1, 0.1, 0.01, 1e-3, 2, 2, 2, 2]);
  return new FakeModel<ChartModel>({
    kind: "lines", title: "‖∂L/∂h_t‖ through time", x_label: "step t", y_label: "norm", y_scale: "log", x_integer: true,
    series: [{ name: "<b>rnn.l0</b> h", colour: 0 }, { name: "lstm.l0 c", colour: 1, dash: true }],
    categories: [], flags: {}, rules: [], buffer: new DataView(buffer.buffer), points: 4, t: 0, empty: "no data yet",
    ...extra,
  });
}

describe("renderChart", () => {
  it("draws a path per series, decade ticks, the legend under the plot with the values at the cursor", async () => {
    const el = document.createElement("div");
    const model = chartModel();
    const undo = renderChart(model, el);
    expect(el.querySelectorAll("path.rw-chart-series")).toHaveLength(2);
    const yTicks = [...el.querySelectorAll('.rw-chart-tick[data-axis="y"]')].map((t) => t.textContent);
    expect(yTicks).toEqual(["10⁻³", "10⁻²", "0.1", "1", "10"]);
    expect(el.querySelectorAll(".rw-chart-minor")).toHaveLength(0); // 4 decades: decade lines are enough
    const xTicks = [...el.querySelectorAll('.rw-chart-tick[data-axis="x"]')].map((t) => t.textContent);
    expect(xTicks).toEqual(["0", "1", "2", "3"]);
    const legend = el.querySelector(".rw-chart-legend")!;
    expect(legend.compareDocumentPosition(el.querySelector(".rw-chart-plot")!) & Node.DOCUMENT_POSITION_PRECEDING).toBeTruthy();
    expect(legend.textContent).toContain("<b>rnn.l0</b> h"); // a name is text, never markup
    expect(legend.querySelector("b")).toBeNull();
    expect([...el.querySelectorAll(".rw-chart-value")].map((v) => v.textContent)).toEqual(["= 1", "= 2"]);
    const cursor = el.querySelector(".rw-chart-cursor")!;
    const x0 = Number(cursor.getAttribute("x1"));
    model.set("t", 2); // a follower's step: no redraw, the cursor and the values move
    expect(el.querySelector(".rw-chart-cursor")).toBe(cursor);
    expect(Number(cursor.getAttribute("x1"))).toBeGreaterThan(x0);
    expect([...el.querySelectorAll(".rw-chart-value")].map((v) => v.textContent)).toEqual(["= 0.01", "= 2"]);
    undo();
    expect(model.listenerCount()).toBe(0);
  });

  it("ticks a window of steps' x axis with the model's step numbers; the cursor counts from 0", () => {
    const points = 60;
    const x = Array.from({ length: points }, (_, i) => i);
    const buffer = new DataView(new Float32Array([...x, ...x.map((i) => 10 ** (-i / 10))]).buffer);
    const spec = { series: [{ name: "lstm.l0 h" }], buffer, points, t: 2 };
    const ticks = (el: HTMLElement) => [...el.querySelectorAll('.rw-chart-tick[data-axis="x"]')].map((t) => t.textContent!);
    const cursorX = (el: HTMLElement) => Number(el.querySelector(".rw-chart-cursor")!.getAttribute("x1"));
    const plain = document.createElement("div");
    renderChart(chartModel(spec), plain);
    const window = document.createElement("div");
    const model = chartModel({ ...spec, first_step: 120 });
    renderChart(model, window);
    const labels = ticks(window).map(Number);
    expect(labels[0]).toBe(120);
    expect(labels.at(-1)).toBeLessThanOrEqual(179);
    expect(labels.length).toBeGreaterThanOrEqual(3);
    expect(labels.every((v, i) => i === 0 || v > labels[i - 1])).toBe(true);
    expect(ticks(plain).map(Number)).toEqual(labels.map((v) => v - 120)); // the same places, numbered from 120
    expect(cursorX(window)).toBe(cursorX(plain)); // t = 2 is the window's third step, 122
    expect(window.querySelector(".rw-chart-value")!.textContent).toBe(plain.querySelector(".rw-chart-value")!.textContent);
    model.set("first_step", 100_000);   // a late window: whole numbers, not 1e+5
    return Promise.resolve().then(() => {
      expect(ticks(window)[0]).toBe("100000");
      expect(ticks(window).every((t) => /^\d+$/.test(t))).toBe(true);
    });
  });

  it("says a value of 0 on a log axis in its legend, and leaves it out of the line", () => {
    const el = document.createElement("div");
    const buffer = new Float32Array([0, 1, 2, 0.5, 0, 0.2]); // as chart.py sends it: the 0 as it is
    renderChart(chartModel({ series: [{ name: "‖∇‖" }], buffer: new DataView(buffer.buffer), points: 3, t: 1 }), el);
    expect(el.querySelector(".rw-chart-value")!.textContent).toBe("= 0");
    const d = el.querySelector("path.rw-chart-series")!.getAttribute("d")!;
    expect(d.match(/M/g)).toHaveLength(2); // the line breaks at the 0: two pieces (each a dot)
    expect(d).not.toMatch(/NaN|Infinity/);
  });

  it("draws unlabelled lines between the decades of a short log axis", () => {
    const el = document.createElement("div");
    const buffer = new Float32Array([0, 1, 0.2, 0.5]);
    renderChart(chartModel({ series: [{ name: "‖∇‖" }], buffer: new DataView(buffer.buffer), points: 2 }), el);
    expect([...el.querySelectorAll('.rw-chart-tick[data-axis="y"]')].map((t) => t.textContent)).toEqual(["0.1", "1"]);
    expect(el.querySelectorAll(".rw-chart-minor")).toHaveLength(8);
  });

  it("shows a sentence, and no tick at all, while there is no data", () => {
    const el = document.createElement("div");
    renderChart(chartModel({ buffer: new DataView(new ArrayBuffer(0)), points: 0, series: [], empty: "call mon.step(loss)" }), el);
    expect(el.querySelector(".rw-chart-empty")?.textContent).toBe("call mon.step(loss)");
    expect(el.querySelectorAll(".rw-chart-tick")).toHaveLength(0);
  });

  it("draws the one step of a one-step run as a dot over its one tick", () => {
    const el = document.createElement("div");
    const buffer = new Float32Array([0, 0.9]);
    renderChart(chartModel({ series: [{ name: "rnn.l0 h" }], buffer: new DataView(buffer.buffer), points: 1 }), el);
    expect(el.querySelectorAll("circle.rw-chart-dot")).toHaveLength(1);
    expect([...el.querySelectorAll('.rw-chart-tick[data-axis="x"]')].map((t) => t.textContent)).toEqual(["0"]);
  });

  it("says why there is nothing to draw when every value is NaN, or 0 on a log axis", () => {
    for (const [values, why] of [[[NaN, NaN], "every value is NaN or infinite"], [[0, 0], "every value is 0"]] as const) {
      const el = document.createElement("div");
      const buffer = new Float32Array([0, 1, ...values]);
      renderChart(chartModel({ series: [{ name: "rnn.l0 h" }], buffer: new DataView(buffer.buffer), points: 2 }), el);
      expect(el.querySelector(".rw-chart-empty")?.textContent).toContain(why);
      expect(el.querySelector(".rw-chart-empty")?.textContent).not.toContain("no data yet");
    }
  });

  it("says the kernel's reason when the values it sent as gaps were zeros", () => {
    const el = document.createElement("div");
    const buffer = new Float32Array([0, 1, NaN, NaN]);   // a log axis's zeros arrive as NaN
    const why = "nothing to draw on a log axis: every value is 0 (or below)";
    renderChart(chartModel({ series: [{ name: "h" }], buffer: new DataView(buffer.buffer), points: 2, undrawn: why }), el);
    expect(el.querySelector(".rw-chart-empty")?.textContent).toBe(why);
  });

  it("draws bars with whole names, decade ticks and a flag instead of a bar that cannot be drawn", () => {
    const el = document.createElement("div");
    const name = "encoder.rnn.weight_ih_l0_reverse";
    const values = new Float32Array([0.02, NaN, 0.5, NaN]);
    renderChart(chartModel({
      kind: "bars", series: [{ name: "mean |grad|" }, { name: "max |grad|" }], categories: [name, "head.bias"],
      flags: { "head.bias": "zero gradient" }, buffer: new DataView(values.buffer), points: 2,
    }), el);
    expect([...el.querySelectorAll(".rw-chart-category")].map((c) => c.textContent)).toEqual([name, "head.bias"]);
    expect(el.querySelectorAll(".rw-chart-bar")).toHaveLength(2);
    expect(el.querySelector(".rw-chart-flag")?.textContent).toBe("zero gradient");
    expect([...el.querySelectorAll(".rw-chart-tick")].map((t) => t.textContent)).toEqual(["10⁻²", "0.1", "1"]);
  });
});

describe("renderSteps", () => {
  it("moves its followers' cursors at every step, in the page, and saves the step only once the scrub rests", async () => {
    const follower = chartModel();
    const model = new FakeModel<StepsModel>({ t: 0, steps: 4, playing: false, interval: 150, followers: ["IPY_MODEL_f"] });
    model.widget_manager = { get_model: () => Promise.resolve(follower) } as unknown as typeof model.widget_manager;
    const el = document.createElement("div");
    const undo = renderSteps(model, el);
    await new Promise((r) => setTimeout(r, 0));
    const root = el.querySelector<HTMLElement>(".rw-steps")!;
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(follower.get("t")).toBe(1);
    expect(el.querySelector(".rw-step")?.textContent).toBe("step 1 / 3");
    expect(model.saves).toBe(0); // nothing sent to the kernel during the scrub
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "End", bubbles: true }));
    expect(follower.get("t")).toBe(3);
    undo();
    expect(model.saves).toBe(1); // what was pending is saved when the view goes
    expect(model.get("t")).toBe(3);
  });

  it("says a window of steps' step numbers as the model does; its followers' t counts from 0", async () => {
    const follower = chartModel();
    const model = new FakeModel<StepsModel>({ t: 0, steps: 60, playing: false, interval: 150, followers: ["IPY_MODEL_f"],
      first_step: 120 });
    model.widget_manager = { get_model: () => Promise.resolve(follower) } as unknown as typeof model.widget_manager;
    const el = document.createElement("div");
    renderSteps(model, el);
    await new Promise((r) => setTimeout(r, 0));
    expect(el.querySelector(".rw-step")?.textContent).toBe("step 120 / 179");
    el.querySelector<HTMLElement>(".rw-steps")!.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(el.querySelector(".rw-step")?.textContent).toBe("step 121 / 179");
    expect(follower.get("t")).toBe(1);
    expect(el.querySelector<HTMLInputElement>(".rw-slider")!.max).toBe("59");
  });
});
