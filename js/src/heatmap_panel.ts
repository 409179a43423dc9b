// The Explorer's heatmap: units (rows) x steps (columns) of the selected quantity, in the rows'
// order, with its colour scale and caption; a long sequence (index.lod) shows its overview, one
// column per bucket of steps. The cursor marks the current step's column, the selected unit's
// row, and both ends of the rows of the units the kernel highlights (a co-cluster's). A scrub
// redraws only the cursor; the image is repainted when the data, layer, quantity or order change.
import type { AnyModel } from "@anywidget/types";
import { type Heatmap, createHeatmap, createLegend, formatValue, overviewPerUnit, scaledPerUnit } from "./heatmap";
import { type ExplorerState, selectedQuantity } from "./state";
import { type Change, type ExplorerStore, type ExplorerView, rowOfUnit } from "./store";
import { element } from "./dom";
import { pageBackground, setBackground } from "./colormap";

/** Body attributes JupyterLab sets when the theme changes (after the theme's CSS is loaded). */
const THEME_ATTRIBUTES = ["data-jp-theme-name", "data-jp-theme-light"];

export interface HighlightModel {
  highlight?: number[]; // units the kernel asks to compare: their rows are marked
}

/** The rows (under the state's order) of the highlighted units that the selected quantity has. */
export function highlightedRows(units: number[], state: ExplorerState): number[] {
  if (!units.length) return [];
  const count = selectedQuantity(state).units;
  const rowOfUnitAt = Int32Array.from({ length: count }, (_, u) => u);
  if (state.order) for (let r = 0; r < state.order.length; r++) rowOfUnitAt[state.order[r]] = r;
  return units.filter((u) => u >= 0 && u < count).map((u) => rowOfUnitAt[u]);
}

export interface HeatmapPanel extends ExplorerView {
  heatmap: Heatmap; // .rw-heatmap-box, with the image and the cursor overlay
  legend: HTMLElement; // .rw-legend, with how the colours were scaled and the per-unit toggle
  perUnit: HTMLInputElement; // .rw-per-unit: checked = each unit scaled to its own range
  caption: HTMLElement; // .rw-caption
  destroy(): void;
}

export function createHeatmapPanel(model: AnyModel<HighlightModel>, store: ExplorerStore): HeatmapPanel {
  const heatmap = createHeatmap();
  const legend = createLegend();
  // Scaling: the payload's robust limits, or (one click, drawn here) each unit to its own range.
  const scaling = element("span", "rw-scaling");
  const toggle = element("label", "rw-per-unit-toggle");
  toggle.style.cssText = "display: inline-flex; align-items: center; gap: 3px; cursor: pointer;";
  const perUnit = element("input", "rw-per-unit");
  perUnit.type = "checkbox";
  toggle.append(perUnit, "each unit to its own range");
  legend.el.append(scaling, toggle);
  const caption = element("span", "rw-caption");
  caption.style.cssText = "color: #555;";
  const { state } = store;
  let paintedOn = ""; // the page background the image was painted on (the diverging map's centre)
  const background = () => pageBackground(heatmap.el.isConnected ? heatmap.el : document.documentElement);

  function drawImage(): void {
    paintedOn = background();
    setBackground(paintedOn);
    const shown = selectedQuantity(state);
    const own = perUnit.checked;
    const q = own ? scaledPerUnit(shown, state.length) : shown;
    const lod = store.index?.lod;
    const overview = store.overview;
    legend.draw(q, own ? (v) => (v === 0 ? "0" : `${v < 0 ? "−" : "+"}unit max`) : formatValue);
    scaling.textContent = own
      ? "each unit scaled to its own range"
      : q.scale === "diverging"
        ? `robust limits ±${formatValue(q.vmax)} (upper quartile of the units' 99th percentiles)`
        : `limits ${formatValue(q.vmin)}..${formatValue(q.vmax)}`;
    const perColumn = lod ? ` · ${lod.overview.bucket} steps per column (min/max)` : "";
    const mode = store.index?.training ? " · traced in training mode (dropout on)" : "";
    caption.textContent = `${q.name} of ${state.layer}: ${q.units} units (rows) × ${state.steps} steps (columns)${perColumn}${mode}`;
    heatmap.el.setAttribute("aria-label", `heatmap of ${caption.textContent}`);
    if (!lod) heatmap.draw(q, state.order, state.length);
    else if (overview && overview.layer === state.layer && overview.quantity === state.quantity) {
      const scaled = own ? overviewPerUnit(overview, shown) : { o: overview, q };
      heatmap.drawOverview(scaled.o, scaled.q, state.order, state.length, state.steps);
    } else heatmap.clear(); // the kernel is sending this selection's overview
  }

  function drawCursor(): void {
    heatmap.drawCursor(state.t, rowOfUnit(state, state.unit), highlightedRows(model.get("highlight") ?? [], state));
  }

  perUnit.addEventListener("change", () => paintedOn && drawImage());
  model.on("change:highlight", drawCursor);
  // A theme switch repaints in the new background (the tokens and bars follow on their next draw).
  const themeWatch = new MutationObserver(() => {
    if (paintedOn && background() !== paintedOn) {
      drawImage();
      drawCursor();
    }
  });
  themeWatch.observe(document.body, { attributes: true, attributeFilter: THEME_ATTRIBUTES });
  return {
    heatmap,
    legend: legend.el,
    perUnit,
    caption,
    update(change: Change) {
      if (change === "payload" || change === "layer" || change === "order") drawImage();
      if (change !== "units") drawCursor();
    },
    destroy() {
      model.off("change:highlight", drawCursor);
      themeWatch.disconnect();
      heatmap.destroy();
    },
  };
}
