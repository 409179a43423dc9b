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

/** What a view's keys move: its step (of `steps()`), its selected row, and Play. */
export interface KeyTarget {
  t(): number;
  steps(): number;
  setT(t: number): void;
  /** Select the row `delta` rows down (+1) or up (-1) from the selected one, within the rows. */
  moveRow(delta: 1 | -1): void;
  togglePlay(): void;
}

/** What each key does: ←/→ step, Home/End jump, ↓/↑ move the row, space plays/pauses. */
export function stepKeys(target: KeyTarget): Record<string, () => void> {
  return {
    ArrowRight: () => target.setT(target.t() + 1),
    ArrowLeft: () => target.setT(target.t() - 1),
    Home: () => target.setT(0),
    End: () => target.setT(Math.max(0, target.steps() - 1)),
    ArrowDown: () => target.moveRow(1),
    ArrowUp: () => target.moveRow(-1),
    " ": () => target.togglePlay(),
  };
}

/** The Explorer's keys over the store's selection (its rows' order, when set). */
function keyActions(store: ExplorerStore): Record<string, () => void> {
  const { state, actions } = store;
  const moveRow = (delta: 1 | -1) => {
    if (!state.order) return actions.setUnit(state.unit + delta);
    const row = Math.min(Math.max(rowOfUnit(state, state.unit) + delta, 0), state.order.length - 1);
    actions.setUnit(state.order[row]);
  };
  return stepKeys({
    t: () => state.t,
    steps: () => state.steps,
    setT: (t) => actions.setT(t),
    moveRow,
    togglePlay: () => store.togglePlay(),
  });
}

/**
 * Makes `root` focusable and gives it the keys pressed in it (`keys`: what each does), with a
 * ring while it has the focus unless `ring` is false; returns the undo. Typing in a box or a
 * select keeps its keys; a range slider's are the view's.
 */
export function takeKeys(root: HTMLElement, keys: Record<string, () => void>, ring = true): () => void {
  root.tabIndex = 0;
  const onKey = (ev: KeyboardEvent) => {
    const act = keys[ev.key];
    const typing = ev.target instanceof HTMLInputElement && ev.target.type !== "range";
    if (!act || typing || ev.target instanceof HTMLSelectElement) return;
    ev.preventDefault();
    act();
  };
  // Show where the keys go (the outline is off: a ring only while focused).
  const onFocus = () => (root.style.boxShadow = "0 0 0 2px #92c5de");
  const onBlur = () => (root.style.boxShadow = "");
  root.addEventListener("keydown", onKey);
  if (ring) {
    root.addEventListener("focus", onFocus);
    root.addEventListener("blur", onBlur);
  }
  return () => {
    root.removeEventListener("keydown", onKey);
    root.removeEventListener("focus", onFocus);
    root.removeEventListener("blur", onBlur);
  };
}

/** Makes `root` focusable and takes the Explorer's keys pressed in it (a ring shows it has them); returns the undo. */
export function listenKeys(root: HTMLElement, store: ExplorerStore): () => void {
  return takeKeys(root, keyActions(store));
}
