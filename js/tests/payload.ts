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
