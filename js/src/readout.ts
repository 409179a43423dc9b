// The heatmap's readout and pointer: hovering a cell writes its unit, step, token and value
// (.rw-readout); a long sequence's column outside the window held reads the overview's min and
// max over its steps. A click selects the cell's unit and step.
import type { Overview } from "./decode";
import { type Heatmap, formatValue } from "./heatmap";
import { type ExplorerState, selectedQuantity, valueAt } from "./state";
import { type ExplorerStore, unitAtRow } from "./store";
import { tokenAt } from "./token_at";
import { bucketColumn } from "./timeaxis";
import { element } from "./dom";

/** What the readout says about the cell at step t, row `row` ("" for none). */
export function readoutText(state: ExplorerState, overview: Overview | null, cell: { t: number; row: number }): string {
  const q = selectedQuantity(state);
  const unit = unitAtRow(state, cell.row);
  const padding = cell.t >= state.length ? " (padding)" : "";
  const t0 = q.t0 ?? 0;
  if (overview && (cell.t < t0 || cell.t >= t0 + q.steps)) {
    // outside the window held: what the overview knows about that column of steps
    const { column, first, last } = bucketColumn(cell.t, overview.bucket, state.steps);
    const i = column * overview.units + unit;
    return `unit ${unit} · steps ${first}–${last} · ${q.name} in ` +
      `[${formatValue(overview.min[i])}, ${formatValue(overview.max[i])}]${padding}`;
  }
  const token = tokenAt(state, cell.t);
  return `unit ${unit} · step ${cell.t}${token ? ` · ${token}` : ""} · ${q.name} = ${formatValue(valueAt(q, cell.t, unit))}` +
    padding;
}

/** The readout (.rw-readout) of `heatmap`'s cells; `focus` gives the keys back to the view after a click. */
export function createReadout(heatmap: Heatmap, store: ExplorerStore, focus: () => void): { el: HTMLElement; destroy(): void } {
  const el = element("span", "rw-readout");
  el.style.cssText = "font-family: monospace; white-space: pre;";

  const onHover = (ev: MouseEvent) => {
    const cell = heatmap.cellAt(ev);
    el.textContent = cell ? readoutText(store.state, store.overview, cell) : "";
  };
  const onLeave = () => (el.textContent = "");
  const onClick = (ev: MouseEvent) => {
    const cell = heatmap.cellAt(ev);
    if (!cell) return;
    store.select(cell.t, unitAtRow(store.state, cell.row));
    focus();
  };
  heatmap.el.addEventListener("mousemove", onHover);
  heatmap.el.addEventListener("mouseleave", onLeave);
  heatmap.el.addEventListener("click", onClick);
  return {
    el,
    destroy() {
      heatmap.el.removeEventListener("mousemove", onHover);
      heatmap.el.removeEventListener("mouseleave", onLeave);
      heatmap.el.removeEventListener("click", onClick);
    },
  };
}
