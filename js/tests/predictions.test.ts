// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { createPredictions, predictionsColumns, predictionsText } from "../src/predictions";
import type { Predictions } from "../src/state";
import { explorerState, layer, quantity } from "./fake-state";

// top-2 of 3 labels at each of 2 steps
const predictions: Predictions = {
  k: 2, steps: 2, ids: Float32Array.of(0, 2, 1, 0), probs: Float32Array.of(0.6, 0.25, 0.9, 0.05), labels: ["a b", "<i>", "\n"],
};

describe("the predictions line", () => {
  it("lists the top labels at t, best first, with their whitespace visible", () => {
    expect(predictionsText(predictions, 0)).toBe("next: a␣b 60% · ⏎ 25%");
    expect(predictionsText(predictions, 1)).toBe("next: <i> 90% · a␣b 5%");
    expect(predictionsText(null, 0)).toBe("");
  });

  it("follows the step and shows labels as text only", () => {
    const panel = createPredictions();
    const state = explorerState([layer("rnn.l0", "rnn", [quantity("h", 2, 1, () => 0)])], { predictions });
    panel.update(state);
    expect(panel.el.className).toBe("rw-predictions");
    expect(panel.el.textContent).toBe("next: a␣b 60% · ⏎ 25%");
    panel.update({ ...state, t: 1 });
    expect(panel.el.textContent).toBe("next: <i> 90% · a␣b 5%");
    expect(panel.el.querySelector("i")).toBeNull();
    panel.update({ ...state, t: 1, predictions: null });
    expect(panel.el.textContent).toBe("");
  });

  it("is as wide as its widest line over the steps", () => {
    const widest = Math.max(...[0, 1].map((t) => predictionsText(predictions, t).length));
    expect(predictionsColumns(predictions)).toBe(widest);
    expect(predictionsColumns(null)).toBe(0);
  });
});
