// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { selectedQuantity } from "../src/state";
import { type Change, type ExplorerModel, ExplorerStore, layerSteps, rowOfUnit, unitAtRow } from "../src/store";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";
import { buildPayload } from "./payload";

const STEPS = 5;

/** An LSTM layer (h of 2 units, c of 4: proj_size) and a GRU layer, over STEPS steps. */
function storeOf(over: Partial<ExplorerModel> = {}) {
  const { index, buffer } = buildPayload(STEPS, [
    { name: "lstm.l0", kind: "lstm", quantities: [
      { name: "h", units: 2, f: (t, u) => t + 10 * u },
      { name: "c", units: 4, f: (t, u) => -t - 10 * u },
    ] },
    { name: "gru.l0", kind: "gru", quantities: [{ name: "h", units: 3, f: (t, u) => 100 + t + 10 * u }] },
  ], { length: 4 });
  const model = new FakeModel<ExplorerModel>({
    index, buffer, tokens: ["a", "b", "c", "d"], t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150, ...over,
  });
  const player = playerOf(model, () => Math.max(0, model.get("index").steps - 1));
  const store = new ExplorerStore(model, player);
  const changes: Change[] = [];
  store.subscribe((c) => changes.push(c));
  return { model, player, store, changes };
}

describe("the Explorer's store", () => {
  it("loads the payload and clamps the model's selection into it", () => {
    const { store, changes } = storeOf({ layer: "no such layer", quantity: "forget", unit: 7, t: 3 });
    store.load();
    const s = store.state;
    expect([s.layer, s.quantity, s.unit, s.t, s.steps, s.length]).toEqual(["lstm.l0", "h", 1, 3, STEPS, 4]);
    expect(s.layers.map((l) => l.name)).toEqual(["lstm.l0", "gru.l0"]);
    expect(s.tokens).toEqual(["a", "b", "c", "d"]);
    expect(s.units).toEqual([1, 0]); // the selected unit first, then those compared before
    expect(store.index?.steps).toBe(STEPS);
    expect(store.overview).toBeNull();
    expect(changes).toEqual(["payload"]);
  });

  it("names what each change touched: a layer or quantity, else the step", () => {
    const { model, store, changes } = storeOf();
    store.load();
    model.set("unit", 1);
    model.set("quantity", "c");
    model.set("layer", "gru.l0"); // no c there: back to its first quantity
    expect(changes).toEqual(["payload", "step", "layer", "layer"]);
    expect([store.state.layer, store.state.quantity, store.state.unit]).toEqual(["gru.l0", "h", 1]);
  });

  it("moves the step in the page at once and leaves the save to the transport", () => {
    const { model, store, changes } = storeOf();
    store.load();
    store.actions.setT(2);
    store.actions.setT(99); // clamped to the last step
    expect([store.state.t, model.get("t"), model.saves]).toEqual([STEPS - 1, 0, 0]);
    expect(changes).toEqual(["payload", "step", "step"]);
  });

  it("goes to a step the kernel names in a message", () => {
    const { model, store } = storeOf();
    store.load();
    model.emit("msg:custom", { type: "step", t: 3 }, []);
    expect(store.state.t).toBe(3);
    model.emit("msg:custom", { type: "step", t: "4" }, []); // not a step: ignored
    expect(store.state.t).toBe(3);
  });

  it("clamps a unit asked for to the selected quantity's units, and saves it", () => {
    const { model, store } = storeOf({ quantity: "c" });
    store.load();
    store.actions.setUnit(9.2);
    expect([model.get("unit"), store.state.unit, model.saves]).toEqual([3, 3, 1]); // c has 4 units, h 2
    store.actions.setUnit(-1);
    expect(model.get("unit")).toBe(0);
  });

  it("keeps the units compared, the selected one first, and redraws only the panels for them", () => {
    const { model, store, changes } = storeOf({ quantity: "c" });
    store.load();
    store.actions.setUnits([2, 3]);
    expect([store.state.units, changes.at(-1)]).toEqual([[2, 3], "units"]);
    store.actions.setUnits([]); // none: the selected unit alone
    expect(store.state.units).toEqual([0]);
    store.actions.setUnits([2, 3]);
    model.set("unit", 3);
    expect(store.state.units).toEqual([3, 2]);
    model.set("quantity", "h"); // 2 units: unit 3 and 2 are gone, the unit is clamped to 1
    expect(store.state.units).toEqual([1]);
  });

  it("keeps a row order until the layer changes or its length no longer fits", () => {
    const { model, store, changes } = storeOf({ quantity: "c" });
    store.load();
    const order = Int32Array.from([3, 2, 1, 0]);
    store.actions.setOrder(order);
    expect([store.state.order, changes.at(-1)]).toEqual([order, "order"]);
    expect([rowOfUnit(store.state, 3), unitAtRow(store.state, 1)]).toEqual([0, 2]);
    model.set("unit", 1);
    expect(store.state.order).toBe(order);
    model.set("quantity", "h"); // 2 units: an order of 4 does not fit
    expect(store.state.order).toBeNull();
    store.actions.setOrder(Int32Array.from([1, 0]));
    model.set("layer", "gru.l0");
    expect(store.state.order).toBeNull();
    expect([rowOfUnit(store.state, 2), unitAtRow(store.state, 2)]).toEqual([2, 2]);
  });

  it("decodes a new payload once for its index, buffer and tokens together", async () => {
    const { model, store, changes } = storeOf({ t: 4, unit: 1 });
    store.load();
    const small = buildPayload(2, [{ name: "rnn.l0", kind: "rnn", quantities: [{ name: "h", units: 1, f: () => 0 }] }]);
    model.set("index", small.index);
    model.set("buffer", small.buffer);
    model.set("tokens", null);
    expect(changes).toEqual(["payload"]); // not yet: once the message's traits are all set
    await Promise.resolve();
    expect(changes).toEqual(["payload", "payload"]);
    expect([store.state.layer, store.state.steps, store.state.unit, store.state.t, store.state.tokens]).toEqual(["rnn.l0", 2, 0, 1, null]);
  });

  it("selects a cell's unit and step and saves both at once", () => {
    const { model, store } = storeOf();
    store.load();
    store.select(3, 1);
    expect([model.get("unit"), model.get("t"), store.state.t, store.state.unit, model.saves]).toEqual([1, 3, 3, 1, 1]);
  });

  it("adopts a window of steps as a step change", () => {
    const { store, changes } = storeOf();
    store.load();
    const layers = store.state.layers.map((l) => ({ ...l }));
    store.adoptWindow({ layers, inputs: null });
    expect(store.state.layers).toBe(layers);
    expect(changes.at(-1)).toBe("step");
    expect(selectedQuantity(store.state).name).toBe("h");
  });

  it("plays and pauses through the player", () => {
    const { model, store } = storeOf();
    store.load();
    store.togglePlay();
    expect([model.get("playing"), model.saves]).toEqual([true, 1]);
  });

  it("shows each layer on its own time axis: steps, length, tokens and the last step follow the layer", () => {
    // an encoder over 7 source tokens and its decoder run for 10 steps, as payload.py sends them
    const { index, buffer } = buildPayload(10, [
      { name: "encoder.gru.l0", kind: "gru", steps: 7, length: 7, tokens: ["a", "b", "c", "d", "e", "f", "g"],
        quantities: [{ name: "h", units: 2, f: (t, u) => t + 10 * u }] },
      { name: "decoder.gru.l0", kind: "gru", steps: 10, length: 9,
        tokens: ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"],
        quantities: [{ name: "h", units: 2, f: (t, u) => -t - 10 * u }] },
    ], { length: 7, predictions: { k: 1, labels: ["x"], ids: () => 0, probs: (t) => t / 10 } });
    const model = new FakeModel<ExplorerModel>({
      index, buffer, tokens: null, t: 0, unit: 0, layer: "decoder.gru.l0", quantity: "h", playing: false, interval: 150,
    });
    const player = playerOf(model, () => layerSteps(model.get("index"), model.get("layer")) - 1);
    const store = new ExplorerStore(model, player);
    store.load();
    const s = store.state;
    expect([s.steps, s.length, s.tokens?.[9], s.predictions?.steps]).toEqual([10, 9, "J", 10]);
    store.actions.setT(99); // the decoder's last step, not the encoder's
    expect(s.t).toBe(9);
    expect(selectedQuantity(s).data[9 * 2]).toBe(-9);
    model.set("layer", "encoder.gru.l0"); // 7 steps: the step moves to its last, in the page and the player
    expect([s.layer, s.steps, s.length, s.t, player.t, s.tokens?.[6]]).toEqual(["encoder.gru.l0", 7, 7, 6, 6, "g"]);
    expect(s.predictions).toBeNull(); // the decoder's outputs are not the encoder's steps
    store.actions.setT(9);
    expect(s.t).toBe(6);
    expect([layerSteps(index, "decoder.gru.l0"), layerSteps(index, "no such layer"), layerSteps(null, "x")]).toEqual([10, 7, 1]);
  });

  it("reads payloads without per-layer axes on the index's steps, length and the tokens trait", () => {
    const { model, store } = storeOf();
    const index = model.get("index");
    for (const layer of index.layers) {  // as a notebook saved by an earlier version holds it
      delete layer.steps;
      delete layer.length;
    }
    store.load();
    expect(layerSteps(index, "lstm.l0")).toBe(STEPS);
    const s = store.state;
    expect([s.steps, s.length, s.tokens]).toEqual([STEPS, 4, ["a", "b", "c", "d"]]);
    expect(s.layers.map((l) => [l.steps, l.length])).toEqual([[STEPS, 4], [STEPS, 4]]);
  });

  it("stops listening when destroyed", () => {
    const { model, player, store, changes } = storeOf();
    store.load();
    expect(model.listenerCount()).toBeGreaterThan(0);
    store.destroy();
    expect(model.listenerCount()).toBe(0);
    player.setT(2);
    model.set("unit", 1);
    expect(changes).toEqual(["payload"]);
  });
});
