// The Explorer view: decodes the payload, holds the shared selection (step, unit, layer,
// quantity), draws the heatmap and the text at t, and composes the panels. Everything a scrub
// changes is drawn here from data already in the browser; the kernel is never asked, except for
// the next window of steps of a sequence too long to send whole (index.lod).
//
// Stable DOM hooks (browser tests rely on them):
//   .rw-explorer      the root; focusable: ←/→ step, Home/End jump, space plays/pauses, ↑/↓ unit
//                     (notebook shortcuts are off for keys pressed in it or in its Python box,
//                     .rw-explorer-box, so they reach it; see suppressNotebookShortcuts)
//   .rw-transport     Play/pause .rw-play, the step slider .rw-slider (a range input: the keys
//                     above work on it too), .rw-step, the speed .rw-speed (transport.ts)
//   .rw-layer         <select> of layers/directions      .rw-quantity  <select> of quantities
//   .rw-heatmap       canvas: units (rows) x steps (columns) of the selected quantity
//   .rw-cursor        canvas over it: the current step's column and the selected unit's row, and
//                     marks (heatmap.ROW_MARK) at both ends of the highlighted units' rows
//   .rw-legend        the colour scale          .rw-readout  hover text: unit, step, token, value
//   .rw-caption       what the heatmap shows (quantity, layer, units x steps)
//   .rw-step          "step t / steps"          .rw-token-at the token (or input values) at t
//   .rw-predictions   the top predictions at t
//   .rw-panels-above  the token strip (.rw-tokens)
//   .rw-panels        bars (.rw-bars), cell view (.rw-cellview), unit lines and ordering (.rw-units)
//
// Model traits: index (PayloadIndex JSON) + buffer (float32 bytes) for the selected batch
// element, tokens, the selection t, unit, layer, quantity, and playing + interval (the Play
// speed). A scrub sets t in the page and saves it to the kernel once it rests (transport.ts).
// Custom messages: the view sends
// {type: "window", start}; the kernel answers {type: "window", t0, held} with one float32 buffer
// laid out like the payload's window; {type: "step", t} from the kernel moves the live step
// (Python's select(t=...), which the model's t alone may not carry: see transport.ts).
import type { AnyModel } from "@anywidget/types";
import { createBars } from "./bars";
import { createCellview } from "./cellview";
import { type Overview, type PayloadIndex, decodePayload, decodeWindow, floatsOf } from "./decode";
import { createHeatmap, createLegend, formatValue } from "./heatmap";
import { type SelectModel, createSelectTool } from "./patterns";
import { createTokens } from "./tokens";
import { createUnits } from "./units";
import {
  type Actions,
  type ExplorerState,
  type Panel,
  type PanelFactory,
  predictionsAt,
  selectedLayer,
  selectedQuantity,
  stepAt,
  valueAt,
} from "./state";
import { element } from "./dom";
import { createTransport, playerOf } from "./transport";

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

// The panels, each following the Panel contract in state.ts: the token strip above the heatmap,
// the rest in a row under it.
const PANELS_ABOVE: PanelFactory[] = [createTokens];
const PANELS_BELOW: PanelFactory[] = [createBars, createCellview, createUnits];

/** A token shown so that whitespace is visible ("␣", "⏎") and nothing is parsed as markup. */
export function showToken(token: string): string {
  return token.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥");
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function fillSelect(select: HTMLSelectElement, names: string[], selected: string): void {
  select.replaceChildren(
    ...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      return option;
    }),
  );
  select.value = selected;
}

/** The class of the Python Explorer's VBox, which holds the Play/slider controls beside this view. */
export const EXPLORER_BOX = "rw-explorer-box";
const SUPPRESS_SHORTCUTS = "data-lm-suppress-shortcuts";
const markFocused = (ev: Event) => (ev.target as Element | null)?.setAttribute?.(SUPPRESS_SHORTCUTS, "true");

/**
 * JupyterLab and Notebook 7 (Lumino) run notebook shortcuts such as ArrowRight (move to the next
 * heading), space and Home/End before a focused element sees the key. Lumino skips them when
 * the key's target carries this attribute (it checks the target before matching ":focus"
 * selectors, so an ancestor's attribute is not enough): `root` gets it now, and whatever takes
 * the focus in the Explorer's box (the slider's handle, Play) once ipywidgets has put `el` in
 * that box, which happens after render. Returns the undo.
 */
export function suppressNotebookShortcuts(root: HTMLElement, el: HTMLElement, frames = 120): () => void {
  root.setAttribute(SUPPRESS_SHORTCUTS, "true");
  let box: Element | null = null;
  let request = 0;
  const find = (left: number) => {
    box = el.closest(`.${EXPLORER_BOX}`);
    if (box) box.addEventListener("focusin", markFocused);
    else if (left > 0) request = requestAnimationFrame(() => find(left - 1));
  };
  find(frames);
  return () => {
    cancelAnimationFrame(request);
    box?.removeEventListener("focusin", markFocused);
  };
}

export function renderExplorer(model: AnyModel<ExplorerModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-explorer", el);
  const stopSuppressing = suppressNotebookShortcuts(root, el);
  root.tabIndex = 0;
  root.style.cssText = "font: 12px sans-serif; outline: none; display: flex; flex-direction: column; gap: 6px;";
  const player = playerOf(model, () => Math.max(0, (model.get("index")?.steps ?? 1) - 1));
  const transport = createTransport(model, player);
  root.append(transport.el);
  const stepText = transport.step;
  const bar = element("div", "rw-bar", root);
  bar.style.cssText = "display: flex; flex-wrap: wrap; align-items: center; gap: 10px;";
  const layerSelect = element("select", "rw-layer", bar);
  const quantitySelect = element("select", "rw-quantity", bar);
  const tokenText = element("span", "rw-token-at", bar);
  tokenText.style.cssText = "font-family: monospace; white-space: pre;";
  const predictionText = element("span", "rw-predictions", bar);
  const panelsAbove = element("div", "rw-panels-above", root);
  const heatmap = createHeatmap();
  root.append(heatmap.el);
  const footer = element("div", "rw-footer", root);
  footer.style.cssText = "display: flex; justify-content: space-between; gap: 10px; min-height: 16px;";
  const legend = createLegend();
  footer.append(legend.el);
  const caption = element("span", "rw-caption", footer);
  caption.style.cssText = "color: #555;";
  const readout = element("span", "rw-readout", footer);
  readout.style.cssText = "font-family: monospace; white-space: pre;";
  const panelRow = element("div", "rw-panels", root);
  panelRow.style.cssText = "display: flex; flex-wrap: wrap; gap: 12px;";

  // A long sequence (index.lod) holds a window of steps around t plus an overview of the
  // selected quantity; the window follows t by asking the kernel for the next one.
  let index: PayloadIndex | null = null;
  let overview: Overview | null = null;
  let windowPending = false; // a window was asked for and has not arrived
  const state: ExplorerState = {
    t: 0, unit: 0, units: [0], order: null, layer: "", quantity: "", steps: 0, length: 0,
    tokens: null, inputs: null, layers: [], predictions: null,
  };

  const actions: Actions = {
    setT(t) {
      player.setT(t); // saved to the kernel once the scrub rests
    },
    setUnit(unit) {
      // The selected quantity's units: an LSTM with proj_size has more cell-state units than h ones.
      model.set("unit", clamp(Math.round(unit), 0, selectedQuantity(state).units - 1));
      model.save_changes();
    },
    setUnits(units) {
      state.units = units.length ? [...units] : [state.unit];
      updatePanels();
    },
    setOrder(order) {
      state.order = order;
      drawImage();
      scrub();
    },
  };
  const panels: Panel[] = [];
  for (const [factories, parent] of [[PANELS_ABOVE, panelsAbove], [PANELS_BELOW, panelRow]] as const) {
    for (const create of factories) {
      const panel = create(actions);
      parent.append(panel.el);
      panels.push(panel);
    }
  }
  // Drag over the heatmap + threshold: the units of a hypothesis (patterns.ts; traits brush, threshold, highlight).
  const select = createSelectTool(model as unknown as AnyModel<SelectModel>, heatmap.el, actions);
  bar.append(select.el);

  /** The row where a unit is drawn under the current order. */
  function rowOf(unit: number): number {
    if (!state.order) return unit;
    for (let r = 0; r < state.order.length; r++) if (state.order[r] === unit) return r;
    return unit;
  }

  function tokenAt(t: number): string {
    if (state.tokens && t < state.tokens.length) return showToken(state.tokens[t]);
    if (state.inputs) {
      const x = Array.from(stepAt(state.inputs, t).subarray(0, 4), formatValue).join(", ");
      return `x = [${x}${state.inputs.units > 4 ? ", …" : ""}]`;
    }
    return "";
  }

  /** Read the payload and the selection from the model, clamping the selection to the data. */
  function load(): void {
    index = model.get("index");
    const decoded = decodePayload(index, floatsOf(model.get("buffer")));
    overview = decoded.overview;
    windowPending = false;
    state.layers = decoded.layers;
    state.inputs = decoded.inputs;
    state.predictions = decoded.predictions;
    state.steps = index.steps;
    state.length = index.length;
    state.tokens = model.get("tokens");
    readSelection();
    fillSelect(layerSelect, state.layers.map((l) => l.name), state.layer);
    fillSelect(quantitySelect, Object.keys(selectedLayer(state).quantities), state.quantity);
  }

  function readSelection(): void {
    const previousLayer = state.layer;
    const layer = selectedLayer({ ...state, layer: model.get("layer") });
    state.layer = layer.name;
    const names = Object.keys(layer.quantities);
    const quantity = model.get("quantity");
    state.quantity = names.includes(quantity) ? quantity : names[0];
    const units = layer.quantities[state.quantity].units;
    state.unit = clamp(model.get("unit"), 0, units - 1);
    state.t = clamp(player.t, 0, Math.max(0, state.steps - 1)); // the live step (transport.ts)
    if (previousLayer !== state.layer || (state.order && state.order.length !== units)) state.order = null;
    state.units = [state.unit, ...state.units.filter((u) => u !== state.unit && u < units)];
  }

  function drawImage(): void {
    const q = selectedQuantity(state);
    legend.draw(q);
    const perColumn = index?.lod ? ` · ${index.lod.overview.bucket} steps per column (min/max)` : "";
    caption.textContent = `${q.name} of ${state.layer}: ${q.units} units (rows) × ${state.steps} steps (columns)${perColumn}`;
    heatmap.el.setAttribute("aria-label", `heatmap of ${caption.textContent}`);
    if (!index?.lod) heatmap.draw(q, state.order, state.length);
    else if (overview && overview.layer === state.layer && overview.quantity === state.quantity) {
      heatmap.drawOverview(overview, q, state.order, state.length, state.steps);
    } else heatmap.clear(); // the kernel is sending this selection's overview
  }

  /** Ask for the window around t when t nears the edge of the one held (one request at a time). */
  function followWindow(): void {
    const lod = index?.lod;
    if (!lod || windowPending) return;
    const t0 = selectedQuantity(state).t0 ?? 0;
    const margin = Math.floor(lod.held / 4);
    const nearStart = state.t < t0 + margin && t0 > 0;
    const nearEnd = state.t >= t0 + lod.held - margin && t0 + lod.held < state.steps;
    if (!nearStart && !nearEnd) return;
    windowPending = true;
    model.send({ type: "window", start: clamp(state.t - Math.floor(lod.held / 2), 0, state.steps - lod.held) });
  }

  function onMessage(msg: { type?: string; t0: number; held: number; t?: number }, buffers: DataView[]): void {
    if (msg?.type === "step" && typeof msg.t === "number") return player.adopt(msg.t);
    if (msg?.type !== "window" || !index?.lod || msg.held !== index.lod.held || !buffers?.length) return;
    const fresh = decodeWindow(index, floatsOf(buffers[0]), msg.t0, floatsOf(model.get("buffer")));
    state.layers = fresh.layers;
    state.inputs = fresh.inputs;
    windowPending = false;
    scrub();
  }

  function describeStep(): void {
    const t = state.t;
    stepText.textContent = `step ${t} / ${state.steps - 1}${t >= state.length ? " (padding)" : ""}`;
    transport.update(t, state.steps);
    tokenText.textContent = tokenAt(t);
    predictionText.textContent = state.predictions
      ? "next: " + predictionsAt(state.predictions, t).map((p) => `${showToken(p.label)} ${(100 * p.prob).toFixed(0)}%`).join(" · ")
      : "";
  }

  function updatePanels(): void {
    for (const panel of panels) panel.update(state);
  }

  /** The rows of the highlighted units (of the selected quantity) under the current order. */
  function highlightedRows(): number[] {
    const units = model.get("highlight") ?? [];
    if (!units.length) return [];
    const count = selectedQuantity(state).units;
    const rowOfUnit = Int32Array.from({ length: count }, (_, u) => u);
    if (state.order) for (let r = 0; r < state.order.length; r++) rowOfUnit[state.order[r]] = r;
    return units.filter((u) => u >= 0 && u < count).map((u) => rowOfUnit[u]);
  }

  function drawCursor(): void {
    heatmap.drawCursor(state.t, rowOf(state.unit), highlightedRows());
  }

  /** What a change of step or unit redraws: the cursor, the text at t and the panels. */
  function scrub(): void {
    followWindow();
    drawCursor();
    describeStep();
    updatePanels();
    select.update(state);
  }

  function redrawAll(): void {
    drawImage();
    scrub();
  }

  function onSelection(): void {
    const before = `${state.layer}/${state.quantity}`;
    readSelection();
    layerSelect.value = state.layer;
    if (before !== `${state.layer}/${state.quantity}`) {
      fillSelect(quantitySelect, Object.keys(selectedLayer(state).quantities), state.quantity);
      drawImage();
    }
    scrub();
  }

  // index, buffer and tokens change together (one message): decode once for all three.
  let payloadPending = false;
  function onPayload(): void {
    if (payloadPending) return;
    payloadPending = true;
    queueMicrotask(() => {
      payloadPending = false;
      load();
      redrawAll();
    });
  }

  function onHover(ev: MouseEvent): void {
    const cell = heatmap.cellAt(ev);
    if (!cell) {
      readout.textContent = "";
      return;
    }
    const q = selectedQuantity(state);
    const unit = state.order ? state.order[cell.row] : cell.row;
    const token = tokenAt(cell.t);
    const padding = cell.t >= state.length ? " (padding)" : "";
    const t0 = q.t0 ?? 0;
    if (overview && (cell.t < t0 || cell.t >= t0 + q.steps)) {
      // outside the window held: what the overview knows about that column of steps
      const c = Math.floor(cell.t / overview.bucket);
      const first = c * overview.bucket;
      const last = Math.min(state.steps, first + overview.bucket) - 1;
      const i = c * overview.units + unit;
      readout.textContent = `unit ${unit} · steps ${first}–${last} · ${q.name} in ` +
        `[${formatValue(overview.min[i])}, ${formatValue(overview.max[i])}]${padding}`;
      return;
    }
    readout.textContent =
      `unit ${unit} · step ${cell.t}${token ? ` · ${token}` : ""} · ${q.name} = ${formatValue(valueAt(q, cell.t, unit))}` +
      padding;
  }

  function onClick(ev: MouseEvent): void {
    const cell = heatmap.cellAt(ev);
    if (!cell) return;
    model.set("unit", state.order ? state.order[cell.row] : cell.row);
    player.setT(cell.t);
    player.saveNow();
    root.focus();
  }

  function onKey(ev: KeyboardEvent): void {
    const last = Math.max(0, state.steps - 1);
    const keys: Record<string, () => void> = {
      ArrowRight: () => actions.setT(state.t + 1),
      ArrowLeft: () => actions.setT(state.t - 1),
      Home: () => actions.setT(0),
      End: () => actions.setT(last),
      ArrowDown: () => actions.setUnit(state.order ? state.order[Math.min(rowOf(state.unit) + 1, state.order.length - 1)] : state.unit + 1),
      ArrowUp: () => actions.setUnit(state.order ? state.order[Math.max(rowOf(state.unit) - 1, 0)] : state.unit - 1),
      " ": () => player.toggle(),
    };
    const act = keys[ev.key];
    // Typing in a box or a select keeps its keys; the step slider's are the Explorer's.
    const typing = ev.target instanceof HTMLInputElement && ev.target.type !== "range";
    if (!act || typing || ev.target instanceof HTMLSelectElement) return;
    ev.preventDefault();
    act();
  }

  layerSelect.addEventListener("change", () => {
    model.set("layer", layerSelect.value);
    model.save_changes();
  });
  quantitySelect.addEventListener("change", () => {
    model.set("quantity", quantitySelect.value);
    model.save_changes();
  });
  heatmap.el.addEventListener("mousemove", onHover);
  heatmap.el.addEventListener("mouseleave", () => (readout.textContent = ""));
  heatmap.el.addEventListener("click", onClick);
  root.addEventListener("keydown", onKey);
  // Show where the keys go (the outline is off: a ring only while focused).
  root.addEventListener("focus", () => (root.style.boxShadow = "0 0 0 2px #92c5de"));
  root.addEventListener("blur", () => (root.style.boxShadow = ""));

  const selectionEvents = ["change:unit", "change:layer", "change:quantity"];
  const payloadEvents = ["change:index", "change:buffer", "change:tokens"];
  for (const name of selectionEvents) model.on(name, onSelection);
  for (const name of payloadEvents) model.on(name, onPayload);
  // Widgets that show the step too follow it live, in the page (set, not saved: the kernel gets
  // the step through this view's t and its links once the scrub rests).
  let followers: AnyModel<{ t: number }>[] = [];
  let followersAsked = 0; // a newer list may be asked for before an older one resolves
  async function findFollowers(): Promise<void> {
    const asked = ++followersAsked;
    const refs = model.get("followers") ?? [];
    const found = await Promise.all(refs.map((ref) => model.widget_manager.get_model(ref.replace(/^IPY_MODEL_/, ""))));
    if (asked !== followersAsked) return;
    followers = found as unknown as AnyModel<{ t: number }>[];
    moveFollowers();
  }
  function moveFollowers(): void {
    for (const f of followers) f.set("t", player.t);
  }
  const stopFollowing = player.onStep(() => {
    onSelection();
    moveFollowers();
  });
  const onFollowers = () => findFollowers().catch((e) => console.warn("rnnwidgets: a linked view was not found", e));
  model.on("change:followers", onFollowers);
  onFollowers();
  model.on("msg:custom", onMessage);
  model.on("change:highlight", drawCursor);
  load();
  redrawAll();

  return () => {
    stopSuppressing();
    stopFollowing();
    model.off("change:followers", onFollowers);
    transport.destroy();
    for (const name of selectionEvents) model.off(name, onSelection);
    for (const name of payloadEvents) model.off(name, onPayload);
    model.off("msg:custom", onMessage);
    model.off("change:highlight", drawCursor);
    heatmap.destroy();
    select.destroy();
    for (const panel of panels) panel.destroy?.();
  };
}
