// The browser's side of the wire contract that rnnwidgets/widgets/payload.py owns: the custom
// message types, and decoding the Explorer's payload: ONE float32 buffer (all layers and
// quantities of one batch element, each (time, units) C-order) plus a small JSON index of where
// each array starts. Arrays become zero-copy Float32Array views on that buffer.
// js/tests/decode.test.ts decodes the golden fixture the Python side writes (js/tests/fixtures/).
import type { LayerData, LayerKind, Predictions, Quantity, Recurrence, Scale } from "./state";
import { windowInLayer } from "./timeaxis";

/** The `type` of each custom message (payload.py MESSAGES): "step" kernel -> view {t}; "window"
 * view -> kernel {start}, kernel -> view {t0, held} + one buffer; "open" match list -> kernel {row}. */
export const MESSAGE = { step: "step", window: "window", open: "open" } as const;

/** Where one (time, units) array lies in the buffer; offsets count float32 values, not bytes. */
export interface ArrayEntry {
  name: string;
  offset: number;
  units: number;
  steps: number;
  scale: Scale;
  vmin: number;
  vmax: number;
  t0?: number; // set when the payload holds a window of a long sequence
}

/** A long sequence's level of detail: a window of steps [t0, t0 + held) plus an overview. */
export interface LodIndex {
  t0: number;
  held: number;
  floats: number; // float32 values of the window's arrays (a window reply holds exactly these)
  overview: { layer: string; quantity: string; columns: number; bucket: number; units: number; min: number; max: number };
}

/** One quantity over the whole sequence: per column of `bucket` steps, each unit's min and max. */
export interface Overview {
  layer: string;
  quantity: string;
  columns: number;
  bucket: number;
  units: number;
  min: Float32Array; // [column * units + u]
  max: Float32Array;
}

export interface PayloadIndex {
  steps: number; // the longest layer's steps
  length: number; // valid steps of this batch element (layers without their own `length`)
  first_step?: number; // the model's step number of step 0: a window's start (rw.trace(steps=...)); 0 when absent
  training?: boolean | null; // the mode the model was traced in; null: not recorded
  dropout?: boolean | null; // whether that mode dropped values (active dropout, capture's meta["dropout"]); null: not recorded
  // initial: state name -> offset of its (1, units) initial value (outside any window)
  layers: {
    name: string;
    kind: LayerKind;
    reverse: boolean;
    recurrence: Recurrence; // gate and state names, sigmoid gates: kinds.describe
    // The layer's own time axis (an encoder's source, its decoder's target); absent in payloads
    // of earlier versions: the index's steps and length. tokens: this layer's own labels (null:
    // none), present only when they are not the view's tokens trait.
    steps?: number;
    length?: number;
    tokens?: string[] | null;
    quantities: ArrayEntry[];
    initial?: Record<string, number>;
  }[];
  inputs: ArrayEntry | null;
  // ids/probs: offsets of (steps, k) arrays; steps: the outputs' own (absent in earlier payloads: the index's)
  predictions: { k: number; steps?: number; ids: number; probs: number; labels: string[] } | null;
  lod?: LodIndex | null; // absent/null: every array holds the whole sequence
}

export interface Decoded {
  layers: LayerData[];
  inputs: Quantity | null;
  predictions: Predictions | null;
  overview: Overview | null;
}

/** The buffer trait (anywidget hands a DataView) as float32 values. Zero-copy when 4-byte aligned. */
export function floatsOf(buf: DataView | ArrayBuffer | ArrayBufferView): Float32Array {
  const bytes =
    buf instanceof ArrayBuffer
      ? new Uint8Array(buf)
      : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (bytes.byteLength % 4 !== 0) {
    throw new Error(`rnnwidgets: payload of ${bytes.byteLength} bytes is not a whole number of float32 values`);
  }
  if (bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  // A view at an odd offset inside a larger message: Float32Array needs alignment, so copy once.
  return new Float32Array(bytes.slice().buffer);
}

function view(floats: Float32Array, e: ArrayEntry, what: string): Quantity {
  const size = e.units * e.steps;
  if (!(e.offset >= 0 && e.offset + size <= floats.length)) {
    throw new Error(
      `rnnwidgets: ${what} expects ${size} values at offset ${e.offset}, but the payload holds ${floats.length}`,
    );
  }
  return {
    name: e.name,
    units: e.units,
    steps: e.steps,
    data: floats.subarray(e.offset, e.offset + size),
    scale: e.scale,
    vmin: e.vmin,
    vmax: e.vmax,
    ...(e.t0 === undefined ? {} : { t0: e.t0 }),
  };
}

/** The per-step arrays (every layer's quantities, numeric inputs); t0 overrides the window start.
 * Initial states are read from `payload`, the whole payload's floats (a window reply lacks them). */
function stepArrays(index: PayloadIndex, floats: Float32Array, t0?: number, payload = floats): Pick<Decoded, "layers" | "inputs"> {
  const at = (e: ArrayEntry) => (t0 === undefined ? e : { ...e, t0 });
  const layers = index.layers.map((layer) => {
    const steps = layer.steps ?? index.steps;
    // a window of a long sequence is kept inside each layer's own steps (timeaxis.ts windowInLayer)
    const inLayer = (e: ArrayEntry) => (t0 === undefined ? e : { ...e, t0: windowInLayer(t0, e.steps, steps).t0 });
    // keyed by names from the user's data (a track "__proto__" or "constructor"): no prototype to shadow or set
    const quantities: Record<string, Quantity> = Object.create(null);
    for (const e of layer.quantities) quantities[e.name] = view(floats, inLayer(e), `${layer.name}/${e.name}`);
    const data: LayerData = {
      name: layer.name, kind: layer.kind, reverse: layer.reverse, recurrence: layer.recurrence, quantities,
      steps, length: layer.length ?? Math.min(index.length, steps),
    };
    if (layer.tokens !== undefined) data.tokens = layer.tokens;
    if (layer.initial) {
      data.initial = Object.create(null) as Record<string, Float32Array>;
      for (const [name, offset] of Object.entries(layer.initial)) {
        const units = quantities[name]?.units;
        if (units === undefined) throw new Error(`rnnwidgets: ${layer.name} has an initial ${name} but no ${name} quantity`);
        const entry: ArrayEntry = { name, offset, units, steps: 1, scale: "diverging", vmin: -1, vmax: 1 };
        data.initial[name] = view(payload, entry, `${layer.name}/initial ${name}`).data;
      }
    }
    return data;
  });
  const inputs = index.inputs ? view(floats, at(index.inputs), "inputs") : null;
  return { layers, inputs };
}

/** A window reply (the kernel's answer to a request for steps from t0) decoded like the payload's
 * window; `payload` is the whole payload's floats, which hold what windows do not (initial states). */
export function decodeWindow(index: PayloadIndex, floats: Float32Array, t0: number, payload: Float32Array): Pick<Decoded, "layers" | "inputs"> {
  if (!index.lod || floats.length !== index.lod.floats) {
    throw new Error(`rnnwidgets: a window of ${floats.length} values does not fit this payload's windows`);
  }
  return stepArrays(index, floats, t0, payload);
}

export function decodePayload(index: PayloadIndex, floats: Float32Array): Decoded {
  const { layers, inputs } = stepArrays(index, floats);
  let predictions: Predictions | null = null;
  if (index.predictions) {
    const p = index.predictions;
    const steps = p.steps ?? index.steps;
    const shape = { units: p.k, steps, scale: "sequential" as Scale, vmin: 0, vmax: 1 };
    predictions = {
      k: p.k,
      steps,
      ids: view(floats, { name: "ids", offset: p.ids, ...shape }, "prediction ids").data,
      probs: view(floats, { name: "probs", offset: p.probs, ...shape }, "prediction probabilities").data,
      labels: p.labels,
    };
  }
  let overview: Overview | null = null;
  if (index.lod) {
    const o = index.lod.overview;
    const shape = { units: o.units, steps: o.columns, scale: "sequential" as Scale, vmin: 0, vmax: 1 };
    overview = {
      ...o,
      min: view(floats, { name: "min", offset: o.min, ...shape }, "overview min").data,
      max: view(floats, { name: "max", offset: o.max, ...shape }, "overview max").data,
    };
  }
  return { layers, inputs, predictions, overview };
}
