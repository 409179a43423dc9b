// The Explorer's heatmap: units (rows) x steps (columns) of the selected quantity, in the rows'
// order, with its axes (unit ids on the rows, following a reordering; step ticks; the token strip
// as column headers, in `header`), its colour scale and caption; a long sequence (index.lod)
// shows its overview, one column per bucket of steps. The cursor marks the current step's
// column, the selected unit's row, and both ends of the rows of the units the kernel highlights
// (a co-cluster's). A scrub redraws only the cursor; the image is repainted when the data,
// layer, quantity, order, theme or palette change.
import type { AnyModel } from "@anywidget/types";
import { LINE_PX, createAxis, niceStride, stepLabels, ticks } from "./axes";
import { PALETTE_NAMES, type Palette, currentPalette, pageBackground, setBackground, setPalette } from "./colormap";
import { element, themeSource } from "./dom";
import { type Heatmap, createHeatmap, createLegend, formatValue, overviewPerUnit, scaledPerUnit, shownHeight } from "./heatmap";
import { type ExplorerState, selectedQuantity } from "./state";
import { type Change, type ExplorerStore, type ExplorerView, rowOfUnit, unitAtRow } from "./store";

/** Body attributes JupyterLab sets when the theme changes (after the theme's CSS is loaded). */
const THEME_ATTRIBUTES = ["data-jp-theme-name", "data-jp-theme-light"];
/** Every Explorer on the page repaints when one changes the palette (it is page-wide). */
export const PALETTE_EVENT = "rnnwidgets-palette";

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

/** The rows labelled with their unit id in a heatmap `height` pixels tall: every row when each
 * has a line of text, else every 2nd, 5th, 10th... */
export function rowLabels(state: Pick<ExplorerState, "order">, units: number, height: number): { at: number; text: string }[] {
  return ticks(units, niceStride(height / units, LINE_PX)).map((r) => ({ at: r, text: String(unitAtRow(state, r)) }));
}


export interface HeatmapPanel extends ExplorerView {
  el: HTMLElement; // .rw-main: the heatmap with its axes, header and footer
  heatmap: Heatmap; // .rw-heatmap-box, with the image and the cursor overlay
  legend: HTMLElement; // .rw-legend, with how the colours were scaled and the per-unit toggle
  perUnit: HTMLInputElement; // .rw-per-unit: checked = each unit scaled to its own range
  palette: HTMLSelectElement; // .rw-palette: the colour maps (page-wide)
  caption: HTMLElement; // .rw-caption
  destroy(): void;
}

/** `header`: the column headers (the token strip); `repainted`: called after a theme or palette
 * change repainted the image, so the other panels repaint their colours too. */
/** What the caption says of the mode the model was traced in: training mode (a mode that may
 * change the result: batch statistics, dropout called as a function), and "dropout on" only where
 * the trace found a dropout module or an RNN's between-layer dropout at work (meta["dropout"]). */
export function modeCaption(training: boolean | null | undefined, dropout: boolean | null | undefined): string {
  if (!training) return "";
  return dropout ? " · traced in training mode (dropout on)" : " · traced in training mode";
}

export function createHeatmapPanel(
  model: AnyModel<HighlightModel>, store: ExplorerStore, header: HTMLElement = element("div", "rw-panels-above"),
  repainted: () => void = () => {},
): HeatmapPanel {
  const { state } = store;
  const el = element("div", "rw-main");
  const plot = element("div", "rw-plot", el);
  const rowAxis = createAxis("rw-row-axis", "y");
  const stepAxis = createAxis("rw-step-axis", "x");
  const heatmap = createHeatmap({ rowLines: true, height: shownHeight, onResize: () => drawAxes() });
  const title = (text: string) => {
    const t = element("div", "rw-axis-title");
    t.textContent = text;
    return t;
  };
  const unitTitle = title("unit");
  unitTitle.style.alignSelf = "start";
  const rowGutter = element("div", "rw-row-gutter");
  rowGutter.style.cssText = "display: grid; grid-template-columns: max-content max-content; column-gap: 4px;";
  rowGutter.append(unitTitle, rowAxis.el);
  const headerTitle = title("token");
  plot.append(headerTitle, header, rowGutter, heatmap.el, title("step"), stepAxis.el);

  const legend = createLegend();
  const what = element("span", "rw-legend-what");
  // Scaling: the payload's robust limits, or (one click, drawn here) each unit to its own range.
  const scaling = element("span", "rw-scaling");
  const toggle = element("label", "rw-per-unit-toggle");
  toggle.style.cssText = "display: inline-flex; align-items: center; gap: 3px; cursor: pointer;";
  const perUnit = element("input", "rw-per-unit");
  perUnit.type = "checkbox";
  toggle.append(perUnit, "each unit to its own range");
  const palette = element("select", "rw-palette");
  palette.title = "colour maps: red–blue and viridis, or the colour-blind-safe purple–orange and cividis";
  for (const name of PALETTE_NAMES) {
    const option = element("option", "");
    option.value = name;
    option.textContent = name === "default" ? "red–blue" : "colour-blind safe";
    palette.append(option);
  }
  const controls = element("span", "rw-legend-controls");
  controls.style.cssText = "display: inline-flex; align-items: center; gap: 8px;";
  controls.append(toggle, palette);
  legend.el.append(what, scaling, controls);
  const caption = element("span", "rw-caption");
  const footer = element("div", "rw-footer", el);
  footer.append(legend.el, caption);

  let paintedOn = ""; // the page background and palette the image was painted with
  const background = () => pageBackground(themeSource(heatmap.el));
  const theme = () => `${background()} ${currentPalette()}`;

  function drawAxes(): void {
    const { w, h, steps, units } = heatmap.size();
    if (!state.layers.length) return;
    rowAxis.set(units, rowLabels(state, units, h || shownHeight(units)));
    rowAxis.el.style.width = `${String(Math.max(0, units - 1)).length}ch`; // (its labels are placed absolutely)
    if (w > 0) stepAxis.set(steps, stepLabels(steps, w, state.firstStep ?? 0));
  }

  function drawImage(): void {
    paintedOn = theme();
    setBackground(background());
    palette.value = currentPalette();
    const look = getComputedStyle(themeSource(el));
    const strong = look.getPropertyValue("--jp-ui-font-color0").trim() || "#000";
    const bg = look.getPropertyValue("--jp-layout-color0").trim() || "#fff";
    heatmap.setInk(strong, bg);
    const shown = selectedQuantity(state);
    const own = perUnit.checked;
    const q = own ? scaledPerUnit(shown, state.length) : shown;
    const lod = store.index?.lod;
    const overview = store.overview;
    legend.draw(q, own ? (v) => (v === 0 ? "0" : `${v < 0 ? "−" : "+"}unit max`) : formatValue);
    headerTitle.textContent = state.tokens === null && state.inputs ? "input" : "token";
    what.textContent = `colour: ${q.name} of each unit at each step,`;
    scaling.textContent = own
      ? "each unit scaled to its own range"
      : q.scale === "diverging"
        ? `robust limits ±${formatValue(q.vmax)} (upper quartile of the units' 99th percentiles)`
        : `limits ${formatValue(q.vmin)}..${formatValue(q.vmax)}`;
    const perColumn = lod ? ` · ${lod.overview.bucket} steps per column (min/max)` : "";
    const mode = modeCaption(store.index?.training, store.index?.dropout);
    caption.textContent = `${q.name} of ${state.layer}: ${q.units} units (rows) × ${state.steps} steps (columns)${perColumn}${mode}`;
    heatmap.el.setAttribute("aria-label", `heatmap of ${caption.textContent}`);
    if (!lod) heatmap.draw(q, state.order, state.length);
    else if (overview && overview.layer === state.layer && overview.quantity === state.quantity) {
      const scaled = own ? overviewPerUnit(overview, shown) : { o: overview, q };
      heatmap.drawOverview(scaled.o, scaled.q, state.order, state.length, state.steps);
    } else heatmap.clear(); // the kernel is sending this selection's overview
    drawAxes();
  }

  function drawCursor(): void {
    heatmap.drawCursor(state.t, rowOfUnit(state, state.unit), highlightedRows(model.get("highlight") ?? [], state));
  }

  function repaint(): void {
    if (!paintedOn || theme() === paintedOn) return;
    drawImage();
    drawCursor();
    repainted();
  }

  perUnit.addEventListener("change", () => paintedOn && drawImage());
  palette.addEventListener("change", () => {
    setPalette(palette.value as Palette);
    document.dispatchEvent(new Event(PALETTE_EVENT));
  });
  document.addEventListener(PALETTE_EVENT, repaint);
  model.on("change:highlight", drawCursor);
  // A theme switch repaints in the new background, the cursor in the theme's text colour.
  const themeWatch = new MutationObserver(repaint);
  themeWatch.observe(document.body, { attributes: true, attributeFilter: THEME_ATTRIBUTES });
  return {
    el,
    heatmap,
    legend: legend.el,
    perUnit,
    palette,
    caption,
    update(change: Change) {
      if (change === "payload" || change === "layer" || change === "order") drawImage();
      if (change !== "units") drawCursor();
    },
    destroy() {
      model.off("change:highlight", drawCursor);
      document.removeEventListener(PALETTE_EVENT, repaint);
      themeWatch.disconnect();
      heatmap.destroy();
    },
  };
}
