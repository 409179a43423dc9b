import { describe, expect, it } from "vitest";
import { decodePayload, decodeWindow, floatsOf, MESSAGE } from "../src/decode";
import type { Decoded, PayloadIndex } from "../src/decode";
import { predictionsAt, stepAt, valueAt } from "../src/state";
import type { LayerData } from "../src/state";
import { buildPayload, lodPayload, windowValues, wireFixture } from "./payload";
import type { LayerSpec, Sample } from "./payload";

describe("the golden payload written by rnnwidgets/widgets/payload.py", () => {
  const fx = wireFixture();
  const full = decodePayload(fx.full.index, floatsOf(fx.fullBuffer));

  function expectSamples(layers: LayerData[], samples: Sample[]) {
    expect(samples.length).toBeGreaterThan(20);
    for (const [layer, quantity, t, u, value] of samples) {
      const q = layers.find((l) => l.name === layer)!.quantities[quantity];
      expect([layer, quantity, t, u, valueAt(q, t, u)]).toEqual([layer, quantity, t, u, Math.fround(value)]);
    }
  }

  it("names the message types as the kernel does", () => {
    expect(MESSAGE).toEqual(fx.messages);
    expect(fx.reply.message.type).toBe(MESSAGE.window);
  });

  it("decodes every layer's quantities, initial states, numeric inputs and top predictions", () => {
    expectSamples(full.layers, fx.full.samples);
    expect(full.layers.map((l) => l.name)).toEqual(["lstm.l0", "lstm.l0.reverse", "gru.l0", "decoder.rnn.l0"]);
    expect(Object.keys(full.layers[2].quantities)).toEqual(["h", "reset", "update", "new", "relu"]);
    // names and rules arrive as data: kinds.describe of each layer's equations, and its direction
    expect(full.layers.map((l) => [l.reverse, l.recurrence])).toEqual([
      [false, fx.kinds.lstm], [true, fx.kinds.lstm], [false, fx.kinds.gru], [false, fx.kinds.rnn]]);
    // each layer on its own time axis: the short one's steps, this element's length and its own tokens
    expect(full.layers.map((l) => [l.steps, l.length, l.tokens])).toEqual([
      [6, 4, undefined], [6, 4, undefined], [6, 4, undefined], [4, 3, ["<s>", "z", "</s>"]]]);
    expect(full.layers[3].quantities.h.steps).toBe(4);
    for (const layer of full.layers) {
      const initial = Object.fromEntries(Object.entries(layer.initial!).map(([k, v]) => [k, Array.from(v)]));
      expect(initial).toEqual(fx.full.initial[layer.name]);
    }
    expect(full.inputs!.units).toBe(2);
    const p = full.predictions!;
    expect(p.labels.every((label) => ["a", "b", "c", "d"].includes(label))).toBe(true);
    const best = predictionsAt(p, 0);
    expect(best.map((b) => b.prob)).toEqual([...best.map((b) => b.prob)].sort((a, b) => b - a));
    expect(full.overview).toBeNull();
  });

  it("decodes a long sequence's window, its overview and a window reply at the reply's start", () => {
    const windowed = decodePayload(fx.window.index, floatsOf(fx.windowBuffer));
    expectSamples(windowed.layers, fx.window.samples);
    const { t0, held } = fx.window.index.lod!;
    const h = windowed.layers[0].quantities.h;
    expect([h.t0, h.steps, valueAt(h, t0 - 1, 0)]).toEqual([t0, held, NaN]);
    // a shorter layer's window is kept inside its own 4 steps: [1, 4) where the others hold [2, 5)
    const short = windowed.layers[3].quantities.h;
    expect([t0, held, short.t0, short.steps]).toEqual([2, 3, 1, 3]);
    const o = windowed.overview!;
    const whole = full.layers.find((l) => l.name === o.layer)!.quantities[o.quantity];
    for (let c = 0; c < o.columns; c++) {
      for (let u = 0; u < o.units; u++) {
        const run = [];
        for (let t = c * o.bucket; t < Math.min(fx.full.index.steps, (c + 1) * o.bucket); t++) run.push(valueAt(whole, t, u));
        expect([o.min[c * o.units + u], o.max[c * o.units + u]]).toEqual([Math.min(...run), Math.max(...run)]);
      }
    }
    const reply = decodeWindow(fx.window.index, floatsOf(fx.replyBuffer), fx.reply.message.t0, floatsOf(fx.windowBuffer));
    expectSamples(reply.layers, fx.reply.samples);
    expect(Array.from(reply.layers[0].initial!.c)).toEqual(fx.full.initial["lstm.l0"].c.map(Math.fround));
  });

  /** The fixture's payload as buildPayload lays it out from the decoded values. */
  function rebuild(index: PayloadIndex, values: Decoded) {
    const f = (q: { data: Float32Array; units: number }) => (t: number, u: number) => q.data[t * q.units + u];
    const layers: LayerSpec[] = index.layers.map((l, k) => ({
      name: l.name, kind: l.kind, reverse: l.reverse, recurrence: l.recurrence, initial: values.layers[k].initial,
      steps: l.steps, length: l.length, ...(l.tokens !== undefined ? { tokens: l.tokens } : {}),
      quantities: l.quantities.map((e) => ({ ...e, f: f(values.layers[k].quantities[e.name]) })),
    }));
    const p = values.predictions!;
    const lod = index.lod;
    return buildPayload(index.steps, layers, {
      length: index.length,
      inputs: { ...index.inputs!, f: f(values.inputs!) },
      predictions: { k: p.k, steps: p.steps, labels: p.labels, ids: (t, j) => p.ids[t * p.k + j], probs: (t, j) => p.probs[t * p.k + j] },
      ...(lod ? { window: { t0: lod.t0, held: lod.held, overview: lod.overview } } : {}),
    });
  }

  it("is what the tests' buildPayload lays out: index and bytes", () => {
    for (const [index, buffer] of [[fx.full.index, fx.fullBuffer], [fx.window.index, fx.windowBuffer]] as const) {
      const built = rebuild(index, full);
      expect(built.index).toEqual(index);
      expect(new Uint8Array(built.buffer.buffer)).toEqual(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
    }
  });
});

describe("the float32 buffer", () => {
  it("is viewed without a copy when aligned", () => {
    const bytes = new ArrayBuffer(24);
    new Float32Array(bytes).set([1, 2, 3, 4, 5, 6]);
    const view = new DataView(bytes, 8, 12);
    const floats = floatsOf(view);
    expect(floats.buffer).toBe(bytes);
    expect(Array.from(floats)).toEqual([3, 4, 5]);
  });

  it("is copied once when it starts at an offset that is not a multiple of 4", () => {
    const bytes = new ArrayBuffer(14);
    const values = Float32Array.of(1.5, -2, 3.25);
    new Uint8Array(bytes).set(new Uint8Array(values.buffer), 2);
    const floats = floatsOf(new DataView(bytes, 2, 12));
    expect(Array.from(floats)).toEqual([1.5, -2, 3.25]);
  });

  it("accepts an ArrayBuffer and rejects a length that is not whole float32 values", () => {
    expect(floatsOf(Float32Array.of(7).buffer)[0]).toBe(7);
    expect(() => floatsOf(new DataView(new ArrayBuffer(6)))).toThrow(/not a whole number of float32/);
  });
});

describe("the payload index", () => {
  const { index, buffer } = buildPayload(3, [
    { name: "lstm.l0", kind: "lstm", quantities: [
      { name: "h", units: 2, f: (t, u) => 10 * t + u },
      { name: "forget", units: 2, f: (t, u) => 0.1 * (t + u), scale: "sequential" },
    ] },
    { name: "lstm.l1", kind: "lstm", quantities: [{ name: "h", units: 4, f: (t, u) => -(100 * t + u) }] },
  ]);

  it("turns each entry into a time-major view at its offset", () => {
    const { layers } = decodePayload(index, floatsOf(buffer));
    expect(layers.map((l) => l.name)).toEqual(["lstm.l0", "lstm.l1"]);
    const h0 = layers[0].quantities.h;
    expect([h0.units, h0.steps, h0.scale]).toEqual([2, 3, "diverging"]);
    expect(valueAt(h0, 2, 1)).toBe(21);
    expect(valueAt(layers[0].quantities.forget, 1, 1)).toBeCloseTo(0.2);
    expect(Array.from(stepAt(layers[1].quantities.h, 2))).toEqual([-200, -201, -202, -203]);
    expect(valueAt(h0, 3, 0)).toBeNaN();
    // views share the one buffer
    expect(h0.data.buffer).toBe(buffer.buffer);
  });

  it("keeps quantities named like Object's own properties as data, never as a prototype", () => {
    const names = ["__proto__", "constructor", "toString", "hasOwnProperty"];
    const { index: hostile, buffer: bytes } = buildPayload(2, [
      { name: "__proto__", kind: "custom", quantities: names.map((name, i) => ({ name, units: 1, f: (t: number) => 10 * i + t })) },
    ]);
    const layer = decodePayload(hostile, floatsOf(bytes)).layers[0];
    expect(Object.keys(layer.quantities)).toEqual(names);
    expect(names.map((name) => valueAt(layer.quantities[name], 1, 0))).toEqual([1, 11, 21, 31]);
    expect(Object.getPrototypeOf(layer.quantities)).toBeNull();
    expect("quantities" in {}).toBe(false); // nothing reached Object.prototype
    expect(layer.quantities.valueOf).toBeUndefined();
  });

  it("says what is wrong when an entry runs past the buffer", () => {
    const short = new DataView(buffer.buffer, 0, buffer.byteLength - 4);
    expect(() => decodePayload(index, floatsOf(short))).toThrow(/lstm.l1\/h expects 12 values at offset 12/);
  });

  it("decodes top-k predictions with their labels", () => {
    // after the arrays: ids (3 steps x k=2) then probs
    const floats = Float32Array.of(...new Float32Array(24), 1, 0, 0, 2, 2, 1, 0.7, 0.2, 0.5, 0.4, 0.9, 0.1);
    const p = decodePayload({ ...index, predictions: { k: 2, ids: 24, probs: 30, labels: ["a", "<b>", "c"] } }, floats)
      .predictions!;
    expect(predictionsAt(p, 1)).toEqual([{ label: "a", prob: 0.5 }, { label: "c", prob: expect.closeTo(0.4) }]);
    expect(predictionsAt(p, 2)[0]).toEqual({ label: "c", prob: expect.closeTo(0.9) });
  });
});

describe("a long sequence's payload", () => {
  const f = (t: number, u: number) => t + u / 10;

  it("holds a window at t0 and the overview's min and max", () => {
    const { index, buffer } = lodPayload(20, 2, 5, 10, 8, f);
    const { layers, overview } = decodePayload(index, floatsOf(buffer));
    const h = layers[0].quantities.h;
    expect([h.t0, h.steps]).toEqual([10, 5]);
    expect(valueAt(h, 12, 1)).toBeCloseTo(12.1);
    expect(valueAt(h, 9, 0)).toBeNaN();
    expect(Array.from(stepAt(h, 15))).toEqual([NaN, NaN]);
    expect([overview!.columns, overview!.bucket]).toEqual([3, 8]);
    expect(overview!.max[1 * 2 + 1]).toBeCloseTo(15.1);
    expect(overview!.min[2 * 2 + 0]).toBe(16);
  });

  it("decodes a window reply at its own start, and refuses one of another size", () => {
    const { index, buffer } = lodPayload(20, 2, 5, 0, 8, f);
    const reply = Float32Array.from(windowValues(2, 5, 15, f));
    const h = decodeWindow(index, reply, 15, floatsOf(buffer)).layers[0].quantities.h;
    expect(valueAt(h, 19, 1)).toBeCloseTo(19.1);
    expect(() => decodeWindow(index, reply.subarray(1), 15, floatsOf(buffer))).toThrow(/does not fit/);
  });

  it("reads each layer's initial state from the payload, also beside a window reply", () => {
    const { index, buffer } = lodPayload(20, 2, 5, 0, 8, f);
    const payload = floatsOf(buffer);
    const withInitial = Float32Array.from([...payload, -0.5, 0.25]); // (1, units) after everything
    index.layers[0].initial = { h: payload.length };
    expect(Array.from(decodePayload(index, withInitial).layers[0].initial!.h)).toEqual([-0.5, 0.25]);
    const reply = Float32Array.from(windowValues(2, 5, 15, f));
    expect(Array.from(decodeWindow(index, reply, 15, withInitial).layers[0].initial!.h)).toEqual([-0.5, 0.25]);
    index.layers[0].initial = { c: payload.length };
    expect(() => decodePayload(index, withInitial)).toThrow(/initial c but no c quantity/);
    index.layers[0].initial = { h: payload.length + 1 };
    expect(() => decodePayload(index, withInitial)).toThrow(/initial h expects 2 values/);
  });
});
