// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { NEEDS_LIVE, REPLY_MS, type WhatIfModel, createWhatIf, editSteps } from "../src/what_if";
import { explorerState, layer, quantity } from "./fake-state";
import { FakeModel } from "./fake_model";

const lstm = layer("lstm.l0", "lstm", [quantity("c", 6, 3, (t, u) => t - u)]);

function click(el: HTMLElement, selector: string) {
  (el.querySelector(selector) as HTMLButtonElement).click();
}

describe("what if box", () => {
  afterEach(() => vi.useRealTimers());

  it("edits the brushed steps, or from step t to the end without a brush", () => {
    expect(editSteps([2, 5], 0, 6)).toEqual([2, 5]);
    expect(editSteps([], 3, 6)).toEqual([3, 6]);
    expect(editSteps([4, 4], 5, 6)).toEqual([5, 6]);
    expect(editSteps(undefined, 5, 5)).toEqual([5, 6]);
  });

  it("asks the kernel for the selected unit's edit and shows its answer", () => {
    const model = new FakeModel<WhatIfModel>({ brush: [1, 4], what_if: {}, what_if_status: { live: true, n: 0, text: "" } });
    const box = createWhatIf(model);
    box.update(explorerState([lstm], { t: 2, unit: 1 }));
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe("unit 1 of lstm.l0 c, steps [1, 4)");
    (box.el.querySelector(".rw-whatif-op") as HTMLSelectElement).value = "value";
    (box.el.querySelector(".rw-whatif-value") as HTMLInputElement).value = "2.5";
    click(box.el, ".rw-whatif-run");
    expect(model.get("what_if")).toEqual({ op: "value", value: 2.5, source: 3, unit: 1, start: 1, end: 4, n: 1 });
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toContain("re-running the model");
    model.set("what_if_status", { live: true, n: 1, text: "compared below" });
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe("compared below");
    box.destroy();
  });

  it("says a live model is needed without one, or when no kernel answers", () => {
    vi.useFakeTimers();
    const model = new FakeModel<WhatIfModel>({ what_if_status: {} });
    const box = createWhatIf(model);
    box.update(explorerState([lstm], { t: 0 }));
    click(box.el, ".rw-whatif-run");
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe(NEEDS_LIVE);
    model.set("what_if_status", { live: true, n: 0, text: "" }); // saved by a kernel now gone
    click(box.el, ".rw-whatif-run");
    vi.advanceTimersByTime(REPLY_MS);
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe(NEEDS_LIVE);
    box.destroy();
  });
});
