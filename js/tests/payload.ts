// Builds an Explorer payload (index + one float32 buffer) the way rnnwidgets/widgets/payload.py
// lays it out, from per-quantity functions of (t, u).
import type { ArrayEntry, PayloadIndex } from "../src/decode";
import type { LayerKind, Scale } from "../src/state";

export interface QuantitySpec {
  name: string;
  units: number;
  f: (t: number, u: number) => number;
  scale?: Scale;
}

export function buildPayload(
  steps: number,
  layers: { name: string; kind: LayerKind; quantities: QuantitySpec[] }[],
  over: Partial<PayloadIndex> = {},
): { index: PayloadIndex; buffer: DataView } {
  const values: number[] = [];
  const entry = (q: QuantitySpec): ArrayEntry => {
    const offset = values.length;
    for (let t = 0; t < steps; t++) for (let u = 0; u < q.units; u++) values.push(q.f(t, u));
    const scale = q.scale ?? "diverging";
    return { name: q.name, offset, units: q.units, steps, scale, vmin: scale === "diverging" ? -1 : 0, vmax: 1 };
  };
  const index: PayloadIndex = {
    steps,
    length: steps,
    layers: layers.map((l) => ({ name: l.name, kind: l.kind, quantities: l.quantities.map(entry) })),
    inputs: null,
    predictions: null,
    ...over,
  };
  return { index, buffer: new DataView(Float32Array.from(values).buffer) };
}

/**
 * A long-sequence payload (index.lod) of one layer "rnn.l0" with one quantity "h" = f(t, u):
 * the window [t0, t0 + held) of every step array plus an overview in columns of `bucket` steps.
 */
export function lodPayload(steps: number, units: number, held: number, t0: number, bucket: number, f: (t: number, u: number) => number) {
  const window = windowValues(units, held, t0, f);
  const columns = Math.ceil(steps / bucket);
  const min: number[] = [];
  const max: number[] = [];
  for (let c = 0; c < columns; c++) {
    for (let u = 0; u < units; u++) {
      const values = [];
      for (let t = c * bucket; t < Math.min(steps, (c + 1) * bucket); t++) values.push(f(t, u));
      min.push(Math.min(...values));
      max.push(Math.max(...values));
    }
  }
  const floats = Float32Array.from([...window, ...min, ...max]);
  const index: PayloadIndex = {
    steps,
    length: steps,
    layers: [{ name: "rnn.l0", kind: "rnn", quantities: [
      { name: "h", offset: 0, units, steps: held, scale: "diverging", vmin: -1, vmax: 1, t0 },
    ] }],
    inputs: null,
    predictions: null,
    lod: { t0, held, floats: window.length, overview: {
      layer: "rnn.l0", quantity: "h", columns, bucket, units, min: window.length, max: window.length + min.length,
    } },
  };
  return { index, buffer: new DataView(floats.buffer) };
}

/** The float32 values of a window reply: f over steps [t0, t0 + held), time-major. */
export function windowValues(units: number, held: number, t0: number, f: (t: number, u: number) => number): number[] {
  const out = [];
  for (let t = t0; t < t0 + held; t++) for (let u = 0; u < units; u++) out.push(f(t, u));
  return out;
}
