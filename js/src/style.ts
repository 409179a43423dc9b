// The Explorer's stylesheet: every colour from JupyterLab's theme variables (--jp-*), with
// fallbacks for front ends that have none, so text keeps its contrast in Light and Dark; and the
// dashboard's layout, two columns where the cell is wide enough and one below that.
import { X_TICK_LEFT } from "./axes";
import { SERIES_COLOURS } from "./colormap";
import { sheetMarker } from "./sheet";

/** Text colour, background and lines, named once: every rule below reads these. */
export const THEME_VARIABLES = `
  --rw-fg: var(--jp-ui-font-color1, #1f1f1f);
  --rw-bg: var(--jp-layout-color0, #ffffff);
  --rw-panel: var(--jp-layout-color1, #ffffff);
  --rw-line: var(--jp-border-color1, #9e9e9e);
  --rw-faint: var(--jp-layout-color2, #eeeeee);
  --rw-strong: var(--jp-ui-font-color0, #000000);
  --rw-error: var(--jp-error-color1, #b2182b);
  --rw-mono: var(--jp-code-font-family, monospace);
`;

/** The series colours as --rw-series-0..7 on `selector`: the light theme's, and the dark theme's
 * where the page says it is dark (JupyterLab's data-jp-theme-light, VS Code's vscode-dark). */
export function seriesVariables(selector: string): string {
  const vars = (colours: string[]) => colours.map((c, k) => `--rw-series-${k}: ${c};`).join(" ");
  return `${selector} { ${vars(SERIES_COLOURS.light)} }
[data-jp-theme-light="false"] ${selector}, body.vscode-dark ${selector} { ${vars(SERIES_COLOURS.dark)} }
`;
}

/** Container width from which the panels sit side by side (the heatmap beside state at t). */
export const TWO_COLUMNS_PX = 820;

export const EXPLORER_CSS = `
.rw-explorer { ${THEME_VARIABLES}
  color: var(--rw-fg); font: 12px var(--jp-ui-font-family, sans-serif);
  container-type: inline-size; outline: none; display: flex; flex-direction: column; gap: 6px; }
.rw-explorer button, .rw-explorer select, .rw-explorer input {
  color: var(--rw-fg); background: var(--rw-panel); border: 1px solid var(--rw-line); font: inherit; }
.rw-explorer .rw-bar { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
.rw-explorer .rw-panels { display: grid; gap: 8px 16px; grid-template-columns: minmax(0, 1fr);
  grid-template-areas: "main" "state" "lines" "cell"; align-items: start; }
@container (min-width: ${TWO_COLUMNS_PX}px) {
  .rw-explorer .rw-panels { grid-template-columns: minmax(0, 7fr) minmax(0, 4fr);
    grid-template-areas: "main state" "lines cell"; }
}
.rw-explorer .rw-main { grid-area: main; min-width: 0; }
.rw-explorer .rw-section-state { grid-area: state; }
.rw-explorer .rw-section-lines { grid-area: lines; }
.rw-explorer .rw-section-cell { grid-area: cell; }
.rw-explorer .rw-section { min-width: 0; }
.rw-explorer .rw-section > summary { cursor: pointer; font-weight: 600; margin-bottom: 2px; }

/* The heatmap with its axes: a gutter of titles and unit ids left of the plot column. */
.rw-explorer .rw-plot { display: grid; grid-template-columns: max-content minmax(0, 1fr); column-gap: 4px; }
.rw-explorer .rw-axis-title { font-size: 11px; text-align: right; align-self: end; white-space: nowrap; }
/* the columns' title sits beside the whole token at the cursor, above the headers, which may
   reach left of the first column when they are wider than it */
.rw-explorer .rw-plot > .rw-axis-title:first-child { align-self: start; line-height: 16px; }
.rw-explorer .rw-axis { position: relative; font: 11px var(--rw-mono); }
.rw-explorer .rw-axis .rw-tick { position: absolute; white-space: pre; line-height: 1; }
.rw-explorer .rw-row-axis { min-width: 2ch; }
.rw-explorer .rw-row-axis .rw-tick { right: 0; transform: translateY(-50%); }
.rw-explorer .rw-step-axis, .rw-explorer .rw-bars-axis { height: 14px; }
.rw-explorer .rw-step-axis .rw-tick, .rw-explorer .rw-bars-axis .rw-tick { top: 2px; transform: translateX(-50%);
  ${X_TICK_LEFT} }

/* Tokens as the heatmap's column headers: each token spans its column. */
/* (Text that changes at every step of a scrub sits in boxes of a fixed size under contain:
   strict, so that rewriting it lays out that box alone, not the dashboard's grid around it.) */
.rw-explorer .rw-token-full { position: relative; height: 16px; font: 11px var(--rw-mono); contain: strict; }
.rw-explorer .rw-token-full span { position: absolute; top: 0; white-space: pre; line-height: 14px;
  padding: 0 3px; border: 1px solid var(--rw-strong); background: var(--rw-bg); color: var(--rw-strong); }
/* (the strip's height is set by tokens.ts: size and layout contained, it lays out on its own when
   a header's text changes; its paint is not contained, headers may reach past its left end) */
.rw-explorer .rw-token-row { position: relative; font: 11px var(--rw-mono); overflow: visible; contain: size layout style; }
.rw-explorer .rw-token { position: absolute; bottom: 0; height: 100%; display: flex; justify-content: center;
  align-items: flex-end; overflow: visible; cursor: pointer; white-space: pre; line-height: 14px; box-sizing: border-box; }
.rw-explorer .rw-token.rw-token-vertical { writing-mode: vertical-rl; transform: rotate(180deg); align-items: center;
  justify-content: flex-start; padding-top: 2px; }
.rw-explorer .rw-token-current { box-shadow: inset 0 0 0 2px var(--rw-strong); }

/* The pointer: crosshair, the hovered cell's outline and the tooltip follow the mouse. */
.rw-explorer .rw-heatmap-box .rw-hover { position: absolute; pointer-events: none; display: none; }
.rw-explorer .rw-hover-cell { box-shadow: 0 0 0 1px var(--rw-bg), 0 0 0 2px var(--rw-strong); }
.rw-explorer .rw-hover-row, .rw-explorer .rw-hover-column { background: var(--rw-strong); opacity: 0.45; }
.rw-explorer .rw-readout { position: absolute; pointer-events: none; z-index: 2; font: 11px var(--rw-mono);
  white-space: pre; padding: 2px 5px; background: var(--rw-bg); color: var(--rw-fg);
  border: 1px solid var(--rw-line); border-radius: 3px; }
.rw-explorer .rw-readout:empty { display: none; }

.rw-explorer .rw-footer { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 4px 12px; margin-top: 4px; }
.rw-explorer .rw-legend { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; font-size: 11px; }
.rw-explorer .rw-caption { font-size: 11px; }

/* State at t: one row per quantity, its name and the selected unit's value left of its bars. */
.rw-explorer .rw-bars-row { display: grid; grid-template-columns: 11em minmax(0, 1fr); align-items: center; column-gap: 6px; }
/* (each label's text sits in a box of a fixed size under contain: strict, dom.ts createStepLine) */
.rw-explorer .rw-bars-label { font: 11px var(--rw-mono); white-space: pre; }
.rw-explorer .rw-bars canvas { width: 100%; display: block; cursor: pointer; }
.rw-explorer .rw-bars-axis-row { display: grid; grid-template-columns: 11em minmax(0, 1fr); column-gap: 6px; }
/* room on the right for half of the last unit's id, centred on the last bar */
.rw-explorer .rw-bars-rows { padding-right: 1em; }

/* Lines over time and the cell view. */
.rw-explorer .rw-units-plot { position: relative; width: 100%; cursor: crosshair; }
.rw-explorer .rw-units-plot canvas { width: 100%; display: block; }
.rw-explorer .rw-units-legend { display: flex; gap: 8px; flex-wrap: wrap; font: 11px var(--rw-mono); }
.rw-explorer .rw-unit-search-msg { color: var(--rw-error); }
.rw-explorer .rw-cellview { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: flex-start; }
.rw-explorer .rw-cellview-text { font: 11px var(--rw-mono); white-space: pre-wrap; min-width: 0; flex: 1 1 22em;
  position: relative; }
.rw-explorer .rw-cell-drawing { flex: 0 0 auto; }
.rw-explorer .rw-cell-drawing text { fill: var(--rw-fg); font-size: 13px; }
.rw-explorer .rw-units-yaxis { font: 11px var(--rw-mono); }
.rw-explorer .rw-units-yaxis .rw-tick { right: 0; }
.rw-explorer .rw-units-yaxis-right .rw-tick { right: auto; left: 0; }
.rw-explorer .rw-cell-drawing circle { fill: var(--rw-bg); stroke: var(--rw-fg); }
.rw-explorer .rw-cell-drawing .rw-cell-input { stroke: var(--rw-line); }
`;

/** The Explorer's rules with its series colours: one sheet per page (sheet.ts). */
export const EXPLORER_SHEET = EXPLORER_CSS + seriesVariables(".rw-explorer");

/** The marker that brings the stylesheet to a view's page (sheet.ts): the document's or the
 * shadow root's one copy, shared by every view there, so an exported page or another front end
 * needs nothing else. */
export function explorerStyle(): HTMLElement {
  return sheetMarker("rw-explorer", EXPLORER_SHEET);
}
