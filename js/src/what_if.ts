// What if, in the Explorer: clamp the selected unit over the brushed steps (the heatmap's drag,
// patterns.ts; without one, from step t to the end) to 0 or to a value, or patch it from another
// batch element. The request goes to the kernel (trait `what_if`), whose live model re-runs with
// the edit and opens the comparison of before and after under the view (widgets/what_if.py); its
// answer comes back in `what_if_status`. With no live model, or no kernel answering, the box says
// that a live model is needed.
//
// Stable DOM hooks: .rw-whatif (the box), .rw-whatif-op (<select>: zero, value, patch),
// .rw-whatif-value (<input type=number>: the value, or the element to patch from), .rw-whatif-run
// (<button>), .rw-whatif-text (what it will do, did, or why it cannot).
import type { AnyModel } from "@anywidget/types";
import { element } from "./dom";
import type { ExplorerState } from "./state";
import { stepRange } from "./timeaxis";

export interface WhatIfRequest {
  op: "zero" | "value" | "patch";
  value: number;
  source: number;
  unit: number;
  start: number;
  end: number;
  n: number;
}

export interface WhatIfModel {
  brush?: number[];
  what_if?: Partial<WhatIfRequest>;
  what_if_status?: { live?: boolean; n?: number; text?: string };
}

/** How long the box waits for the kernel's answer before saying that none is running. */
export const REPLY_MS = 10_000;
export const NEEDS_LIVE = "clamp and patch re-run the model: they need a live model in a running kernel (rw.explore(model, inputs))";

/** The steps an edit covers: the brushed range [start, end), else from step t to the end. */
export function editSteps(brush: number[] | undefined, t: number, length: number): [number, number] {
  if (brush && brush.length === 2 && brush[0] < brush[1]) return [brush[0], Math.min(brush[1], length)];
  return [t, Math.max(t + 1, length)];
}

export function createWhatIf(model: AnyModel<WhatIfModel>) {
  const el = element("span", "rw-whatif");
  el.style.cssText = "display:inline-flex;align-items:center;gap:4px;font-size:12px";
  const op = element("select", "rw-whatif-op", el);
  for (const [value, words] of [["zero", "clamp to 0"], ["value", "clamp to a value"], ["patch", "patch from element"]]) {
    const option = element("option", "", op);
    option.value = value;
    option.textContent = words;
  }
  const input = element("input", "rw-whatif-value", el);
  input.type = "number";
  input.step = "any";
  input.value = "0";
  input.style.cssText = "width:5em;display:none";
  const run = element("button", "rw-whatif-run", el);
  run.textContent = "what if";
  const text = element("span", "rw-whatif-text", el);
  text.style.color = "var(--rw-fg, #1f1f1f)";
  let last: ExplorerState | null = null;
  let waiting: ReturnType<typeof setTimeout> | null = null;

  function describe(state: ExplorerState): string {
    const [start, end] = editSteps(model.get("brush"), state.t, state.length);
    return `unit ${state.unit} of ${state.layer} ${state.quantity}, steps ${stepRange(start, end)}`;
  }

  function update(state: ExplorerState) {
    last = state;
    input.style.display = op.value === "zero" ? "none" : "";
    if (!waiting) text.textContent = model.get("what_if_status")?.text || describe(state);
  }

  op.addEventListener("change", () => {
    input.value = "0";
    if (last) update(last);
  });
  run.addEventListener("click", (event) => {
    event.stopPropagation();
    if (!last) return;
    if (!model.get("what_if_status")?.live) {
      text.textContent = NEEDS_LIVE;
      return;
    }
    const [start, end] = editSteps(model.get("brush"), last.t, last.length);
    const n = (model.get("what_if")?.n ?? 0) + 1;
    const number = Number(input.value) || 0;
    const request: WhatIfRequest = {
      op: op.value as WhatIfRequest["op"], value: number, source: Math.round(number), unit: last.unit, start, end, n,
    };
    model.set("what_if", request);
    model.save_changes();
    text.textContent = `${describe(last)}: re-running the model…`;
    if (waiting) clearTimeout(waiting);
    waiting = setTimeout(() => {
      waiting = null;
      if (model.get("what_if_status")?.n !== n) text.textContent = NEEDS_LIVE;
    }, REPLY_MS);
  });
  const onStatus = () => {
    const status = model.get("what_if_status");
    if (waiting && status?.n === model.get("what_if")?.n) {
      clearTimeout(waiting);
      waiting = null;
    }
    if (!waiting && status?.text) text.textContent = status.text;
  };
  model.on("change:what_if_status", onStatus);
  return {
    el,
    update,
    destroy: () => {
      model.off("change:what_if_status", onStatus);
      if (waiting) clearTimeout(waiting);
    },
  };
}
