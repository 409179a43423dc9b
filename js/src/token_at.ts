// The input at the current step, as text in the Explorer's bar (.rw-token-at): the token with its
// whitespace visible, or the first input values when the model reads numbers.
import { formatValue } from "./heatmap";
import { type ExplorerState, type Panel, stepAt } from "./state";
import { createStepLine, textColumns } from "./dom";

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

/** The most columns the text at t is given; a longer token is cut, with an ellipsis. */
export const MAX_COLUMNS = 48;

/** The columns the input's text takes at its widest over the tokens, or over the input values
 * held (each value's text as formatValue writes it), at most MAX_COLUMNS. */
export function tokenAtColumns(state: Pick<ExplorerState, "tokens" | "inputs">): number {
  let widest = 0;
  if (state.tokens) {
    for (const token of state.tokens) widest = Math.max(widest, textColumns(showToken(token)));
  } else if (state.inputs) {
    const q = state.inputs, shown = Math.min(SHOWN_INPUTS, q.units);
    for (let i = 0; i < q.steps; i++) {
      let n = 0;
      for (let u = 0; u < shown; u++) n += formatValue(q.data[i * q.units + u]).length;
      widest = Math.max(widest, n);
    }
    widest += "x = [".length + 2 * (shown - 1) + (q.units > SHOWN_INPUTS ? ", …".length : 0) + "]".length;
  }
  return Math.min(MAX_COLUMNS, widest);
}

// The text changes at every step: a box as wide as its widest text, laid out on its own (dom.ts).
export function createTokenAt(): Panel {
  const line = createStepLine("span", "rw-token-at");
  line.el.style.cssText = "font-family: monospace; white-space: pre;";
  let shown: { t: number; tokens: ExplorerState["tokens"]; inputs: ExplorerState["inputs"] } | null = null;
  return {
    el: line.el,
    update(state: ExplorerState) {
      if (shown && shown.t === state.t && shown.tokens === state.tokens && shown.inputs === state.inputs) return;
      if (!shown || shown.tokens !== state.tokens || shown.inputs !== state.inputs) {
        line.size(`${tokenAtColumns(state) + 1}ch`, "16px");
      }
      line.set(tokenAt(state, state.t));
      shown = { t: state.t, tokens: state.tokens, inputs: state.inputs };
    },
  };
}
