// The Explorer view: composes the store (state and actions, store.ts), the views that draw it and
// the modules that talk to the kernel or the keyboard. Everything a scrub changes is drawn from
// data already in the browser; the kernel is asked only for the next window of steps of a
// sequence too long to send whole (lod.ts).
//
// Lifecycle, as anywidget's initialize/render: what belongs to the model, shared by all its views,
// is the Player (transport.ts: the live step, the play timer, the deferred save); each render
// makes its own store (selection, row order, units compared, the window held) and views.
//
// Stable DOM hooks (browser tests rely on them):
//   .rw-explorer      the root; focusable: ←/→ step, Home/End jump, space plays/pauses, ↑/↓ unit
//                     (notebook shortcuts are off for keys pressed in it or in its Python box,
//                     .rw-explorer-box, so they reach it; keys.ts)
//   .rw-transport     Play/pause .rw-play, the step slider .rw-slider (a range input: the keys
//                     above work on it too), .rw-step, the speed .rw-speed (transport.ts)
//   .rw-layer         <select> of layers/directions      .rw-quantity  <select> of quantities
//   .rw-heatmap       canvas: units (rows) x steps (columns) of the selected quantity
//   .rw-cursor        canvas over it: the current step's column and the selected unit's row, and
//                     marks (heatmap.ROW_MARK) at both ends of the highlighted units' rows
//   .rw-legend        the colour scale, what it encodes and how it is scaled (.rw-per-unit, .rw-palette)
//   .rw-readout       the tooltip at the pointer: unit, step, token, value (.rw-hover-cell outlines the cell)
//   .rw-row-axis, .rw-step-axis   unit ids on the rows (in the rows' order), step ticks
//   .rw-caption       what the heatmap shows (quantity, layer, units x steps)
//   .rw-step          "step t / steps"          .rw-token-at the token (or input values) at t
//   .rw-predictions   the top predictions at t
//   .rw-whatif        clamp / patch the selected unit over the brushed steps (what_if.ts)
//   .rw-attribution   under the tokens: each input step's share of the prediction at t (attribution.ts)
//   .rw-panels        the dashboard: .rw-main (the heatmap; .rw-panels-above holds its column
//                     headers, the token strip .rw-tokens) and collapsible sections (details) of
//                     bars (.rw-bars), unit lines and ordering (.rw-units), cell view (.rw-cellview)
//
// Model traits: index (PayloadIndex JSON) + buffer (float32 bytes) for the selected batch
// element, tokens, the selection t, unit, layer, quantity, and playing + interval (the Play
// speed); highlight and followers (store.ts's ExplorerModel). Custom messages: "window" (lod.ts)
// and "step" from the kernel, which moves the live step (store.ts).
import type { AnyModel } from "@anywidget/types";
import { type AttributionModel, createAttribution } from "./attribution";
import { createBars } from "./bars";
import { createCellview } from "./cellview";
import { element } from "./dom";
import { followStep } from "./followers";
import { createHeatmapPanel } from "./heatmap_panel";
import { listenKeys, suppressNotebookShortcuts } from "./keys";
import { followWindows } from "./lod";
import { type SelectModel, createSelectTool } from "./patterns";
import { createPredictions } from "./predictions";
import { createReadout } from "./readout";
import { createSelectors } from "./selectors";
import type { Panel, PanelFactory } from "./state";
import { type Change, type ExplorerModel, ExplorerStore, type ExplorerView, layerSteps } from "./store";
import { createTokenAt } from "./token_at";
import { createTokens } from "./tokens";
import { createTransport, playerOf } from "./transport";
import { explorerStyle } from "./style";
import { createUnits } from "./units";
import { type WhatIfModel, createWhatIf } from "./what_if";

export type { ExplorerModel } from "./store";

// The panels, each following the Panel contract in state.ts: the token strip as the heatmap's
// column headers; state at t, the unit lines and the cell view in collapsible sections beside and
// under the heatmap (two columns when the cell is wide enough: style.ts).
const SECTIONS: [PanelFactory, string, string][] = [
  [createBars, "rw-section-state", "state at step t"],
  [createUnits, "rw-section-lines", "units over time"],
  [createCellview, "rw-section-cell", "the cell at step t, selected unit"],
];

function row(className: string, parent: HTMLElement): HTMLDivElement {
  return element("div", className, parent);
}

export function renderExplorer(model: AnyModel<ExplorerModel>, el: HTMLElement): () => void {
  const root = row("rw-explorer", el);
  root.append(explorerStyle());
  // the last step of the selected layer's own time axis (layers of one trace may differ)
  const player = playerOf(model, () => Math.max(0, layerSteps(model.get("index"), model.get("layer")) - 1));
  const store = new ExplorerStore(model, player);
  const { state } = store;

  // Top to bottom: the transport, the bar (pickers, the input and predictions at t, the select
  // tool), then the panels: the heatmap with its token headers, axes and legend, and the sections.
  const transport = createTransport(model, player);
  root.append(transport.el);
  const bar = row("rw-bar", root);
  const selectors = createSelectors(model, store);
  const tokenAt = createTokenAt();
  const predictions = createPredictions();
  bar.append(selectors.layer, selectors.quantity, tokenAt.el, predictions.el);
  const panelsEl = row("rw-panels", root);
  const tokens = createTokens(store.actions);
  const panelsAbove = element("div", "rw-panels-above");
  // why the prediction at t, under the tokens (attribution.ts; trait attribution)
  const attribution = createAttribution(model as unknown as AnyModel<AttributionModel>);
  panelsAbove.append(tokens.el, attribution.el);
  const panels: Panel[] = [tokens, attribution];
  const redrawPanels = () => {
    for (const panel of panels) panel.update(state);
  };
  const heatmap = createHeatmapPanel(model, store, panelsAbove, redrawPanels);
  panelsEl.append(heatmap.el);
  for (const [create, className, title] of SECTIONS) {
    const panel = create(store.actions);
    const section = element("details", `rw-section ${className}`, panelsEl);
    section.open = true;
    const summary = element("summary", "rw-section-title", section);
    summary.textContent = title;
    section.append(panel.el);
    panels.push(panel);
  }
  // Drag over the heatmap + threshold: the units of a hypothesis (patterns.ts; traits brush, threshold, highlight).
  // Made before the readout: its click listener swallows the click that ends a drag.
  const select = createSelectTool(model as unknown as AnyModel<SelectModel>, heatmap.heatmap.el, store.actions);
  bar.append(select.el);
  // clamp or patch the selected unit over the brushed steps, re-run by the live model (what_if.ts)
  const whatIf = createWhatIf(model as unknown as AnyModel<WhatIfModel>);
  bar.append(whatIf.el);
  const readout = createReadout(heatmap.heatmap, store, () => root.focus());

  // What each change redraws, in this order: the window asked for first, then what a scrub
  // shows (transport.ts saves the step to the kernel once the scrub rests), then the panels.
  const onScrub = (draw: () => void): ExplorerView => ({ update: (change) => change !== "units" && draw() });
  const views: ExplorerView[] = [
    followWindows(model, store),
    selectors,
    heatmap,
    onScrub(() => transport.update(state.t, state.steps, state.length, state.firstStep ?? 0)),
    onScrub(() => tokenAt.update(state)),
    onScrub(() => predictions.update(state)),
    { update: redrawPanels },
    onScrub(() => select.update(state)),
    { update: () => whatIf.update(state) },
  ];
  store.subscribe((change: Change) => {
    for (const view of views) view.update(change);
  });

  const stopSuppressing = suppressNotebookShortcuts(root, el);
  const stopKeys = listenKeys(root, store);
  const stopFollowing = followStep(model, player);
  store.load();

  return () => {
    stopSuppressing();
    stopKeys();
    stopFollowing();
    store.destroy();
    transport.destroy();
    readout.destroy();
    select.destroy();
    whatIf.destroy();
    for (const view of views) view.destroy?.();
    for (const panel of panels) panel.destroy?.();
  };
}
