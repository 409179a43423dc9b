// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { type ExplorerModel, renderExplorer } from "../src/explorer";
import { FakeModel } from "./fake_model";
import { buildPayload } from "./payload";

afterEach(() => document.body.replaceChildren());

/** An LSTM layer with proj_size 2: h has 2 units, the cell state and gates 4. */
function projectedLstm(quantity: string, unit: number) {
  const { index, buffer } = buildPayload(3, [
    { name: "lstm.l0", kind: "lstm", quantities: [
      { name: "h", units: 2, f: (t, u) => 0.1 * (t + u) },
      { name: "c", units: 4, f: (t, u) => 0.2 * (t - u) },
    ] },
  ]);
  // (the select-and-match traits a newer view reads are given too; an older one ignores them)
  const state = { index, buffer, tokens: null, t: 0, unit, layer: "lstm.l0", quantity, playing: false, interval: 150,
    brush: [], threshold: 0.5, highlight: [] } as ExplorerModel;
  const model = new FakeModel<ExplorerModel>(state);
  const el = document.createElement("div");
  document.body.append(el);
  renderExplorer(model, el);
  const key = (k: string) =>
    el.querySelector(".rw-explorer")!.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
  return { model, key };
}

describe("the unit range follows the selected quantity", () => {
  it("reaches the cell state's units beyond h's width", () => {
    const { model, key } = projectedLstm("c", 1);
    for (let i = 0; i < 5; i++) key("ArrowDown");
    expect(model.get("unit")).toBe(3); // c's last unit, past h's 2
  });

  it("stops at h's width when h is shown", () => {
    const { model, key } = projectedLstm("h", 0);
    for (let i = 0; i < 5; i++) key("ArrowDown");
    expect(model.get("unit")).toBe(1);
  });
});
