// A rows x columns grid of numbers (rnnwidgets.widgets.grid.HeatmapGrid): per-layer gradient
// norms through time or over training steps. Painted by heatmap.ts (one pixel per cell through a
// colour table), row labels beside it, the column range under it, a legend and a hover readout.
// The cursor `t` (in column units, e.g. a step; null = none) is on heatmap.ts's overlay canvas,
// so following a slider redraws two lines, not the grid.
//
// Stable DOM hooks (browser tests rely on them):
//   .rw-grid          the root          .rw-grid-title  the title
//   .rw-grid-rows     the row labels (.rw-grid-row-label each, text only)
//   .rw-heatmap       canvas: rows x columns        .rw-cursor  canvas over it: column t
//   .rw-grid-axis     first and last column values and what the columns are
//   .rw-legend        the colour scale              .rw-grid-readout  hover text: row, column, value
//
// Model traits: buffer (float32 bytes, row-major rows x columns), rows, columns, row_labels,
// column_start and column_step (column c holds [start + c*step, start + (c+1)*step)), column_label,
// scale ("diverging" | "sequential" | "log": log10 of magnitudes), vmin, vmax (a log scale's
// are magnitudes), t, title, first_step (a window of steps' first, rw.trace(steps=...): added to
// every column value written, the axis and the readout, as state.ts stepNumber; the columns and t
// count from 0, as the Explorer's t).
import type { AnyModel } from "@anywidget/types";
import { floatsOf } from "./decode";
import { createHeatmap, createLegend, formatValue } from "./heatmap";
import { type Quantity, stepNumber } from "./state";
import { coalesced, element } from "./dom";

export type GridScale = "diverging" | "sequential" | "log";

export interface GridModel {
  buffer: DataView;
  rows: number;
  columns: number;
  row_labels: string[];
  column_start: number;
  column_step: number;
  column_label: string;
  scale: GridScale;
  vmin: number;
  vmax: number;
  t: number | null;
  title: string;
  first_step?: number; // the model's number of step 0 (a window of steps' first); 0 when absent
}

/**
 * The grid as a Quantity heatmap.ts paints (units = rows, steps = columns, time-major). A log
 * scale colours log10|v| between log10 vmin and log10 vmax on the sequential table; an exact 0
 * takes the low end (a gradient that vanished), NaN and ±Inf stay non-finite.
 */
export function gridQuantity(
  values: Float32Array, rows: number, columns: number, scale: GridScale, vmin: number, vmax: number,
): Quantity {
  if (values.length !== rows * columns) {
    throw new Error(`rnnwidgets grid: expected ${rows} x ${columns} = ${rows * columns} values, got ${values.length}`);
  }
  const log = scale === "log";
  const lo = log ? Math.log10(vmin) : vmin;
  const data = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const v = values[r * columns + c];
      data[c * rows + r] = !log ? v : v === 0 ? lo : Math.log10(Math.abs(v));
    }
  }
  return {
    name: "grid", units: rows, steps: columns, data,
    scale: log ? "sequential" : scale, vmin: lo, vmax: log ? Math.log10(vmax) : vmax,
  };
}

/** The column holding x (columns start at `start`, each `step` wide), or -1 outside the grid. */
export function columnOf(x: number | null, start: number, step: number, columns: number): number {
  if (x === null || !Number.isFinite(x) || !(step > 0)) return -1;
  const c = Math.floor((x - start) / step);
  return c >= 0 && c < columns ? c : -1;
}

/** What column c covers, as text: one value, or a range when a column holds several. */
export function columnText(c: number, start: number, step: number): string {
  const first = start + c * step;
  return step === 1 ? `${first}` : `${formatValue(first)}–${formatValue(first + step)}`;
}

export function renderGrid(model: AnyModel<GridModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-grid", el);
  // (a 4px gutter each side: a right-aligned row name never touches the output's edge)
  root.style.cssText = "font: 12px sans-serif; color: var(--jp-ui-font-color1, #1a1a1a); display: flex; flex-direction: column; gap: 4px; padding: 0 4px;";
  const title = element("div", "rw-grid-title", root);
  title.style.cssText = "font-weight: bold;";
  const body = element("div", "rw-grid-body", root);
  body.style.cssText = "display: flex; align-items: stretch; gap: 6px;";
  const labels = element("div", "rw-grid-rows", body);
  labels.style.cssText = "display: flex; flex-direction: column; text-align: right; max-width: 30%;";
  const heatmap = createHeatmap({ halo: true });
  heatmap.el.style.flex = "1 1 auto";
  heatmap.el.style.minWidth = "0";
  body.append(heatmap.el);
  const axis = element("div", "rw-grid-axis", root);
  axis.style.cssText = "display: flex; justify-content: space-between;";
  const footer = element("div", "rw-grid-footer", root);
  footer.style.cssText = "display: flex; justify-content: space-between; gap: 10px; min-height: 16px;";
  const legend = createLegend();
  // said instead of the colour bar when a log scale has no magnitude to place (every value 0):
  // a bar of 0.001 to 1 read as values the grid does not hold
  const zeros = element("span", "rw-grid-zeros");
  footer.append(legend.el, zeros);
  const readout = element("span", "rw-grid-readout", footer);
  readout.style.cssText = "font-family: monospace; white-space: pre;";

  let values: Float32Array = new Float32Array(0);

  function drawCursor(): void {
    const c = columnOf(model.get("t"), model.get("column_start"), model.get("column_step"), model.get("columns"));
    heatmap.drawCursor(c, -1);
  }

  function drawLabels(rows: number): void {
    const names = model.get("row_labels") ?? [];
    labels.replaceChildren(
      ...Array.from({ length: rows }, (_, r) => {
        const label = element("div", "rw-grid-row-label");
        label.style.cssText = "flex: 1 1 0; display: flex; align-items: center; justify-content: flex-end; " +
          "white-space: nowrap; overflow: hidden; min-height: 0;";
        label.textContent = names[r] ?? `${r}`; // user data: text only
        return label;
      }),
    );
  }

  /** Where the column values written start: column_start, counted as the model numbers its steps. */
  const writtenStart = () => stepNumber({ firstStep: model.get("first_step") ?? 0 }, model.get("column_start"));

  function drawAxis(columns: number): void {
    const start = writtenStart();
    const step = model.get("column_step");
    // one column (a one-step run): its value once, under its middle, not "0 … step t … 0"
    const parts = columns === 1 ? [`${model.get("column_label")} ${columnText(0, start, step)}`]
      : columns ? [columnText(0, start, step), model.get("column_label"), columnText(columns - 1, start, step)] : [];
    axis.style.justifyContent = columns === 1 ? "center" : "space-between";
    axis.replaceChildren(
      ...parts.map((text) => {
        const span = document.createElement("span");
        span.textContent = text;
        return span;
      }),
    );
  }

  function draw(): void {
    const rows = model.get("rows");
    const columns = model.get("columns");
    const scale = model.get("scale");
    values = floatsOf(model.get("buffer"));
    title.textContent = model.get("title");
    drawLabels(rows);
    drawAxis(columns);
    // no data: no grid (an empty canvas would stretch to its default 2:1 shape), a sentence
    body.style.display = rows * columns === 0 ? "none" : "flex";
    legend.el.style.display = rows * columns === 0 ? "none" : "flex";
    if (rows * columns === 0) {
      heatmap.clear();
      readout.textContent = "no data yet";
      return;
    }
    const q = gridQuantity(values, rows, columns, scale, model.get("vmin"), model.get("vmax"));
    heatmap.draw(q, null, columns);
    legend.draw(q, scale === "log" ? (v) => formatValue(10 ** v) : formatValue);
    const allZero = scale === "log" && values.some((v) => v === 0) && values.every((v) => v === 0 || !Number.isFinite(v));
    legend.el.style.display = allZero ? "none" : "flex";
    zeros.textContent = allZero ? "every value is 0: nothing to place on the log colour scale (drawn in its lowest colour)" : "";
    heatmap.el.setAttribute("aria-label", `${model.get("title")}: ${rows} rows × ${columns} columns`);
    readout.textContent = "";
    drawCursor();
    // the labels' width is known once they are laid out: the axis starts under the grid
    requestAnimationFrame(() => (axis.style.marginLeft = `${labels.offsetWidth + 6}px`));
  }

  function onHover(ev: MouseEvent): void {
    const cell = heatmap.cellAt(ev);
    const columns = model.get("columns");
    if (!cell || values.length !== model.get("rows") * columns) {
      readout.textContent = "";
      return;
    }
    const name = model.get("row_labels")?.[cell.row] ?? `${cell.row}`;
    const at = columnText(cell.t, writtenStart(), model.get("column_step"));
    readout.textContent = `${name} · ${model.get("column_label")} ${at} · ${formatValue(values[cell.row * columns + cell.t])}`;
  }
  const onLeave = () => (readout.textContent = "");

  heatmap.el.addEventListener("mousemove", onHover);
  heatmap.el.addEventListener("mouseleave", onLeave);
  // The data traits change together (one message, hold_sync): draw once for all of them.
  const onData = coalesced(draw);
  const dataEvents = ["buffer", "rows", "columns", "row_labels", "column_start", "column_step", "column_label",
    "scale", "vmin", "vmax", "title", "first_step"].map((name) => `change:${name}`);
  for (const name of dataEvents) model.on(name, onData);
  model.on("change:t", drawCursor);
  draw();

  return () => {
    for (const name of dataEvents) model.off(name, onData);
    model.off("change:t", drawCursor);
    heatmap.el.removeEventListener("mousemove", onHover);
    heatmap.el.removeEventListener("mouseleave", onLeave);
    heatmap.destroy();
  };
}
