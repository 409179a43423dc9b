// The level-of-detail window protocol of a sequence too long to send whole (index.lod): the
// payload holds a window of `held` steps [t0, t0 + held) and an overview of the selected
// quantity; as t nears either edge of the window, the view asks the kernel for the window
// centred on t, one request at a time:
//   view -> kernel  {type: "window", start}
//   kernel -> view  {type: "window", t0, held} + one float32 buffer laid out like the payload's window
// The reply replaces the steps held (ExplorerStore.adoptWindow); nothing else asks the kernel
// while the view scrubs.
import type { AnyModel } from "@anywidget/types";
import { MESSAGE, decodeWindow, floatsOf } from "./decode";
import { selectedQuantity } from "./state";
import { type Change, type ExplorerModel, type ExplorerStore, type ExplorerView, clamp } from "./store";

/**
 * The first step of the window to ask for at step t, when t is within a quarter window of an edge
 * of the window [t0, t0 + held) of `steps` that has steps beyond it; null while t is well inside.
 * The window asked for is centred on t, clamped to the sequence.
 */
export function windowToAsk(t: number, t0: number, held: number, steps: number): number | null {
  const margin = Math.floor(held / 4);
  const nearStart = t < t0 + margin && t0 > 0;
  const nearEnd = t >= t0 + held - margin && t0 + held < steps;
  if (!nearStart && !nearEnd) return null;
  return clamp(t - Math.floor(held / 2), 0, steps - held);
}

/** Keeps the store's window of steps around t: asks after each change, reads the replies. */
export function followWindows(model: AnyModel<ExplorerModel>, store: ExplorerStore): ExplorerView {
  let pending = false; // a window was asked for and has not arrived

  function follow(): void {
    const lod = store.index?.lod;
    if (!lod || pending) return;
    const state = store.state;
    // on the selected layer's own axis: its window holds min(held, its steps) (timeaxis.ts windowInLayer)
    const q = selectedQuantity(state);
    const start = windowToAsk(state.t, q.t0 ?? 0, Math.min(lod.held, state.steps), state.steps);
    if (start === null) return;
    pending = true;
    model.send({ type: MESSAGE.window, start });
  }

  function onMessage(msg: { type?: string; t0: number; held: number } | null, buffers: DataView[]): void {
    const index = store.index;
    if (msg?.type !== MESSAGE.window || !index?.lod || msg.held !== index.lod.held || !buffers?.length) return;
    const window = decodeWindow(index, floatsOf(buffers[0]), msg.t0, floatsOf(model.get("buffer")));
    pending = false;
    store.adoptWindow(window); // (a "step" change: follow() asks again if t has moved on)
  }

  model.on("msg:custom", onMessage);
  return {
    update(change: Change) {
      if (change === "units") return;
      if (change === "payload") pending = false; // a new payload's window replaces any asked for
      follow();
    },
    destroy: () => model.off("msg:custom", onMessage),
  };
}
