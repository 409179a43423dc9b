// The Explorer's keys: ←/→ step, Home/End jump, space plays/pauses, ↑/↓ move the selected unit
// one row (under the rows' order). Notebook shortcuts are off for keys pressed in the view or in
// the Python Explorer's box (EXPLORER_BOX), so that they reach it.
import { type ExplorerStore, rowOfUnit } from "./store";

/** The class of the Python Explorer's VBox, which holds the Play/slider controls beside this view. */
export const EXPLORER_BOX = "rw-explorer-box";
const SUPPRESS_SHORTCUTS = "data-lm-suppress-shortcuts";
const markFocused = (ev: Event) => (ev.target as Element | null)?.setAttribute?.(SUPPRESS_SHORTCUTS, "true");

/**
 * JupyterLab and Notebook 7 (Lumino) run notebook shortcuts such as ArrowRight (move to the next
 * heading), space and Home/End before a focused element sees the key. Lumino skips them when
 * the key's target carries this attribute (it checks the target before matching ":focus"
 * selectors, so an ancestor's attribute is not enough): `root` gets it now, and whatever takes
 * the focus in the Explorer's box (the slider's handle, Play) once ipywidgets has put `el` in
 * that box, which happens after render. Returns the undo.
 */
export function suppressNotebookShortcuts(root: HTMLElement, el: HTMLElement, frames = 120): () => void {
  root.setAttribute(SUPPRESS_SHORTCUTS, "true");
  let box: Element | null = null;
  let request = 0;
  const find = (left: number) => {
    box = el.closest(`.${EXPLORER_BOX}`);
    if (box) box.addEventListener("focusin", markFocused);
    else if (left > 0) request = requestAnimationFrame(() => find(left - 1));
  };
  find(frames);
  return () => {
    cancelAnimationFrame(request);
    box?.removeEventListener("focusin", markFocused);
  };
}

/** What each key does to the store's selection. */
function keyActions(store: ExplorerStore): Record<string, () => void> {
  const { state, actions } = store;
  const down = () => (state.order ? state.order[Math.min(rowOfUnit(state, state.unit) + 1, state.order.length - 1)] : state.unit + 1);
  const up = () => (state.order ? state.order[Math.max(rowOfUnit(state, state.unit) - 1, 0)] : state.unit - 1);
  return {
    ArrowRight: () => actions.setT(state.t + 1),
    ArrowLeft: () => actions.setT(state.t - 1),
    Home: () => actions.setT(0),
    End: () => actions.setT(Math.max(0, state.steps - 1)),
    ArrowDown: () => actions.setUnit(down()),
    ArrowUp: () => actions.setUnit(up()),
    " ": () => store.togglePlay(),
  };
}

/** Makes `root` focusable and takes the keys pressed in it (a ring shows it has them); returns the undo. */
export function listenKeys(root: HTMLElement, store: ExplorerStore): () => void {
  const keys = keyActions(store);
  root.tabIndex = 0;
  const onKey = (ev: KeyboardEvent) => {
    const act = keys[ev.key];
    // Typing in a box or a select keeps its keys; the step slider's are the Explorer's.
    const typing = ev.target instanceof HTMLInputElement && ev.target.type !== "range";
    if (!act || typing || ev.target instanceof HTMLSelectElement) return;
    ev.preventDefault();
    act();
  };
  // Show where the keys go (the outline is off: a ring only while focused).
  const onFocus = () => (root.style.boxShadow = "0 0 0 2px #92c5de");
  const onBlur = () => (root.style.boxShadow = "");
  root.addEventListener("keydown", onKey);
  root.addEventListener("focus", onFocus);
  root.addEventListener("blur", onBlur);
  return () => {
    root.removeEventListener("keydown", onKey);
    root.removeEventListener("focus", onFocus);
    root.removeEventListener("blur", onBlur);
  };
}
