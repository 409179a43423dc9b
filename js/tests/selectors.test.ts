// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { createSelectors } from "../src/selectors";
import { type ExplorerModel, ExplorerStore } from "../src/store";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";
import { buildPayload } from "./payload";

function pickers() {
  const { index, buffer } = buildPayload(3, [
    { name: "lstm.l0", kind: "lstm", quantities: [{ name: "h", units: 2, f: () => 0 }, { name: "c", units: 2, f: () => 0 }] },
    { name: "gru.l0", kind: "gru", quantities: [{ name: "h", units: 2, f: () => 0 }, { name: "update", units: 2, f: () => 0 }] },
  ]);
  const model = new FakeModel<ExplorerModel>({
    index, buffer, tokens: null, t: 0, unit: 0, layer: "", quantity: "c", playing: false, interval: 150,
  });
  const store = new ExplorerStore(model, playerOf(model, () => 2));
  const selectors = createSelectors(model, store);
  store.subscribe((change) => selectors.update(change));
  store.load();
  const options = (select: HTMLSelectElement) => [...select.options].map((o) => o.textContent);
  return { model, selectors, options };
}

describe("the layer and quantity pickers", () => {
  it("list the payload's layers and the selected layer's quantities, the selection picked", () => {
    const { selectors, options } = pickers();
    expect(options(selectors.layer)).toEqual(["lstm.l0", "gru.l0"]);
    expect(options(selectors.quantity)).toEqual(["h", "c"]);
    expect([selectors.layer.value, selectors.quantity.value]).toEqual(["lstm.l0", "c"]);
  });

  it("follow a layer the kernel picks, with that layer's quantities", () => {
    const { model, selectors, options } = pickers();
    model.set("layer", "gru.l0");
    expect(selectors.layer.value).toBe("gru.l0");
    expect(options(selectors.quantity)).toEqual(["h", "update"]);
    expect(selectors.quantity.value).toBe("h"); // no c there
  });

  it("send a pick to the model and save it", () => {
    const { model, selectors } = pickers();
    selectors.quantity.value = "h";
    selectors.quantity.dispatchEvent(new Event("change"));
    expect([model.get("quantity"), model.saves]).toEqual(["h", 1]);
    selectors.layer.value = "gru.l0";
    selectors.layer.dispatchEvent(new Event("change"));
    expect([model.get("layer"), model.saves]).toEqual(["gru.l0", 2]);
  });
});
