// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import {
  type CompareIndex, type CompareModel, decodeCompare, differingUnits, divergenceText, firstDivergence, keepUnits,
  renderCompare, span,
} from "../src/compare";
import type { Quantity } from "../src/state";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";
import { KINDS } from "./payload";

/** A difference quantity from rows of values per step. */
function diffOf(rows: number[][]): Quantity {
  const units = rows[0].length;
  return { name: "h A − B", units, steps: rows.length, data: Float32Array.from(rows.flat()), scale: "diverging", vmin: -1, vmax: 1 };
}

describe("the comparison's analysis (comparison.py's rule)", () => {
  const diff = diffOf([[0, 0, 0], [0, 0.0005, 0], [0, 0, 0.01], [0.5, 0, 0], [2, 2, 2]]);
  it("finds the first step where any unit differs by more than τ, among the matched steps", () => {
    expect(firstDivergence(diff, 5, 1e-3)).toBe(2);
    expect(firstDivergence(diff, 5, 1e-4)).toBe(1);
    expect(firstDivergence(diff, 5, 0.1)).toBe(3);
    expect(firstDivergence(diff, 3, 0.1)).toBe(-1); // steps 3.. are unmatched
    expect(firstDivergence(diff, 5, 5)).toBe(-1);
    expect(firstDivergence(diffOf([[0, NaN]]), 1, 1)).toBe(0); // a run that blew up differs
  });
  it("lists the units that differ anywhere, in order", () => {
    expect(differingUnits(diff, 5, 1e-3)).toEqual([0, 1, 2]);
    expect(differingUnits(diff, 4, 1e-3)).toEqual([0, 2]);
    expect(differingUnits(diff, 4, 0.1)).toEqual([0]);
    expect(differingUnits(diff, 0, 0)).toEqual([]);
  });
  it("keeps only the filtered units, in the order given", () => {
    const kept = keepUnits(diffOf([[1, 2, 3], [4, 5, 6]]), [2, 0]);
    expect(kept.units).toBe(2);
    expect(Array.from(kept.data)).toEqual([3, 1, 6, 4]);
  });
  it("places marks by percent of the time axis and says what diverged in words", () => {
    expect(span(3, 4, 8)).toEqual({ left: "37.5000%", width: "12.5000%" });
    expect(span(8, 8, 8).width).toBe("0.0000%");
    expect(divergenceText(2, 0.001, "h", 5, 8)).toBe("h first differs at step 2 (some unit's |A − B| > τ = 0.001) (steps 5–7 are in one run only)");
    expect(divergenceText(-1, 0.5, "c", 8, 8)).toBe("c: no unit differs by more than τ = 0.500 over the 8 matched steps");
  });
});

const UNITS = 3;
const A_STEPS = 6;
const B_STEPS = 4;

/** A payload as payload.compare_payload lays it out: A (6 steps), B (4 steps), A − B, per quantity. */
function comparePayload(names: [string, string] = ["A", "B"], tokens: [string[] | null, string[] | null] = [null, null]) {
  const steps = A_STEPS;
  const a = (t: number, u: number) => Math.tanh(t - u);
  const b = (t: number, u: number) => (t < B_STEPS ? a(t, u) + (t >= 2 && u === 1 ? 0.3 : 0) : 0);
  const floats: number[] = [];
  const put = (f: (t: number, u: number) => number) => {
    const offset = floats.length;
    for (let t = 0; t < steps; t++) for (let u = 0; u < UNITS; u++) floats.push(f(t, u));
    return offset;
  };
  const quantity = (name: string) => ({
    name, units: UNITS, scale: "diverging" as const, vmin: -1, vmax: 1,
    a: put(a), b: put(b), diff: put((t, u) => (t < B_STEPS ? a(t, u) - b(t, u) : 0)), dmax: 0.3,
  });
  const ids = floats.length;
  for (let t = 0; t < A_STEPS; t++) floats.push(0, 1);
  const probs = floats.length;
  for (let t = 0; t < A_STEPS; t++) floats.push(0.7, 0.3);
  const index: CompareIndex = {
    names,
    layers: [{ name: "lstm.l0", kind: "lstm", reverse: false, recurrence: KINDS.lstm, steps, lengths: [A_STEPS, B_STEPS], tokens,
               quantities: [quantity("h"), quantity("c")] }],
    predictions: [{ k: 2, steps: A_STEPS, ids, probs, labels: ["(", ")"] }, null],
  };
  const bytes = new Float32Array(floats);
  return { index, buffer: new DataView(bytes.buffer) };
}

function mount(over: Partial<CompareModel> = {}, payload = comparePayload()) {
  const model = new FakeModel<CompareModel>({
    ...payload, t: 0, unit: 0, layer: "lstm.l0", quantity: "h", tau: 0.001, differing_only: false,
    playing: false, interval: 150, ...over,
  });
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = renderCompare(model, el);
  const root = el.querySelector<HTMLElement>(".rw-compare")!;
  const text = (cls: string) => el.querySelector(cls)!.textContent;
  const key = (k: string) => root.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
  return { model, el, root, cleanup, text, key };
}

afterEach(() => document.body.replaceChildren());

describe("the compare view", () => {
  it("decodes the payload into zero-copy views and refuses an index that does not fit", () => {
    const { index, buffer } = comparePayload();
    const floats = new Float32Array(buffer.buffer);
    const data = decodeCompare(index, floats);
    const h = data.layers[0].quantities.h;
    expect(h.a.data.buffer).toBe(floats.buffer);
    expect(h.b.data[2 * UNITS + 1]).toBeCloseTo(Math.tanh(1) + 0.3, 6);
    expect(h.diff.vmax).toBe(0.3);
    expect(data.layers[0].matched).toBe(B_STEPS);
    expect(data.predictions[0]?.labels).toEqual(["(", ")"]);
    expect(() => decodeCompare(index, floats.subarray(0, 10))).toThrow(/expected 18 values at \d+, the buffer holds 10/);
  });

  it("marks the first divergence, hatches the steps past B's end and says both in words", () => {
    const { el, text } = mount();
    expect(text(".rw-divergence")).toContain("h first differs at step 2");
    expect(text(".rw-divergence")).toContain("steps 4–5 are in one run only");
    const marker = el.querySelector<HTMLElement>(".rw-cmp-panel-diff .rw-cmp-marker")!;
    expect(marker.style.display).toBe("block");
    expect(marker.style.left).toBe(span(2, 3, A_STEPS).left);
    expect(el.querySelector<HTMLElement>(".rw-cmp-panel-a .rw-cmp-unmatched")!.style.display).toBe("none");
    const hatch = el.querySelector<HTMLElement>(".rw-cmp-panel-b .rw-cmp-unmatched")!;
    expect(hatch.style.display).toBe("block");
    expect(hatch.style.left).toBe(span(4, 6, A_STEPS).left);
    expect(text(".rw-cmp-flag")).toBe("▼ first divergence: step 2");
  });

  it("numbers two windows of the model's steps from their start, as the model does", () => {
    const payload = comparePayload();
    const { el, text, key } = mount({}, { ...payload, index: { ...payload.index, first_step: 120 } });
    expect(text(".rw-divergence")).toContain("h first differs at step 122");
    expect(text(".rw-divergence")).toContain("steps 124–125 are in one run only");
    expect(text(".rw-cmp-flag")).toBe("▼ first divergence: step 122");
    expect(text(".rw-step")).toBe("step 120 / 125");
    expect(el.querySelector(".rw-cmp-panel-b .rw-cmp-unmatched")!.textContent).toBe("B ends at step 123");
    for (let i = 0; i < 4; i++) key("ArrowRight");
    expect(text(".rw-cmp-at-a .rw-token-at")).toBe("input step 124");
    expect(text(".rw-cmp-at-b .rw-token-at")).toBe("no step 124: the run has 4");
  });

  it("moves one cursor with the keys in every panel, and each run's input and predictions at t", () => {
    const { model, key, text } = mount({}, comparePayload(["A", "B"], [["a", "b", "c", "d", "e", "f"], ["a", "b", "X", "d"]]));
    expect(text(".rw-step")).toBe("step 0 / 5");
    key("ArrowRight");
    key("ArrowRight");
    expect(playerOf(model, () => 0).t).toBe(2);
    expect(text(".rw-step")).toBe("step 2 / 5");
    expect(text(".rw-cmp-at-a .rw-token-at")).toBe("input c");
    expect(text(".rw-cmp-at-b .rw-token-at")).toBe("input X");
    expect(text(".rw-cmp-at-a .rw-predictions")).toBe("next: ( 70% · ) 30%");
    expect(text(".rw-cmp-at-b .rw-predictions")).toBe("");
    key("End");
    expect(text(".rw-cmp-at-b .rw-token-at")).toBe("no step 5: the run has 4");
    key("ArrowDown");
    expect(model.get("unit")).toBe(1);
    key("ArrowUp");
    key("ArrowUp");
    expect(model.get("unit")).toBe(0);
  });

  it("redraws for τ and the differing-units filter in the page, and sends them to the kernel", () => {
    const { model, el, text } = mount();
    const filter = el.querySelector<HTMLInputElement>(".rw-differing")!;
    filter.checked = true;
    filter.dispatchEvent(new Event("change"));
    expect(model.get("differing_only")).toBe(true);
    expect(text(".rw-divergence")).toContain("1 of 3 units differ");
    const rows = [...el.querySelectorAll(".rw-cmp-panel-a .rw-row-axis .rw-tick")].map((t) => t.textContent);
    expect(rows).toEqual(["1"]);
    const tau = el.querySelector<HTMLInputElement>(".rw-tau")!;
    tau.value = "1";
    tau.dispatchEvent(new Event("change"));
    expect(model.get("tau")).toBe(1);
    expect(text(".rw-divergence")).toContain("no unit differs by more than τ = 1.000");
    expect(el.querySelector<HTMLElement>(".rw-cmp-marker")!.style.display).toBe("none");
    tau.value = "-2";
    tau.dispatchEvent(new Event("change"));
    expect(model.get("tau")).toBe(1); // not a τ: the last one stays
    expect(tau.value).toBe("1");
  });

  it("shows names and tokens as text, never markup", () => {
    const hostile = "<img src=x onerror=alert(1)>";
    const { el } = mount({}, comparePayload([hostile, "<b>B</b>"], [[hostile, "b", "c", "d", "e", "f"], null]));
    expect(el.querySelector("img, b")).toBeNull();
    expect(el.querySelector(".rw-cmp-at-a .rw-cmp-name")!.textContent).toBe(hostile);
    expect(el.querySelector(".rw-cmp-panel-a .rw-cmp-title")!.textContent).toContain(hostile);
  });

  it("heads itself with the heading as text, and its × hides it at once and tells the kernel", () => {
    const plain = mount();
    expect(plain.el.querySelector<HTMLElement>(".rw-cmp-heading")!.style.display).toBe("none");
    plain.cleanup();
    document.body.replaceChildren();
    const heading = "What if unit 1 were <b>clamped</b>";
    const { model, el, cleanup } = mount({ heading, closable: true, closed: false });
    expect(el.querySelector(".rw-cmp-heading-text")!.textContent).toBe(heading);
    expect(el.querySelector("b")).toBeNull();
    const close = el.querySelector<HTMLButtonElement>(".rw-cmp-close")!;
    expect(close.style.display).toBe("");
    expect(close.getAttribute("aria-label")).toBe("close this comparison");
    close.click();
    expect(model.get("closed")).toBe(true);
    expect(model.saves).toBe(1);
    expect(el.style.display).toBe("none");
    expect(el.classList.contains("rw-cmp-closed")).toBe(true);
    model.set("heading", "another edit");
    expect(el.querySelector(".rw-cmp-heading-text")!.textContent).toBe("another edit");
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });

  it("follows a layer or quantity picked in the kernel and cleans up its listeners", () => {
    const { model, el, cleanup } = mount();
    model.set("quantity", "c");
    expect(el.querySelector(".rw-cmp-panel-a .rw-cmp-title")!.textContent).toBe("A: c of lstm.l0, 6 steps");
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("a comparison over its budget", () => {
  it("names every layer in the picker, and asks the kernel for one it does not hold", () => {
    const payload = comparePayload();
    payload.index.all_layers = ["lstm.l0", "lstm.l1"];
    const { model, el, text } = mount({}, payload);
    const select = el.querySelector<HTMLSelectElement>(".rw-layer")!;
    expect([...select.options].map((o) => o.value)).toEqual(["lstm.l0", "lstm.l1"]);
    const saves = model.saves;
    select.value = "lstm.l1";
    select.dispatchEvent(new Event("change"));
    expect(model.get("layer")).toBe("lstm.l1");
    expect(model.saves).toBe(saves + 1);
    expect(text(".rw-divergence")).toContain("lstm.l1 is not held in this page (it holds lstm.l0)");
  });
});

describe("layers of their own lengths", () => {
  it("keeps the step and unit inside a layer picked with fewer of them", () => {
    const payload = comparePayload();
    const [lstm] = payload.index.layers;
    payload.index.layers.push({ ...lstm, name: "decoder.l0", steps: 3, lengths: [3, 3],
      quantities: lstm.quantities.map((q) => ({ ...q, units: 2 })) });
    const { model, key, text } = mount({}, payload);
    key("End");
    key("ArrowDown");
    key("ArrowDown");
    expect(text(".rw-step")).toBe("step 5 / 5");
    expect(model.get("unit")).toBe(2);
    model.set("layer", "decoder.l0");
    expect(text(".rw-step")).toBe("step 2 / 2");
    expect(text(".rw-cmp-panel-a .rw-cmp-title")).toBe("A: h of decoder.l0, 3 steps");
    key("ArrowUp");
    expect(model.get("unit")).toBe(0);
  });
});
