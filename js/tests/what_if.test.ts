// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { NEEDS_LIVE, REPLY_MS, SIDE_BY_SIDE_PX, WHAT_IF_CSS, type WhatIfModel, createWhatIf, editSteps, patchSources } from "../src/what_if";
import { SHEET_ATTRIBUTE, sheetKey } from "../src/sheet";
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
    expect(model.get("what_if")).toEqual({ op: "value", value: 2.5, source: 0, unit: 1, start: 1, end: 4, n: 1 });
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toContain("re-running the model");
    model.set("what_if_status", { live: true, n: 1, text: "compared below" });
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe("compared below");
    box.destroy();
  });

  it("says and asks for the steps as the model numbers them in a window of steps", () => {
    const model = new FakeModel<WhatIfModel>({ brush: [1, 4], what_if: {}, what_if_status: { live: true, n: 0, text: "" } });
    const box = createWhatIf(model);
    box.update(explorerState([lstm], { t: 2, unit: 1, firstStep: 120 }));
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe("unit 1 of lstm.l0 c, steps [121, 124)");
    click(box.el, ".rw-whatif-run");
    expect(model.get("what_if")).toEqual({ op: "zero", value: 0, source: 0, unit: 1, start: 121, end: 124, n: 1 });
    model.set("brush", []); // no brush: from step t to the element's end
    model.set("what_if_status", { live: true, n: 1, text: "" });
    box.update(explorerState([lstm], { t: 2, unit: 1, firstStep: 120 }));
    expect(box.el.querySelector(".rw-whatif-text")?.textContent).toBe("unit 1 of lstm.l0 c, steps [122, 126)");
    box.destroy();
  });

  it("lists the batch's elements and the traces given by name as patch sources, and asks for the one picked", () => {
    expect(patchSources(undefined)).toEqual([{ label: "element 0", source: 0 }]);
    const model = new FakeModel<WhatIfModel>({
      brush: [], what_if: {}, what_if_status: { live: true, n: 0, text: "", elements: 2, traces: ["deep", "<i>x</i>"] },
    });
    const box = createWhatIf(model);
    box.update(explorerState([lstm], { t: 3, unit: 2 }));
    const menu = box.el.querySelector<HTMLSelectElement>(".rw-whatif-source")!;
    const op = box.el.querySelector<HTMLSelectElement>(".rw-whatif-op")!;
    expect(menu.style.display).toBe("none");
    op.value = "patch";
    op.dispatchEvent(new Event("change"));
    expect(menu.style.display).toBe("");
    expect(box.el.querySelector<HTMLElement>(".rw-whatif-value")!.style.display).toBe("none");
    expect([...menu.options].map((o) => o.textContent)).toEqual(["element 0", "element 1", "deep", "<i>x</i>"]);
    expect(box.el.querySelector("i")).toBeNull(); // a name is text, never markup
    menu.value = "2";
    click(box.el, ".rw-whatif-run");
    expect(model.get("what_if")).toEqual({ op: "patch", value: 0, source: "deep", unit: 2, start: 3, end: 6, n: 1 });
    // new inputs of one element: the menu follows, keeping the trace picked
    model.set("what_if_status", { live: true, n: 1, text: "done", elements: 1, traces: ["deep", "<i>x</i>"] });
    expect([...menu.options].map((o) => o.textContent)).toEqual(["element 0", "deep", "<i>x</i>"]);
    expect(menu.value).toBe("1");
    box.destroy();
  });

  it("lays the comparison beside the view from a box wide enough, and under it below", () => {
    expect(WHAT_IF_CSS).toContain(`@container (min-width: ${SIDE_BY_SIDE_PX}px)`);
    expect(WHAT_IF_CSS).toContain("grid-template-columns: minmax(0, 3fr) minmax(0, 2fr)");
    expect(WHAT_IF_CSS).toMatch(/rw-whatif-panel:not\(\.rw-cmp-closed\)\)\s*>\s*\.rw-whatif-panel \{ grid-column: 2; \}/);
    const box = createWhatIf(new FakeModel<WhatIfModel>({ what_if_status: {} }));
    document.body.append(box.el); // the page's one copy of the rules (sheet.ts), in its head
    const sheet = document.head.querySelector(`style[${SHEET_ATTRIBUTE}="${sheetKey("rw-whatif", WHAT_IF_CSS)}"]`);
    expect(sheet!.textContent).toBe(WHAT_IF_CSS);
    expect(box.el.querySelector("style")).toBeNull();
    box.el.remove();
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
