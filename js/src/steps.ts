// A step control for views that are not an Explorer (rnnwidgets.widgets.chart.StepControl): the
// Explorer's transport (transport.ts: Play, the step slider, the speed) moving its followers'
// cursors in the page (followers.ts), so a scrub of the gradient views never waits on the kernel,
// and works in a saved notebook or an exported file with no kernel at all. The kernel hears the
// step once the scrub rests.
//
// Stable DOM hooks: .rw-steps (the root; focusable: ←/→ step, Home/End jump, space plays/pauses)
// and the transport's (.rw-transport, .rw-play, .rw-slider, .rw-step, .rw-speed).
//
// Model traits: t, playing, interval (transport.ts), steps (how many), followers (followers.ts),
// first_step (a window of steps' first, rw.trace(steps=...): the readout says the model's step
// numbers, as the Explorer's; t and the followers' t count from 0).
import type { AnyModel } from "@anywidget/types";
import { element } from "./dom";
import { type FollowedModel, followStep } from "./followers";
import { createTransport, playerOf, type TransportModel } from "./transport";

export interface StepsModel extends TransportModel, FollowedModel {
  steps: number;
  first_step?: number; // the model's number of step 0; 0 when absent
}

const SUPPRESS_SHORTCUTS = "data-lm-suppress-shortcuts";

export function renderSteps(model: AnyModel<StepsModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-steps", el);
  root.style.cssText = "font: 12px sans-serif; color: var(--jp-ui-font-color1, #1a1a1a); outline: none;";
  root.tabIndex = 0;
  const last = () => Math.max(0, model.get("steps") - 1);
  const player = playerOf(model, last);
  const transport = createTransport(model, player);
  root.append(transport.el);
  // the transport's speed label is grey on any theme: ours reads on Light and Dark
  const speedLabel = transport.el.querySelector<HTMLElement>(".rw-speed-label");
  if (speedLabel) speedLabel.style.color = "inherit";

  const show = () => transport.update(player.t, model.get("steps"), model.get("steps"), model.get("first_step") ?? 0);
  const stopShowing = player.onStep(show);
  model.on("change:steps", show);
  model.on("change:first_step", show);
  const stopFollowing = followStep(model, player);

  // Notebook shortcuts (ArrowRight, space, Home/End) run before a focused element sees the key
  // unless the key's target carries this attribute (keys.ts says why).
  root.setAttribute(SUPPRESS_SHORTCUTS, "true");
  const mark = (ev: Event) => (ev.target as Element | null)?.setAttribute?.(SUPPRESS_SHORTCUTS, "true");
  root.addEventListener("focusin", mark);
  const keys: Record<string, () => void> = {
    ArrowRight: () => player.setT(player.t + 1),
    ArrowLeft: () => player.setT(player.t - 1),
    Home: () => player.setT(0),
    End: () => player.setT(last()),
    " ": () => player.toggle(),
  };
  const onKey = (ev: KeyboardEvent) => {
    const act = keys[ev.key];
    // the slider steps itself with the arrow keys; a number box keeps its keys
    if (!act || ev.target instanceof HTMLInputElement) return;
    ev.preventDefault();
    act();
  };
  root.addEventListener("keydown", onKey);
  show();

  return () => {
    stopShowing();
    stopFollowing();
    model.off("change:steps", show);
    model.off("change:first_step", show);
    root.removeEventListener("focusin", mark);
    root.removeEventListener("keydown", onKey);
    transport.destroy();
  };
}
