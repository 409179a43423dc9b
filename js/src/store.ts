// The Explorer's store: one per view, holding the decoded payload and the selection (step, unit,
// layer, quantity, the units compared, the row order), changed only through its actions. It
// draws nothing: views subscribe, and each change names what it touched so a view redraws only
// that (a scrub must fit in a frame).
//
// Where each value lives: unit, layer, quantity and the payload are the model's (the kernel
// shares them), read here and clamped to the data; the live step is the model's Player
// (transport.ts), which a scrub moves at once and saves to the kernel only once it rests; the
// order and the compared units are this view's alone.
import type { AnyModel } from "@anywidget/types";
import { type Decoded, MESSAGE, type Overview, type PayloadIndex, decodePayload, floatsOf } from "./decode";
import { type Actions, type ExplorerState, selectedLayer, selectedQuantity } from "./state";
import type { Player } from "./transport";

/** The steps of layer `name`'s own time axis in a payload's index (the first layer's when it has
 * no such layer, as the view falls back); the index's steps for payloads without per-layer axes. */
export function layerSteps(index: PayloadIndex | null | undefined, name: string): number {
  if (!index) return 1;
  const layer = index.layers.find((l) => l.name === name) ?? index.layers[0];
  return layer?.steps ?? index.steps;
}

export interface ExplorerModel {
  index: PayloadIndex;
  buffer: DataView;
  tokens: string[] | null;
  t: number;
  unit: number;
  layer: string;
  quantity: string;
  playing: boolean;
  interval: number; // ms per step while playing
  highlight?: number[]; // units the kernel asks to compare (a co-cluster's): their rows are marked
  followers?: string[]; // "IPY_MODEL_<id>" of widgets whose `t` follows the live step (a gradient grid)
}

/**
 * What a change touched, from most to least:
 * - "payload": a new payload (layers, steps, tokens): everything;
 * - "layer": the layer or quantity shown (and perhaps the step): the heatmap's image and what a step redraws;
 * - "order": the rows' order: the heatmap's image and what a step redraws;
 * - "step": the step, the unit or the window of steps held: the cursor, the text at t, the panels;
 * - "units": the units compared: the panels only.
 */
export type Change = "payload" | "layer" | "order" | "step" | "units";

/** One of the Explorer's own views: redraws what `change` touched, reading the store it was made with. */
export interface ExplorerView {
  update(change: Change): void;
  destroy?(): void;
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** The row where `unit` is drawn under the state's order. */
export function rowOfUnit(state: Pick<ExplorerState, "order">, unit: number): number {
  if (!state.order) return unit;
  for (let r = 0; r < state.order.length; r++) if (state.order[r] === unit) return r;
  return unit;
}

/** The unit drawn in `row` under the state's order. */
export function unitAtRow(state: Pick<ExplorerState, "order">, row: number): number {
  return state.order ? state.order[row] : row;
}

const SELECTION_EVENTS = ["change:unit", "change:layer", "change:quantity"];
const PAYLOAD_EVENTS = ["change:index", "change:buffer", "change:tokens"];

export class ExplorerStore {
  /** Shared with every view and panel, read-only for them (state.ts's Panel contract). */
  readonly state: ExplorerState = {
    t: 0, unit: 0, units: [0], order: null, layer: "", quantity: "", steps: 0, length: 0,
    tokens: null, inputs: null, layers: [], predictions: null,
  };
  /** The payload's index, null until loaded (index.lod: a long sequence held as a window). */
  index: PayloadIndex | null = null;
  /** A long sequence's overview of the selected quantity (the kernel sends one per selection). */
  overview: Overview | null = null;
  /** The payload's top predictions, over the model's output steps (state.predictions: while the
   * selected layer has as many steps, so an encoder's step is never shown its decoder's guess). */
  private predictions: Decoded["predictions"] = null;
  /** What panels may ask for (state.ts's Actions). */
  readonly actions: Actions;

  private listeners: ((change: Change) => void)[] = [];
  private payloadPending = false;
  private stopStep: () => void;

  constructor(
    private model: AnyModel<ExplorerModel>,
    private player: Player,
  ) {
    const state = this.state;
    this.actions = {
      setT: (t) => player.setT(t), // saved to the kernel once the scrub rests
      setUnit: (unit) => {
        // The selected quantity's units: an LSTM with proj_size has more cell-state units than h ones.
        model.set("unit", clamp(Math.round(unit), 0, selectedQuantity(state).units - 1));
        model.save_changes();
      },
      setUnits: (units) => {
        state.units = units.length ? [...units] : [state.unit];
        this.emit("units");
      },
      setOrder: (order) => {
        state.order = order;
        this.emit("order");
      },
    };
    for (const name of SELECTION_EVENTS) model.on(name, this.onSelection);
    for (const name of PAYLOAD_EVENTS) model.on(name, this.onPayload);
    model.on("msg:custom", this.onMessage);
    this.stopStep = player.onStep(this.onSelection);
  }

  /** Call `listener` after every change; listeners run in the order they subscribed. */
  subscribe(listener: (change: Change) => void): void {
    this.listeners.push(listener);
  }

  private emit(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }

  /** Read the payload and the selection from the model, clamping the selection to the data. */
  load(): void {
    const index = this.model.get("index");
    const decoded = decodePayload(index, floatsOf(this.model.get("buffer")));
    const state = this.state;
    this.index = index;
    this.overview = decoded.overview;
    state.layers = decoded.layers;
    state.inputs = decoded.inputs;
    state.firstStep = index.first_step ?? 0;
    this.predictions = decoded.predictions;
    this.readSelection();
    this.emit("payload");
  }

  /** A heatmap cell picked: its unit and step, saved to the kernel at once. */
  select(t: number, unit: number): void {
    this.model.set("unit", unit);
    this.player.setT(t);
    this.player.saveNow();
  }

  togglePlay(): void {
    this.player.toggle();
  }

  /** A long sequence's next window of steps arrived (lod.ts): it replaces the steps held. */
  adoptWindow(window: Pick<Decoded, "layers" | "inputs">): void {
    this.state.layers = window.layers;
    this.state.inputs = window.inputs;
    this.emit("step");
  }

  private readSelection(): void {
    const state = this.state;
    const model = this.model;
    const previousLayer = state.layer;
    const layer = selectedLayer({ ...state, layer: model.get("layer") });
    state.layer = layer.name;
    const names = Object.keys(layer.quantities);
    const quantity = model.get("quantity");
    state.quantity = names.includes(quantity) ? quantity : names[0];
    const units = layer.quantities[state.quantity].units;
    state.unit = clamp(model.get("unit"), 0, units - 1);
    // the selected layer's own time axis: an encoder's source steps, its decoder's target steps
    state.steps = layer.steps;
    state.length = layer.length;
    state.tokens = layer.tokens !== undefined ? layer.tokens : model.get("tokens");
    state.predictions = this.predictions?.steps === layer.steps ? this.predictions : null;
    state.t = clamp(this.player.t, 0, Math.max(0, state.steps - 1)); // the live step (transport.ts)
    if (previousLayer !== state.layer || (state.order && state.order.length !== units)) state.order = null;
    state.units = [state.unit, ...state.units.filter((u) => u !== state.unit && u < units)];
  }

  /** The unit, layer or quantity changed on the model, or the live step moved. */
  private onSelection = (): void => {
    const before = `${this.state.layer}/${this.state.quantity}`;
    this.readSelection();
    // a layer with fewer steps than the step shown: the live step moves to its last
    if (this.player.t !== this.state.t) this.player.setT(this.state.t);
    this.emit(before === `${this.state.layer}/${this.state.quantity}` ? "step" : "layer");
  };

  // index, buffer and tokens change together (one message): decode once for all three.
  private onPayload = (): void => {
    if (this.payloadPending) return;
    this.payloadPending = true;
    queueMicrotask(() => {
      this.payloadPending = false;
      this.load();
    });
  };

  /** {type: "step", t} from the kernel moves the live step (Python's select(t=...), which the
   * model's t alone may not carry: see transport.ts). */
  private onMessage = (msg: { type?: string; t?: number }): void => {
    if (msg?.type === MESSAGE.step && typeof msg.t === "number") this.player.adopt(msg.t);
  };

  destroy(): void {
    this.stopStep();
    for (const name of SELECTION_EVENTS) this.model.off(name, this.onSelection);
    for (const name of PAYLOAD_EVENTS) this.model.off(name, this.onPayload);
    this.model.off("msg:custom", this.onMessage);
    this.listeners = [];
  }
}
