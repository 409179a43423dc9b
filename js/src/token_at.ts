// The input at the current step, as text in the Explorer's bar (.rw-token-at): the token with its
// whitespace visible, or the first input values when the model reads numbers.
import { formatValue } from "./heatmap";
import { type ExplorerState, type Panel, stepAt } from "./state";
import { element, setText } from "./dom";

/** A token shown so that whitespace is visible ("␣", "⏎") and nothing is parsed as markup. */
export function showToken(token: string): string {
  return token.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥");
}

const SHOWN_INPUTS = 4; // input values written out; more are an ellipsis

/** The input at step t as text: its token, or its first input values; "" for neither. */
export function tokenAt(state: Pick<ExplorerState, "tokens" | "inputs">, t: number): string {
  if (state.tokens && t < state.tokens.length) return showToken(state.tokens[t]);
  if (state.inputs) {
    const x = Array.from(stepAt(state.inputs, t).subarray(0, SHOWN_INPUTS), formatValue).join(", ");
    return `x = [${x}${state.inputs.units > SHOWN_INPUTS ? ", …" : ""}]`;
  }
  return "";
}

export function createTokenAt(): Panel {
  const el = element("span", "rw-token-at");
  el.style.cssText = "font-family: monospace; white-space: pre;";
  let shown: { t: number; tokens: ExplorerState["tokens"]; inputs: ExplorerState["inputs"] } | null = null;
  return {
    el,
    update(state: ExplorerState) {
      if (shown && shown.t === state.t && shown.tokens === state.tokens && shown.inputs === state.inputs) return;
      setText(el, tokenAt(state, state.t));
      shown = { t: state.t, tokens: state.tokens, inputs: state.inputs };
    },
  };
}
