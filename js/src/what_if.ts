// What if, in the Explorer: clamp the selected unit over the brushed steps (the heatmap's drag,
// patterns.ts; without one, from step t to the end) to 0 or to a value, or patch it from another
// batch element or another run (a Trace given to rw.explore as patch_from). The request goes to
// the kernel (trait `what_if`), whose live model re-runs with the edit and opens the comparison of
// before and after beside the view (widgets/what_if.py; WHAT_IF_CSS lays it out); its answer
// comes back in `what_if_status`, with the sources to list. With no live model, or no kernel
// answering, the box says that a live model is needed.
//
// Stable DOM hooks: .rw-whatif (the box), .rw-whatif-op (<select>: zero, value, patch),
// .rw-whatif-value (<input type=number>: the value), .rw-whatif-source (<select>: "element k",
// then the traces by name), .rw-whatif-run (<button>), .rw-whatif-text (what it will do, did, or
// why it cannot).
import type { AnyModel } from "@anywidget/types";
import { element, setText, widerLine } from "./dom";
import { sheetMarker } from "./sheet";
import { type ExplorerState, stepNumber } from "./state";
import { stepRange } from "./timeaxis";

export interface WhatIfRequest {
  op: "zero" | "value" | "patch";
  value: number;
  source: number | string; // a batch element, or the name of a trace given as patch_from
  unit: number;
  start: number; // the steps [start, end) as the model numbers them (rw.clamp's, a window's own)
  end: number;
  n: number;
}

export interface WhatIfModel {
  brush?: number[];
  what_if?: Partial<WhatIfRequest>;
  what_if_status?: WhatIfStatus;
}

/** The kernel's answer: whether a live model is there, the request answered, what happened, and
 * the patch sources to list: this batch's `elements` and the `traces` given by name. */
export interface WhatIfStatus {
  live?: boolean;
  n?: number;
  text?: string;
  elements?: number;
  traces?: string[];
}

/** Width of the Explorer's box from which the comparison a what-if opens sits beside the view
 * (3 : 2), and under it below that. */
export const SIDE_BY_SIDE_PX = 900;

/** The layout of the Explorer's box (an ipywidgets VBox, .rw-explorer-box) while it holds an open
 * comparison (.rw-whatif-panel, not closed in the page): a grid whose view (.rw-whatif-main) and
 * comparison share a row where the box is wide enough; everything else spans the row. */
const OPEN = ".rw-explorer-box:has(> .rw-whatif-panel:not(.rw-cmp-closed))";
export const WHAT_IF_CSS = `
${OPEN} { display: grid; align-items: start; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
  gap: 8px 18px; container-type: inline-size; }
${OPEN} > * { grid-column: 1 / -1; min-width: 0; }
@container (min-width: ${SIDE_BY_SIDE_PX}px) {
  ${OPEN} > .rw-whatif-main { grid-column: 1; }
  ${OPEN} > .rw-whatif-panel { grid-column: 2; }
}
.rw-explorer-box > .rw-whatif-panel { box-sizing: border-box; padding: 6px 8px;
  border: 1px solid var(--jp-border-color1, #9e9e9e); border-radius: 3px; }
.rw-whatif-panel .rw-transport { flex-wrap: wrap; row-gap: 4px; }
.rw-whatif-panel .rw-play { flex: none; }
`;

/** The sources a patch can take, as the menu lists them: "element k", then each trace by name. */
export function patchSources(status: WhatIfStatus | undefined): { label: string; source: number | string }[] {
  const elements = Array.from({ length: Math.max(1, status?.elements ?? 1) }, (_, k) => ({ label: `element ${k}`, source: k }));
  return [...elements, ...(status?.traces ?? []).map((name) => ({ label: name, source: name }))];
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
  el.style.cssText = "display:inline-flex;flex-wrap:wrap;align-items:center;gap:4px;font-size:12px";
  el.append(sheetMarker("rw-whatif", WHAT_IF_CSS)); // one sheet per page (sheet.ts)
  const op = element("select", "rw-whatif-op", el);
  for (const [value, words] of [["zero", "clamp to 0"], ["value", "clamp to a value"], ["patch", "patch from"]]) {
    const option = element("option", "", op);
    option.value = value;
    option.textContent = words;
  }
  const input = element("input", "rw-whatif-value", el);
  input.type = "number";
  input.step = "any";
  input.value = "0";
  input.style.cssText = "width:5em;display:none";
  const sourceMenu = element("select", "rw-whatif-source", el);
  sourceMenu.style.display = "none";
  sourceMenu.title = "patch the unit with its values in this batch element or this run, step t from its step t";
  let sources: ReturnType<typeof patchSources> = [];
  function listSources() {
    const next = patchSources(model.get("what_if_status"));
    if (JSON.stringify(next) === JSON.stringify(sources)) return;
    const kept = sources[Number(sourceMenu.value)]?.source;
    sources = next;
    sourceMenu.replaceChildren(...sources.map(({ label }, k) => {
      const option = document.createElement("option");
      option.value = String(k);
      option.textContent = label; // a trace's name is data: text, never markup
      return option;
    }));
    const at = sources.findIndex((s) => s.source === kept);
    sourceMenu.value = String(Math.max(0, at));
  }
  listSources();
  const run = element("button", "rw-whatif-run", el);
  run.textContent = "what if";
  // What the edit covers changes at every step: so that the page lays it out on its own (dom.ts
  // createStepLine says why), the text is then a box laid over a hidden sizer holding the widest
  // such text seen (widerLine), which keeps the line's size through a scrub. The kernel's answers
  // and the notes are plain text that wraps (say).
  const line = element("span", "rw-whatif-line", el);
  line.style.cssText = "position:relative;display:inline-block;white-space:pre";
  const sizer = element("span", "rw-whatif-sizer", line);
  sizer.style.visibility = "hidden";
  sizer.setAttribute("aria-hidden", "true");
  const text = element("span", "rw-whatif-text", line);
  const PLAIN = "color:var(--rw-fg, #1f1f1f)";
  let sized: string | undefined; // the sizer's text while the line shows what the edit covers
  /** Shows what the edit covers at t, in its box over the sizer. */
  function cover(words: string): void {
    const next = widerLine(sized, words);
    if (sized === undefined) {
      line.style.whiteSpace = "pre";
      sizer.style.display = "";
      text.style.cssText = `${PLAIN};position:absolute;left:0;top:0;width:100%;height:100%;contain:strict`;
    }
    if (next !== sized) {
      sized = next;
      setText(sizer, next);
    }
    setText(text, words);
  }
  /** Says `words`: plain text, wrapping where it must. */
  function say(words: string): void {
    if (sized !== undefined) {
      sized = undefined;
      line.style.whiteSpace = "";
      sizer.style.display = "none";
      text.style.cssText = PLAIN;
    }
    setText(text, words);
  }
  text.style.cssText = PLAIN;
  sizer.style.display = "none";
  let last: ExplorerState | null = null;
  let waiting: ReturnType<typeof setTimeout> | null = null;

  /** The steps the edit covers, as the model numbers them (rw.clamp's): a window of steps
   * (rw.trace(steps=...)) starts at its first step, not at 0. */
  function covered(state: ExplorerState): [number, number] {
    const [start, end] = editSteps(model.get("brush"), state.t, state.length);
    return [stepNumber(state, start), stepNumber(state, end)];
  }

  function describe(state: ExplorerState): string {
    return `unit ${state.unit} of ${state.layer} ${state.quantity}, steps ${stepRange(...covered(state))}`;
  }

  function update(state: ExplorerState) {
    last = state;
    input.style.display = op.value === "value" ? "" : "none";
    sourceMenu.style.display = op.value === "patch" ? "" : "none";
    if (waiting) return;
    const status = model.get("what_if_status")?.text;
    if (status) say(status);
    else cover(describe(state));
  }

  op.addEventListener("change", () => {
    input.value = "0";
    if (last) update(last);
  });
  run.addEventListener("click", (event) => {
    event.stopPropagation();
    if (!last) return;
    if (!model.get("what_if_status")?.live) {
      say(NEEDS_LIVE);
      return;
    }
    const [start, end] = covered(last);
    const n = (model.get("what_if")?.n ?? 0) + 1;
    const number = Number(input.value) || 0;
    const request: WhatIfRequest = {
      op: op.value as WhatIfRequest["op"], value: number, source: sources[Number(sourceMenu.value)]?.source ?? 0,
      unit: last.unit, start, end, n,
    };
    model.set("what_if", request);
    model.save_changes();
    say(`${describe(last)}: re-running the model…`);
    if (waiting) clearTimeout(waiting);
    waiting = setTimeout(() => {
      waiting = null;
      if (model.get("what_if_status")?.n !== n) say(NEEDS_LIVE);
    }, REPLY_MS);
  });
  const onStatus = () => {
    const status = model.get("what_if_status");
    listSources();
    if (waiting && status?.n === model.get("what_if")?.n) {
      clearTimeout(waiting);
      waiting = null;
    }
    if (!waiting && status?.text) say(status.text);
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
