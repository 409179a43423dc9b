// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { followWindows, windowToAsk } from "../src/lod";
import { windowInLayer } from "../src/timeaxis";
import { selectedQuantity, valueAt } from "../src/state";
import { type Change, type ExplorerModel, ExplorerStore } from "../src/store";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";
import { lodPayload, windowValues } from "./payload";

describe("windowInLayer", () => {
  it("keeps a long sequence's window inside a shorter layer's own steps", () => {
    expect(windowInLayer(500, 100, 1000)).toEqual({ t0: 500, held: 100 });
    expect(windowInLayer(500, 100, 550)).toEqual({ t0: 450, held: 100 }); // clamped to end at its last step
    expect(windowInLayer(500, 100, 40)).toEqual({ t0: 0, held: 40 }); // shorter than a window: whole
  });
});

describe("windowToAsk", () => {
  it("asks for nothing while t is well inside the window held", () => {
    // window [100, 200) of 1000: a quarter of it (25 steps) from either edge is "near"
    expect(windowToAsk(125, 100, 100, 1000)).toBeNull();
    expect(windowToAsk(174, 100, 100, 1000)).toBeNull();
  });

  it("asks for the window centred on t near either edge", () => {
    expect(windowToAsk(124, 100, 100, 1000)).toBe(74);
    expect(windowToAsk(175, 100, 100, 1000)).toBe(125);
    expect(windowToAsk(500, 100, 100, 1000)).toBe(450); // far outside it: the window around t
  });

  it("keeps the window inside the sequence, and asks for none past its ends", () => {
    expect(windowToAsk(0, 0, 100, 1000)).toBeNull(); // at the start already
    expect(windowToAsk(999, 900, 100, 1000)).toBeNull(); // at the end already
    expect(windowToAsk(10, 30, 100, 1000)).toBe(0);
    expect(windowToAsk(990, 850, 100, 1000)).toBe(900);
  });
});

const f = (t: number, u: number) => (t % 7) / 10 - u / 10;

/** A 1,000-step sequence of 3 units held as a window of 100 steps from 0, with the protocol running. */
function following() {
  const { index, buffer } = lodPayload(1000, 3, 100, 0, 10, f);
  const model = new FakeModel<ExplorerModel>({
    index, buffer, tokens: null, t: 0, unit: 0, layer: "rnn.l0", quantity: "h", playing: false, interval: 150,
  });
  const store = new ExplorerStore(model, playerOf(model, () => 999));
  const lod = followWindows(model, store);
  store.subscribe((change: Change) => lod.update(change));
  store.load();
  const reply = (t0: number, held = 100) =>
    model.emit("msg:custom", { type: "window", t0, held }, [new DataView(Float32Array.from(windowValues(3, held, t0, f)).buffer)]);
  const asked = () => model.sent.map((m) => m.content);
  return { model, store, lod, reply, asked };
}

describe("following a long sequence's window", () => {
  it("asks once near the edge, until the reply comes, then holds the steps it brought", () => {
    const { store, reply, asked } = following();
    store.actions.setT(70);
    expect(asked()).toEqual([]);
    store.actions.setT(80);
    store.actions.setT(90); // the request is still out: not asked again
    expect(asked()).toEqual([{ type: "window", start: 30 }]);
    reply(30);
    const q = selectedQuantity(store.state);
    expect([q.t0, q.steps]).toEqual([30, 100]);
    expect(valueAt(q, 125, 2)).toBeCloseTo(f(125, 2), 6);
    expect(valueAt(q, 20, 0)).toBeNaN();
    store.actions.setT(110); // near the new window's end
    expect(asked()).toEqual([{ type: "window", start: 30 }, { type: "window", start: 60 }]);
  });

  it("asks again at once when t has moved on while the reply was out", () => {
    const { store, reply, asked } = following();
    store.actions.setT(80);
    store.actions.setT(500);
    reply(30);
    expect(asked()).toEqual([{ type: "window", start: 30 }, { type: "window", start: 450 }]);
  });

  it("ignores what is not its reply, and starts afresh with a new payload", async () => {
    const { model, store, reply, asked } = following();
    store.actions.setT(80);
    model.emit("msg:custom", { type: "step", t: 80 }, []);
    model.emit("msg:custom", { type: "window", t0: 30, held: 100 }, []); // no buffer
    reply(30, 50); // another payload's windows
    expect(selectedQuantity(store.state).t0).toBe(0);
    const { index, buffer } = lodPayload(1000, 3, 100, 0, 10, f);
    model.set("index", index);
    model.set("buffer", buffer);
    await Promise.resolve(); // the new payload's window is from 0 again: t = 80 is near its end
    expect(asked()).toEqual([{ type: "window", start: 30 }, { type: "window", start: 30 }]);
  });

  it("asks nothing when only the units compared change, and stops listening when destroyed", () => {
    const { model, store, lod, asked } = following();
    const before = model.listenerCount();
    store.actions.setUnits([1, 2]);
    expect(asked()).toEqual([]);
    lod.destroy?.();
    expect(model.listenerCount()).toBe(before - 1);
  });

  it("asks nothing for a sequence sent whole", () => {
    const { model, store, lod, asked } = following();
    const whole = { ...model.get("index"), lod: null };
    model.state.index = whole;
    store.load();
    store.actions.setT(90);
    lod.update("step");
    expect(asked()).toEqual([]);
  });
});
