// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { type AttributionModel, columnsOf, createAttribution } from "../src/attribution";
import { explorerState, layer, quantity } from "./fake-state";
import { FakeModel } from "./fake_model";

const lstm = (steps: number) => layer("lstm.l0", "lstm", [quantity("h", steps, 2, (t, u) => Math.tanh(t - u))]);

describe("attribution strip", () => {
  it("gives each step its own column, or the largest in magnitude of the steps sharing one", () => {
    expect(Array.from(columnsOf([0.5, -2, 1], 3, 3))).toEqual([0.5, -2, 1]);
    expect(Array.from(columnsOf([0.5, -2, 1, 3], 4, 2))).toEqual([-2, 3]);
    expect(Array.from(columnsOf([1], 4, 4))).toEqual([1, 0, 0, 0]); // fewer values than steps
  });

  it("is hidden until the kernel sends one, then titles it as text", () => {
    const model = new FakeModel<AttributionModel>({ attribution: {} });
    const panel = createAttribution(model);
    const state = explorerState([lstm(4)], { t: 2, tokens: ["a", "b", "c", "d"] });
    panel.update(state);
    expect(panel.el.style.display).toBe("none");
    model.set("attribution", { t: 2, batch: 0, values: [0.1, -0.3, 0.2, 0], title: "why <b>x</b>" });
    expect(panel.el.style.display).toBe("");
    expect(panel.el.querySelector("b")).toBeNull();
    expect(panel.el.querySelector(".rw-attribution-text")?.textContent).toContain("why <b>x</b>");
    expect(panel.el.querySelector(".rw-attribution-text")?.textContent).toContain("largest 0.300");
  });

  it("says that a live model is needed for a step the kernel has not answered", () => {
    const model = new FakeModel<AttributionModel>({ attribution: { t: 1, batch: 0, values: [1, 2, 0, 0], title: "why" } });
    const panel = createAttribution(model);
    panel.update(explorerState([lstm(4)], { t: 3 }));
    const text = panel.el.querySelector(".rw-attribution-text")?.textContent ?? "";
    expect(text).toContain("step 3");
    expect(text).toContain("running kernel");
    expect((panel.el.querySelector(".rw-attribution-legend") as HTMLElement).style.display).toBe("none");
  });

  it("numbers a window's steps as the model does", () => {
    const model = new FakeModel<AttributionModel>({ attribution: { t: 1, batch: 0, values: [1, 2, 0, 0], title: "why" } });
    const panel = createAttribution(model);
    panel.update(explorerState([lstm(4)], { t: 3, firstStep: 120 }));
    expect(panel.el.querySelector(".rw-attribution-text")?.textContent).toBe("why the prediction at step 123: asked of " +
      "the live model when the step rests (it needs a running kernel; shown last for step 121)");
  });
});
