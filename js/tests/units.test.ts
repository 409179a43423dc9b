// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { createUnits, drawSeries, lineAxes, ownRange, parseUnit, PLOT_W, yOf } from "../src/units";
import { cursorAt } from "../src/cursor_line";
import { bucketColumn, columnRange, stepAtX, xOfStep } from "../src/timeaxis";
import { explorerState, layer, quantity, recordingActions } from "./fake-state";
import { fakeResizeObservers } from "./fake-resize";

// unit u's amplitude grows with u, so variance orders units from the last to the first
const h = quantity("h", 40, 6, (t, u) => 0.1 * (u + 1) * Math.sin(t * 0.5));
const lstm = layer("lstm.l0", "lstm", [h]);

function select(el: HTMLSelectElement, value: string) {
  el.value = value;
  el.dispatchEvent(new Event("change"));
}

describe("units plot geometry", () => {
  it("maps values and steps to pixels and back", () => {
    expect(yOf(1, -1, 1, 101)).toBe(0);
    expect(yOf(-1, -1, 1, 101)).toBe(100);
    expect(yOf(0, -1, 1, 101)).toBe(50);
    expect(yOf(5, -1, 1, 101)).toBe(0);
    for (const steps of [1, 7, 640, 100_000]) {
      for (const t of [0, Math.floor(steps / 3), steps - 1]) {
        expect(stepAtX(xOfStep(t, steps, PLOT_W), steps, PLOT_W)).toBe(t);
      }
    }
    expect(stepAtX(-5, 10, PLOT_W)).toBe(0);
    expect(stepAtX(PLOT_W + 5, 10, PLOT_W)).toBe(9);
  });

  it("parses a unit number or says what was expected", () => {
    expect(parseUnit(" 12 ", 256)).toEqual({ unit: 12 });
    expect(parseUnit("256", 256)).toEqual({ error: 'no unit "256": expected a whole number from 0 to 255' });
    expect("error" in parseUnit("-1", 256)).toBe(true);
    expect("error" in parseUnit("1.5", 256)).toBe(true);
    expect("error" in parseUnit("", 256)).toBe(true);
  });

  it("columnRange keeps every spike of a long series", () => {
    const steps = 10_000;
    const q = quantity("x", steps, 1, (t) => (t === 7_777 ? 50 : t === 1_234 ? -40 : 0));
    const { lo, hi } = columnRange(q, 0, 0, steps, 100);
    expect(Math.max(...hi)).toBe(50);
    expect(Math.min(...lo)).toBe(-40);
    expect(hi[77]).toBe(50);
    expect(lo[12]).toBe(-40);
    // fewer steps than columns: every column still has a value
    const short = columnRange(quantity("x", 3, 1, (t) => t), 0, 0, 3, 10);
    expect(Array.from(short.hi).every(Number.isFinite)).toBe(true);
    // a window (steps 100..102 held) read over absolute steps 98..103: unheld columns are empty
    const held = columnRange({ ...quantity("x", 3, 1, (t) => t + 1), t0: 100 }, 0, 98, 104, 6);
    expect(Array.from(held.hi)).toEqual([NaN, NaN, 1, 2, 3, NaN]);
  });

  it("drawSeries: a polyline through every step when they fit, else one min..max bar per column", () => {
    const calls: string[] = [];
    const ctx = {
      beginPath: () => calls.push("begin"), stroke: () => calls.push("stroke"),
      lineTo: (x: number, y: number) => calls.push(`line ${x.toFixed(1)} ${y}`),
      fillRect: (x: number, y: number, _w: number, h: number) => calls.push(`rect ${x} ${y} ${h}`),
    } as unknown as CanvasRenderingContext2D;
    const q = quantity("h", 4, 2, (t, u) => (u ? t * 10 : -1));
    drawSeries(ctx, q, 1, 0, 4, 8, (v: number) => 100 - v);
    expect(calls).toEqual(["begin", "line 1.0 100", "line 3.0 90", "line 5.0 80", "line 7.0 70", "stroke"]);
    calls.length = 0;
    drawSeries(ctx, q, 1, 0, 4, 2, (v: number) => 100 - v); // two steps per column
    expect(calls).toEqual(["rect 0 90 10", "rect 1 70 10"]);
  });

  it("drawSeries: a one-step run's value is a dot (a polyline of one point draws nothing)", () => {
    const calls: string[] = [];
    const ctx = {
      lineWidth: 2, beginPath: () => calls.push("begin"), stroke: () => calls.push("stroke"),
      lineTo: (x: number, y: number) => calls.push(`line ${x.toFixed(1)} ${y}`),
      arc: (x: number, y: number, r: number) => calls.push(`arc ${x.toFixed(1)} ${y} ${r}`),
      fill: () => calls.push("fill"),
    } as unknown as CanvasRenderingContext2D;
    const one = quantity("h", 1, 1, () => 3);
    drawSeries(ctx, one, 0, 0, 1, 8, (v: number) => 100 - v);
    expect(calls).toEqual(["begin", "line 4.0 97", "stroke", "begin", "arc 4.0 97 3", "fill"]);
  });
});

describe("the selected unit's own axis", () => {
  // unit 0 saturates at ±10; unit 1 counts 0..4 (the quickstart's counter beside a saturated unit)
  const q = quantity("c", 9, 2, (t, u) => (u === 0 ? (t % 2 ? 10 : -10) : t / 2));

  it("spans the unit's own values with 5% room, over the valid steps held", () => {
    expect(ownRange(q, 1, 0, 9)).toEqual([-0.2, 4.2]);
    expect(ownRange(q, 1, 0, 5)).toEqual([-0.1, 2.1]); // the steps from the length on are padding
    expect(ownRange(quantity("x", 3, 1, () => 2), 0, 0, 3)).toEqual([1.8, 2.2]); // a constant line
    expect(ownRange(quantity("x", 3, 1, () => NaN), 0, 0, 3)).toBeNull();
  });

  it("puts the selected unit on the left axis and the other compared units on the right", () => {
    expect(lineAxes(q, [1], 1, 9)).toEqual({ left: [-0.2, 4.2], right: null });
    expect(lineAxes(q, [1, 0], 1, 9)).toEqual({ left: [-0.2, 4.2], right: [-11, 11] });
    expect(lineAxes(q, [0, 1], 0, 9)).toEqual({ left: [-11, 11], right: [-0.2, 4.2] });
  });

  it("labels both axes and says in the legend which axis reads each line", () => {
    const { actions } = recordingActions();
    const panel = createUnits(actions);
    panel.update(explorerState([layer("l", "lstm", [q])], { unit: 1, units: [1, 0] }));
    const labels = (sel: string) => [...panel.el.querySelectorAll(`${sel} .rw-tick`)].map((e) => e.textContent);
    expect(labels(".rw-units-yaxis:not(.rw-units-yaxis-right)")).toEqual(["4.200", "2.000", "−0.200"]);
    expect(labels(".rw-units-yaxis-right")).toEqual(["11.000", "0.000", "−11.000"]);
    const notes = [...panel.el.querySelectorAll(".rw-units-axis-note")].map((e) => e.textContent);
    expect(notes).toEqual([" (left axis: its own range)", " (right axis)"]);
    panel.update(explorerState([layer("l", "lstm", [q])], { unit: 1, units: [1] })); // alone: one axis
    expect(labels(".rw-units-yaxis-right")).toEqual([]);
    expect(panel.el.querySelectorAll(".rw-units-axis-note")).toHaveLength(0);
  });
});

describe("units panel", () => {
  it("ordering by variance asks the explorer for that permutation and lists the top units", () => {
    const { actions, calls } = recordingActions();
    const panel = createUnits(actions);
    const state = explorerState([lstm]);
    panel.update(state);
    select(panel.el.querySelector<HTMLSelectElement>(".rw-order")!, "variance");
    expect(calls).toHaveLength(1);
    const [name, order] = calls[0] as [string, Int32Array];
    expect(name).toBe("setOrder");
    expect(Array.from(order)).toEqual([5, 4, 3, 2, 1, 0]);
    expect(panel.el.querySelector(".rw-order-caption")!.textContent).toBe("by variance of h over steps 0–39");
    panel.update({ ...state, order });
    const top = [...panel.el.querySelectorAll<HTMLButtonElement>(".rw-units-top button")];
    expect(top.map((b) => b.textContent)).toEqual(["5", "4", "3", "2", "1", "0"]);
    top[1].click();
    expect(calls[1]).toEqual(["setUnit", 4]);
    select(panel.el.querySelector<HTMLSelectElement>(".rw-order")!, "index");
    expect(calls[2]).toEqual(["setOrder", null]);
  });

  it("ordering by correlation uses the selected unit; by value uses the current step", () => {
    const q = quantity("h", 20, 3, (t, u) => [Math.sin(t), -Math.sin(t), Math.cos(t * 3)][u] * (u === 2 ? 1 : 0.5) + (u === 2 && t === 7 ? 0.9 : 0));
    const { actions, calls } = recordingActions();
    const panel = createUnits(actions);
    panel.update(explorerState([layer("l", "rnn", [q])], { unit: 1, t: 7 }));
    const orderSelect = panel.el.querySelector<HTMLSelectElement>(".rw-order")!;
    select(orderSelect, "correlation");
    expect(Array.from(calls[0][1] as Int32Array).slice(0, 1)).toEqual([1]);
    expect((calls[0][1] as Int32Array)[2]).toBe(0); // perfectly anti-correlated: last
    select(orderSelect, "value");
    const atT = [0, 1, 2].map((u) => q.data[7 * 3 + u]);
    const expected = [0, 1, 2].sort((a, b) => atT[b] - atT[a]);
    expect(Array.from(calls[1][1] as Int32Array)).toEqual(expected);
    expect(panel.el.querySelector(".rw-order-caption")!.textContent).toBe("by h at step 7");
  });

  it("a cleared order (e.g. a new layer) resets the control to index", () => {
    const { actions } = recordingActions();
    const panel = createUnits(actions);
    const orderSelect = panel.el.querySelector<HTMLSelectElement>(".rw-order")!;
    panel.update(explorerState([lstm]));
    select(orderSelect, "variance");
    panel.update(explorerState([lstm], { order: Int32Array.from([5, 4, 3, 2, 1, 0]) }));
    expect(orderSelect.value).toBe("variance");
    panel.update(explorerState([lstm], { order: null }));
    expect(orderSelect.value).toBe("index");
    expect(panel.el.querySelectorAll(".rw-units-top button")).toHaveLength(0);
  });

  it("the search box selects a unit, and explains a bad one", () => {
    const { actions, calls } = recordingActions();
    const panel = createUnits(actions);
    panel.update(explorerState([lstm]));
    const search = panel.el.querySelector<HTMLInputElement>(".rw-unit-search")!;
    search.value = "3";
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(calls).toEqual([["setUnit", 3]]);
    search.value = "<b>9</b>";
    search.dispatchEvent(new Event("change"));
    expect(calls).toHaveLength(1);
    const msg = panel.el.querySelector(".rw-unit-search-msg")!;
    expect(msg.textContent).toBe('no unit "<b>9</b>": expected a whole number from 0 to 5');
    expect(msg.querySelector("b")).toBeNull();
  });

  it("a legend per compared unit; removing one asks for the rest; the cursor follows t", () => {
    const { actions, calls } = recordingActions();
    const panel = createUnits(actions);
    panel.update(explorerState([lstm], { unit: 2, units: [2, 0, 5], t: 10 }));
    const entries = [...panel.el.querySelectorAll(".rw-units-entry")];
    expect(entries.map((e) => e.firstElementChild!.nextElementSibling!.textContent)).toEqual(["h unit 2", "h unit 0", "h unit 5"]);
    entries[1].querySelector("button")!.click();
    expect(calls).toEqual([["setUnits", [2, 5]]]);
    // (drawn on a canvas over the lines: cursor_line.ts)
    const cursor = panel.el.querySelector<HTMLCanvasElement>("canvas.rw-units-cursor");
    expect(cursorAt(cursor)).toBe(Math.floor(xOfStep(10, 40, PLOT_W)) / PLOT_W);
    panel.update(explorerState([lstm], { unit: 2, units: [2, 0, 5], t: 39 }));
    expect(cursorAt(cursor)).toBe(Math.floor(xOfStep(39, 40, PLOT_W)) / PLOT_W);
  });

  it("a window of a long sequence: the plot spans the steps held, the cursor and clicks follow", () => {
    const { actions, calls } = recordingActions();
    const panel = createUnits(actions);
    const windowed = { ...h, t0: 1000 }; // steps 1000..1039 of 5000
    const state = explorerState([layer("lstm.l0", "lstm", [windowed])], { steps: 5000, length: 5000, t: 1010 });
    panel.update(state);
    expect(panel.el.querySelector(".rw-units-range")!.textContent).toBe("steps 1000–1039 (the window held)");
    const cursor = panel.el.querySelector<HTMLCanvasElement>("canvas.rw-units-cursor");
    expect(cursorAt(cursor)).toBe(Math.floor(xOfStep(10, 40, PLOT_W)) / PLOT_W);
    panel.update({ ...state, t: 3000 });
    expect(cursorAt(cursor)).toBeNull(); // a step outside the window held: no cursor
    const plot = panel.el.querySelector<HTMLElement>(".rw-units-plot")!;
    plot.getBoundingClientRect = () => ({ left: 0, top: 0, width: PLOT_W, height: 120 }) as DOMRect;
    plot.dispatchEvent(new MouseEvent("click", { clientX: PLOT_W / 2, clientY: 10 }));
    expect(calls).toEqual([["setT", 1020]]);
    select(panel.el.querySelector<HTMLSelectElement>(".rw-order")!, "variance");
    expect(panel.el.querySelector(".rw-order-caption")!.textContent).toBe("by variance of h over steps 1000–1039");
  });

  it("clicking the plot asks for the step under the pointer", () => {
    const { actions, calls } = recordingActions();
    const panel = createUnits(actions);
    panel.update(explorerState([lstm]));
    const plot = panel.el.querySelector<HTMLElement>(".rw-units-plot")!;
    plot.getBoundingClientRect = () => ({ left: 100, top: 0, width: PLOT_W, height: 120 }) as DOMRect;
    plot.dispatchEvent(new MouseEvent("click", { clientX: 100 + PLOT_W / 2, clientY: 10, bubbles: true }));
    expect(calls).toEqual([["setT", 20]]);
  });
});

describe("bucketColumn", () => {
  it("finds the overview column of a step and the steps it covers, the last column short", () => {
    expect(bucketColumn(0, 10, 95)).toEqual({ column: 0, first: 0, last: 9 });
    expect(bucketColumn(19, 10, 95)).toEqual({ column: 1, first: 10, last: 19 });
    expect(bucketColumn(94, 10, 95)).toEqual({ column: 9, first: 90, last: 94 });
  });
});

describe("the unit lines' first draw", () => {
  it("waits for the resize observer's width instead of drawing the lines twice; the axes are labelled at once", () => {
    const resize = fakeResizeObservers();
    const getContext = HTMLCanvasElement.prototype.getContext;
    let draws = 0; // each drawing of the lines clears their canvas first
    const counting = new Proxy({}, { get: (_, name) => (name === "clearRect" ? () => draws++ : () => undefined) });
    const other = new Proxy({}, { get: () => () => undefined });
    HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
      return this.classList.contains("rw-units-lines") ? counting : other;
    } as unknown as typeof getContext;
    try {
      const q = quantity("c", 9, 2, (t, u) => (u === 0 ? (t % 2 ? 10 : -10) : t / 2));
      const state = explorerState([layer("l", "lstm", [q])], { unit: 1, units: [1, 0] });
      const panel = createUnits(recordingActions().actions);
      panel.update(state);
      expect(draws).toBe(0);
      const ticks = [...panel.el.querySelectorAll(".rw-units-yaxis:not(.rw-units-yaxis-right) .rw-tick")];
      expect(ticks.map((e) => e.textContent)).toEqual(["4.200", "2.000", "−0.200"]);
      resize.report(300, 80, ".rw-units-plot"); // the plot's observer (the cursor line laid over it has its own)
      expect(draws).toBe(1);
      expect(panel.el.querySelector<HTMLCanvasElement>("canvas.rw-units-lines")!.width).toBe(300);
      resize.report(300, 80, ".rw-units-plot");
      panel.update(state);
      expect(draws).toBe(1);
      resize.report(200, 80, ".rw-units-plot");
      expect(draws).toBe(2); // a new width redraws
      panel.destroy?.();
    } finally {
      resize.restore();
      HTMLCanvasElement.prototype.getContext = getContext;
    }
  });
});
