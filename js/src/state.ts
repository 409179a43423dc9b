// The shared state of the Explorer view and the contract every panel follows.
//
// Panel contract:
// - A panel is made by a factory `createX(actions: Actions) => Panel`; it builds its DOM once
//   into `panel.el` (the Explorer appends it) and never rebuilds it on an update.
// - The Explorer calls `panel.update(state)` after every change (a scrub included). The whole
//   view has one frame (16 ms) per scrub, so an update redraws in place and returns quickly;
//   a panel may compare `state.t` etc. with what it drew last and skip work.
// - Panels never change `state` themselves; they ask through `actions` (setT, setUnit, ...),
//   and the Explorer then calls update on every panel with the new state.
// - `state` and its arrays are shared and read-only: never write into `Quantity.data`.
// - Tokens are user data: show them with `textContent`, never innerHTML.
// - `destroy()` (optional) removes listeners/timers when the view goes away.

/** How a quantity is coloured: diverging around 0 (h, c, tanh candidates) or 0..1 (sigmoid gates). */
export type Scale = "diverging" | "sequential";

export type LayerKind = "lstm" | "gru" | "rnn" | "cell" | "custom";

/**
 * One (time, units) array of the selected batch element, as a zero-copy view on the payload.
 * A very long sequence is held only as a window of steps [t0, t0 + steps) around the current
 * step (the Explorer fetches the next window as t moves): read values with valueAt/stepAt,
 * which take the absolute step; outside the window they give NaN.
 */
export interface Quantity {
  name: string; // "h", "c", "input", "forget", "cell", "output", "reset", "update", "new", or a track name
  units: number;
  steps: number; // steps held in `data` (all of them unless t0 is set)
  t0?: number; // the first step held (absent = 0: the whole sequence)
  data: Float32Array; // time-major: the value of unit u at step t0 + i is data[i * units + u]
  scale: Scale;
  vmin: number; // the colour scale's ends (diverging scales are symmetric: vmin = -vmax)
  vmax: number;
}

/** The names and rules of a layer's equations, as rnnwidgets/kinds.py `describe` sends them. */
export interface Recurrence {
  kind: string; // whose equations: "lstm", "gru", "rnn" (a cell in a loop: its cell's), or "cell"/"custom"
  gates: string[]; // in PyTorch's chunk order: LSTM i, f, g, o; GRU r, z, n; [] without named gates
  states: string[]; // carried from step to step: "h", and "c" for an LSTM
  sigmoid: string[]; // the gates squashed by a sigmoid (0..1); the others by tanh
}

/** One recurrent layer (one direction): "<module path>.l<k>", "+.reverse" for the backward one. */
export interface LayerData {
  name: string;
  kind: LayerKind;
  reverse: boolean; // runs backward in time (a bidirectional module's second direction)
  recurrence: Recurrence;
  quantities: Record<string, Quantity>; // in display order: states first, then gates, then tracks
  // Its own time axis: layers of one trace may differ (an encoder over the source, its decoder
  // over the target). steps: all of them; length: the valid steps of this batch element;
  // tokens: its own labels (null: none), absent when the view's tokens label it.
  steps: number;
  length: number;
  tokens?: string[] | null;
  // The state ("h", "c") the recurrence started from, one value per unit: before step 0, or for a
  // reverse layer before step length - 1, its first. Absent when the trace did not record it.
  initial?: Record<string, Float32Array>;
}

/** The model's top-k predictions at every step, when it has an output head. */
export interface Predictions {
  k: number;
  steps: number; // the model's output steps: shown beside a layer of as many steps (store.ts)
  ids: Float32Array; // [t * k + j]: index into `labels` of the j-th best prediction at step t
  probs: Float32Array; // [t * k + j]: its softmax probability
  labels: string[]; // user data: show as text
}

export interface ExplorerState {
  t: number; // the current step, 0 <= t < steps
  unit: number; // the selected unit of the selected layer
  units: number[]; // the units picked for comparison (lines); includes `unit`
  order: ArrayLike<number> | null; // a permutation (e.g. ordering.ts's Int32Array) of the selected layer's units for display rows; null = by index
  layer: string; // the selected LayerData.name
  quantity: string; // the selected quantity name within that layer
  steps: number; // steps of the selected layer's own time axis (padded length)
  length: number; // valid steps of the selected batch element in that layer; steps >= length are padding
  tokens: string[] | null; // that layer's label of each step (may be shorter than `steps`), user data
  inputs: Quantity | null; // numeric input features per step when there are no tokens
  layers: LayerData[];
  predictions: Predictions | null;
  firstStep?: number; // the model's step number of step 0: a window's start (rw.trace(steps=...)); 0 when absent
}

/** The model's own number of step `t`: a window of steps (rw.trace(steps=...)) starts at its first step. */
export function stepNumber(state: { firstStep?: number }, t: number): number {
  return t + (state.firstStep ?? 0);
}

/** What panels may ask the Explorer to change. */
export interface Actions {
  setT(t: number): void;
  setUnit(unit: number): void;
  setUnits(units: number[]): void;
  setOrder(order: ArrayLike<number> | null): void;
}

export interface Panel {
  el: HTMLElement;
  update(state: ExplorerState): void;
  destroy?(): void;
}

export type PanelFactory = (actions: Actions) => Panel;

/** The selected layer (falls back to the first). */
export function selectedLayer(state: ExplorerState): LayerData {
  return state.layers.find((l) => l.name === state.layer) ?? state.layers[0];
}

/** The selected quantity of the selected layer (falls back to the layer's first). */
export function selectedQuantity(state: ExplorerState): Quantity {
  const layer = selectedLayer(state);
  return layer.quantities[state.quantity] ?? Object.values(layer.quantities)[0];
}

/** The value of unit `u` at (absolute) step `t`; NaN outside what is held. */
export function valueAt(q: Quantity, t: number, u: number): number {
  const i = t - (q.t0 ?? 0);
  if (i < 0 || i >= q.steps || u < 0 || u >= q.units) return NaN;
  return q.data[i * q.units + u];
}

/** The vector of all units at (absolute) step `t`: a zero-copy view, or NaNs outside what is held. */
export function stepAt(q: Quantity, t: number): Float32Array {
  const i = t - (q.t0 ?? 0);
  if (i < 0 || i >= q.steps) return new Float32Array(q.units).fill(NaN);
  return q.data.subarray(i * q.units, (i + 1) * q.units);
}

/** The top predictions at step `t`, best first. */
export function predictionsAt(p: Predictions, t: number): { label: string; prob: number }[] {
  const out = [];
  for (let j = 0; j < p.k; j++) {
    out.push({ label: p.labels[p.ids[t * p.k + j]], prob: p.probs[t * p.k + j] });
  }
  return out;
}
