// The heatmap's readout and pointer: hovering a cell writes its unit, step, token and value
// (.rw-readout); a long sequence's column outside the window held reads the overview's min and
// max over its steps. A click selects the cell's unit and step.
import type { Overview } from "./decode";
import { type Heatmap, formatValue } from "./heatmap";
import { type ExplorerState, selectedQuantity, stepNumber, valueAt } from "./state";
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
    return `unit ${unit} · steps ${stepNumber(state, first)}–${stepNumber(state, last)} · ${q.name} in ` +
      `[${formatValue(overview.min[i])}, ${formatValue(overview.max[i])}]${padding}`;
  }
  const token = tokenAt(state, cell.t);
  return `unit ${unit} · step ${stepNumber(state, cell.t)}${token ? ` · ${token}` : ""} · ${q.name} = ${formatValue(valueAt(q, cell.t, unit))}` +
    padding;
}

/** Where the pointer's marks go for the cell at (t, row) of a steps x units grid, in percent of
 * the image: the cell's box, and the crosshair's row band and column band through it. */
export function hoverBoxes(t: number, row: number, steps: number, units: number) {
  const pct = (i: number, n: number) => `${((i / n) * 100).toFixed(4)}%`;
  const x = { left: pct(t, steps), width: pct(1, steps) };
  const y = { top: pct(row, units), height: pct(1, units) };
  return {
    cell: { ...x, ...y },
    row: { left: "0%", width: "100%", top: pct(row + 0.5, units), height: "1px" },
    column: { top: "0%", height: "100%", left: pct(t + 0.5, steps), width: "1px" },
  };
}

/** The readout (.rw-readout) of `heatmap`'s cells, a tooltip at the pointer, with the hovered
 * cell outlined (.rw-hover-cell) and a crosshair through it; `focus` gives the keys back to the
 * view after a click. */
export function createReadout(heatmap: Heatmap, store: ExplorerStore, focus: () => void): { el: HTMLElement; destroy(): void } {
  const el = element("span", "rw-readout");
  const marks = (["cell", "row", "column"] as const).map((name) => {
    const mark = element("div", `rw-hover rw-hover-${name}`);
    heatmap.el.append(mark);
    return [name, mark] as const;
  });
  heatmap.el.append(el);

  const onHover = (ev: MouseEvent) => {
    const cell = heatmap.cellAt(ev);
    if (!cell) return onLeave();
    el.textContent = readoutText(store.state, store.overview, cell);
    const { steps, units } = heatmap.size();
    const boxes = hoverBoxes(cell.t, cell.row, steps, units);
    for (const [name, mark] of marks) {
      Object.assign(mark.style, boxes[name]);
      mark.style.display = "block";
    }
    // the tooltip beside the pointer, on the side with room (measured from the box, not the text)
    const box = heatmap.el.getBoundingClientRect();
    const x = ev.clientX - box.left, y = ev.clientY - box.top;
    el.style.left = x < box.width / 2 ? `${x + 14}px` : "";
    el.style.right = x < box.width / 2 ? "" : `${box.width - x + 14}px`;
    el.style.top = y < box.height / 2 ? `${y + 14}px` : "";
    el.style.bottom = y < box.height / 2 ? "" : `${box.height - y + 14}px`;
  };
  const onLeave = () => {
    el.textContent = "";
    for (const [, mark] of marks) mark.style.display = "none";
  };
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
