/// <reference types="node" />
// Explorer payloads for the front end's tests. rnnwidgets/widgets/payload.py owns the format:
// `wireFixture()` reads the golden payloads it wrote (tests/wire_fixture.py), and `buildPayload`
// lays out payloads of any shape for tests in the same order — decode.test.ts checks that it
// rebuilds the fixture's index and bytes exactly, so it cannot drift from the Python writer.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ArrayEntry, PayloadIndex } from "../src/decode";
import type { LayerKind, Recurrence, Scale } from "../src/state";
import { windowInLayer } from "../src/timeaxis";

type Doc = {
  messages: Record<string, string>;
  kinds: Record<LayerKind, Recurrence>;
  batch: number;
  full: { index: PayloadIndex; buffer: string; samples: Sample[]; initial: Record<string, Record<string, number[]>> };
  window: { index: PayloadIndex; buffer: string; samples: Sample[] };
  reply: { message: { type: string; t0: number; held: number }; buffer: string; samples: Sample[] };
};
/** [layer, quantity, t, unit, value] read by Python straight from the trace. */
export type Sample = [string, string, number, number, number];

// a path, not a URL: a DOM test environment replaces the global URL
const fixtureFile = (name: string) => readFileSync(join(dirname(fileURLToPath(import.meta.url)), "fixtures", name));

/** The golden fixture, with each buffer as the DataView anywidget hands the view. */
export function wireFixture() {
  const doc = JSON.parse(fixtureFile("wire.json").toString("utf-8")) as Doc;
  const bytes = (name: string) => {
    const b = fixtureFile(name);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  };
  return {
    ...doc,
    fullBuffer: bytes(doc.full.buffer),
    windowBuffer: bytes(doc.window.buffer),
    replyBuffer: bytes(doc.reply.buffer),
  };
}

/** Each kind's gate and state names, as rnnwidgets/kinds.py describes them (from the fixture). */
export const KINDS: Record<LayerKind, Recurrence> = wireFixture().kinds;

export interface QuantitySpec {
  name: string;
  units: number;
  f: (t: number, u: number) => number;
  scale?: Scale;
  vmin?: number; // default: -1 diverging, 0 sequential
  vmax?: number; // default: 1
}

export interface LayerSpec {
  name: string;
  kind: LayerKind;
  reverse?: boolean; // default false
  recurrence?: Recurrence; // default: the kind's (KINDS)
  quantities: QuantitySpec[];
  initial?: Record<string, ArrayLike<number>>; // state name -> one value per unit
  steps?: number; // its own time axis (default: the payload's steps)
  length?: number; // this element's valid steps in it (default: the payload's length, cut at its steps)
  tokens?: string[] | null; // its own tokens (absent: the view's)
}

export interface PayloadOptions {
  length?: number;
  training?: boolean | null; // the mode the model was traced in (payload.py: trace.meta["training"])
  dropout?: boolean | null; // whether that mode dropped values (payload.py: trace.meta["dropout"])
  firstStep?: number; // the model's step number of step 0 (a window's start, payload.py first_step)
  inputs?: QuantitySpec;
  predictions?: { k: number; steps?: number; ids: (t: number, j: number) => number; probs: (t: number, j: number) => number; labels: string[] };
  // a long sequence: the step arrays hold [t0, t0 + held); the overview is min/max per `bucket` steps
  window?: { t0: number; held: number; overview: { layer: string; quantity: string; bucket: number } };
}

/** An index and buffer laid out as payload.build_payload lays them out: every layer's quantities
 * (and numeric inputs) for the steps held, then initial states, predictions, overview min and max. */
export function buildPayload(
  steps: number,
  layers: LayerSpec[],
  options: PayloadOptions = {},
): { index: PayloadIndex; buffer: DataView } {
  const values: number[] = [];
  const [t0, held] = options.window ? [options.window.t0, options.window.held] : [0, steps];
  const put = (rows: number, cols: number, f: (r: number, c: number) => number, from = 0) => {
    const offset = values.length;
    for (let r = from; r < from + rows; r++) for (let c = 0; c < cols; c++) values.push(f(r, c));
    return offset;
  };
  // each layer's window kept inside its own steps, as payload.py does (timeaxis window_in_layer)
  const entry = (q: QuantitySpec, own = steps): ArrayEntry => {
    const w = options.window ? windowInLayer(t0, held, own) : { t0: 0, held: own };
    const scale = q.scale ?? "diverging";
    const e: ArrayEntry = {
      name: q.name, offset: put(w.held, q.units, q.f, w.t0), steps: w.held, units: q.units, scale,
      vmin: q.vmin ?? (scale === "diverging" ? -1 : 0), vmax: q.vmax ?? 1,
    };
    if (options.window) e.t0 = w.t0;
    return e;
  };
  const indexLayers: PayloadIndex["layers"] = layers.map((l) => {
    const own = l.steps ?? steps;
    return {
      name: l.name, kind: l.kind, reverse: l.reverse ?? false, recurrence: l.recurrence ?? KINDS[l.kind],
      steps: own, length: l.length ?? Math.min(options.length ?? steps, own),
      ...(l.tokens !== undefined ? { tokens: l.tokens } : {}),
      quantities: l.quantities.map((q) => entry(q, own)),
    };
  });
  const inputs = options.inputs ? entry(options.inputs) : null;
  const floats = values.length;
  layers.forEach((l, k) => {
    if (!l.initial) return;
    indexLayers[k].initial = Object.fromEntries(Object.entries(l.initial).map(([name, v]) => [name, put(1, v.length, (_, u) => v[u])]));
  });
  const p = options.predictions;
  const ps = p?.steps ?? steps; // the model's output steps
  const predictions = p ? { k: p.k, steps: ps, ids: put(ps, p.k, p.ids), probs: put(ps, p.k, p.probs), labels: p.labels } : null;
  const index: PayloadIndex = { steps, length: options.length ?? steps, layers: indexLayers, inputs, predictions, lod: null,
    training: options.training ?? null, dropout: options.dropout ?? null, first_step: options.firstStep ?? 0 };
  if (options.window) {
    const { layer, quantity, bucket } = options.window.overview;
    const q = layers.find((l) => l.name === layer)!.quantities.find((s) => s.name === quantity)!;
    const columns = Math.ceil(steps / bucket);
    const reduce = (pick: (a: number[]) => number) => (c: number, u: number) => {
      const run = [];
      for (let t = c * bucket; t < Math.min(steps, (c + 1) * bucket); t++) run.push(q.f(t, u));
      return pick(run);
    };
    const min = put(columns, q.units, reduce((a) => Math.min(...a)));
    const max = put(columns, q.units, reduce((a) => Math.max(...a)));
    index.lod = { t0, held, floats, overview: { layer, quantity, bucket, min, max, columns, units: q.units } };
  }
  return { index, buffer: new DataView(Float32Array.from(values).buffer) };
}

/**
 * A long-sequence payload (index.lod) of one layer "rnn.l0" with one quantity "h" = f(t, u):
 * the window [t0, t0 + held) of every step array plus an overview in columns of `bucket` steps.
 */
export function lodPayload(steps: number, units: number, held: number, t0: number, bucket: number, f: (t: number, u: number) => number) {
  return buildPayload(steps, [{ name: "rnn.l0", kind: "rnn", quantities: [{ name: "h", units, f }] }],
    { window: { t0, held, overview: { layer: "rnn.l0", quantity: "h", bucket } } });
}

/** The float32 values of a window reply: f over steps [t0, t0 + held), time-major. */
export function windowValues(units: number, held: number, t0: number, f: (t: number, u: number) => number): number[] {
  const out = [];
  for (let t = t0; t < t0 + held; t++) for (let u = 0; u < units; u++) out.push(f(t, u));
  return out;
}
