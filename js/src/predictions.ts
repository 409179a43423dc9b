// The model's top predictions at the current step (.rw-predictions): "next: label p% · ...", the
// labels shown as text with their whitespace visible.
import { type ExplorerState, type Panel, predictionsAt } from "./state";
import { showToken } from "./token_at";
import { element, setText } from "./dom";

/** The predictions line at step t ("" when the model has no output head). */
export function predictionsText(predictions: ExplorerState["predictions"], t: number): string {
  if (!predictions) return "";
  const top = predictionsAt(predictions, t).map((p) => `${showToken(p.label)} ${(100 * p.prob).toFixed(0)}%`);
  return `next: ${top.join(" · ")}`;
}

export function createPredictions(): Panel {
  const el = element("span", "rw-predictions");
  let shown: { t: number; predictions: ExplorerState["predictions"] } | null = null;
  return {
    el,
    update(state: ExplorerState) {
      if (shown && shown.t === state.t && shown.predictions === state.predictions) return;
      setText(el, predictionsText(state.predictions, state.t));
      shown = { t: state.t, predictions: state.predictions };
    },
  };
}
