// The model's top predictions at the current step (.rw-predictions): "next: label p% · ...", the
// labels shown as text with their whitespace visible.
import { type ExplorerState, type Panel, predictionsAt } from "./state";
import { showToken } from "./token_at";
import { createStepLine, textColumns } from "./dom";

/** The predictions line at step t ("" when the model has no output head). */
export function predictionsText(predictions: ExplorerState["predictions"], t: number): string {
  if (!predictions) return "";
  const top = predictionsAt(predictions, t).map((p) => `${showToken(p.label)} ${(100 * p.prob).toFixed(0)}%`);
  return `next: ${top.join(" · ")}`;
}

/** The columns the predictions line takes at its widest over the steps. */
export function predictionsColumns(predictions: ExplorerState["predictions"]): number {
  if (!predictions) return 0;
  const { k, steps, ids, probs, labels } = predictions;
  const label = labels.map((l) => textColumns(showToken(l)));
  let widest = 0;
  for (let t = 0; t < steps; t++) {
    let n = "next: ".length + " · ".length * (k - 1);
    for (let j = 0; j < k; j++) n += (label[ids[t * k + j]] ?? 0) + ` ${(100 * probs[t * k + j]).toFixed(0)}%`.length;
    widest = Math.max(widest, n);
  }
  return widest;
}

// The line changes at every step: a box as wide as its widest line (in monospace, so that its
// width is known without measuring), laid out on its own (dom.ts createStepLine).
export function createPredictions(): Panel {
  const line = createStepLine("span", "rw-predictions");
  line.el.style.cssText = "font-family: monospace; white-space: pre;";
  let shown: { t: number; predictions: ExplorerState["predictions"] } | null = null;
  return {
    el: line.el,
    update(state: ExplorerState) {
      if (shown && shown.t === state.t && shown.predictions === state.predictions) return;
      if (!shown || shown.predictions !== state.predictions) {
        const columns = predictionsColumns(state.predictions);
        line.el.style.display = columns ? "" : "none";
        line.size(`${columns + 1}ch`, "16px");
      }
      line.set(predictionsText(state.predictions, state.t));
      shown = { t: state.t, predictions: state.predictions };
    },
  };
}
