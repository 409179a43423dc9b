// Builders of Explorer states for panel tests: quantities from a function of (t, u), and Actions
// that record what a panel asked for.
import type { Actions, ExplorerState, LayerData, LayerKind, Quantity, Recurrence, Scale } from "../src/state";
import { KINDS } from "./payload";

export function quantity(
  name: string, steps: number, units: number, f: (t: number, u: number) => number, scale: Scale = "diverging",
): Quantity {
  const data = new Float32Array(steps * units);
  for (let t = 0; t < steps; t++) for (let u = 0; u < units; u++) data[t * units + u] = f(t, u);
  return scale === "sequential"
    ? { name, units, steps, data, scale, vmin: 0, vmax: 1 }
    : { name, units, steps, data, scale, vmin: -1, vmax: 1 };
}

/** A layer; its gate and state names are its kind's (rnnwidgets/kinds.py, through the wire fixture). */
export function layer(
  name: string, kind: LayerKind, quantities: Quantity[],
  over: { reverse?: boolean; recurrence?: Recurrence; steps?: number; length?: number } = {},
): LayerData {
  const steps = over.steps ?? quantities[0]?.steps ?? 0;
  return {
    name, kind, reverse: over.reverse ?? false, recurrence: over.recurrence ?? KINDS[kind],
    quantities: Object.fromEntries(quantities.map((q) => [q.name, q])),
    steps, length: over.length ?? steps,
  };
}

export function explorerState(layers: LayerData[], over: Partial<ExplorerState> = {}): ExplorerState {
  const first = Object.values(layers[0].quantities)[0];
  return {
    t: 0, unit: 0, units: [0], order: null, layer: layers[0].name, quantity: first.name,
    steps: first.steps, length: first.steps, tokens: null, inputs: null, layers, predictions: null,
    ...over,
  };
}

/** Actions that record each call, so a test can check what a click asked for. */
export function recordingActions() {
  const calls: Array<[keyof Actions, unknown]> = [];
  const actions: Actions = {
    setT: (t) => calls.push(["setT", t]),
    setUnit: (u) => calls.push(["setUnit", u]),
    setUnits: (us) => calls.push(["setUnits", us]),
    setOrder: (o) => calls.push(["setOrder", o]),
  };
  return { actions, calls };
}
