// The Explorer's transport: Play/pause, the step slider and the speed, drawn in the view so that
// scrubbing and playing never wait on the kernel or talk to it at every step.
//
// Why not ipywidgets' Play and IntSlider with jslink: each of their steps is saved to the kernel,
// and the kernel's replies (its busy/idle status, the echo of the update) cost JupyterLab's main
// thread about 20 ms a step, more than a frame; the slider's readout also forces a layout a step
// (benchmarks/browser.py measured 25 ms a scrub frame with them, 8 ms with every kernel message
// held back). Here a step is shown at once by every view of the model in the page (Player), and
// saved to the kernel once the scrub rests (SAVE_REST_MS), or every SAVE_EVERY_MS while it goes
// on: Python's `explorer.view.t` stays current within a second.
import type { AnyModel } from "@anywidget/types";
import { createStepLine, element } from "./dom";

export interface TransportModel {
  t: number;
  playing: boolean;
  interval: number; // ms per step while playing
}

export const SAVE_REST_MS = 250;
export const SAVE_EVERY_MS = 1000;
// Play speed bounds (rnnwidgets/widgets/explorer.py has the same): faster than a display frame
// only queues redraws.
export const MIN_INTERVAL_MS = 16;
export const MAX_INTERVAL_MS = 5000;

/**
 * One per model, shared by all its views (a widget shown twice must not play twice as fast):
 * the live step, the play timer and the deferred save of the step.
 *
 * The live step is held here, not in the model, until it is saved: a value set on the model but
 * not yet saved would be undone by the kernel's echo of an earlier save (ipywidgets applies the
 * latest echo), and would be sent over a later value the kernel set (select(t=...)). So the
 * model's t changes only with a save, and a change of it from the kernel becomes the live step.
 */
export class Player {
  private views = 0;
  private timer = 0;
  private saveTimer = 0;
  private unsavedSince: number | null = null; // when the oldest unsaved step was set
  private listeners = new Set<() => void>();
  t: number;

  constructor(
    private model: AnyModel<TransportModel>,
    private last: () => number, // the last step
  ) {
    this.t = model.get("t");
  }

  /** Call `listener` whenever the live step changes; returns the undo. */
  onStep(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Go to step t (clamped): now in every view, in the kernel once the scrub rests. */
  setT(t: number): void {
    const next = Math.min(this.last(), Math.max(0, Math.round(t)));
    if (next === this.t) return;
    this.t = next;
    this.saveSoon();
    for (const listener of this.listeners) listener();
  }

  toggle(): void {
    const playing = !this.model.get("playing");
    // Play at the last step starts over, as a media player does.
    if (playing && this.t >= this.last()) this.setT(0);
    this.model.set("playing", playing);
    this.saveNow();
  }

  setInterval(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.model.set("interval", Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(ms))));
    this.saveNow();
  }

  /** Put the live step on the model and save what is pending. */
  saveNow(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = 0;
    this.unsavedSince = null;
    this.model.set("t", this.t);
    this.model.save_changes();
  }

  private saveSoon(): void {
    const now = performance.now();
    if (this.unsavedSince === null) this.unsavedSince = now;
    clearTimeout(this.saveTimer);
    const wait = Math.min(SAVE_REST_MS, this.unsavedSince + SAVE_EVERY_MS - now);
    this.saveTimer = window.setTimeout(() => this.saveNow(), Math.max(0, wait));
  }

  /** The kernel (or a link) moved the model's step: it is the live step now. */
  private onModelT = (): void => this.adopt(this.model.get("t"));

  /** Step t, set in the kernel, becomes the live step; a step not yet saved is dropped. */
  adopt(t: number): void {
    if (t === this.t) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = 0;
    this.unsavedSince = null;
    this.t = t;
    for (const listener of this.listeners) listener();
  }

  private onPlaying = (): void => {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.model.get("playing") && this.views > 0) this.schedule();
  };

  private schedule(): void {
    this.timer = window.setTimeout(this.tick, this.model.get("interval"));
  }

  private tick = (): void => {
    if (this.t + 1 > this.last()) {
      this.model.set("playing", false); // (stops the timer)
      this.saveNow();
      return;
    }
    this.setT(this.t + 1);
    this.schedule();
  };

  attach(): void {
    this.views++;
    if (this.views > 1) return;
    this.t = this.model.get("t");
    this.model.on("change:t", this.onModelT);
    this.model.on("change:playing", this.onPlaying);
    this.onPlaying(); // a saved notebook may reopen playing
  }

  /** A view went away; with none left the timer stops and what is pending is saved. */
  detach(): void {
    this.views = Math.max(0, this.views - 1);
    if (this.views > 0) return;
    this.model.off("change:t", this.onModelT);
    this.model.off("change:playing", this.onPlaying);
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.unsavedSince !== null) this.saveNow();
  }
}

const players = new WeakMap<object, Player>();

/** The model's Player, made on first use. */
export function playerOf(model: AnyModel<TransportModel>, last: () => number): Player {
  let player = players.get(model);
  if (!player) {
    player = new Player(model, last);
    players.set(model, player);
  }
  return player;
}

export interface Transport {
  el: HTMLElement;
  /** Show step t of `steps` ("step t / last", marked padding from `length` on) and the playing state. */
  update(t: number, steps: number, length?: number, first?: number): void; // first: the model's number of step 0
  destroy(): void;
}

/** The row of controls: Play/pause (.rw-play), the slider (.rw-slider), the step text (.rw-step)
 * and the speed (.rw-speed, ms per step). */
export function createTransport(model: AnyModel<TransportModel>, player: Player): Transport {
  const el = element("div", "rw-transport");
  el.style.cssText = "display: flex; align-items: center; gap: 10px;";
  const play = element("button", "rw-play", el);
  play.type = "button";
  play.style.cssText = "width: 32px; height: 24px; padding: 0; font-size: 12px; cursor: pointer;";
  // The slider and the step's text change at every step: each in a box the page lays out on its
  // own (dom.ts createStepLine says why), so a step moves the thumb and rewrites the text without
  // laying out the row and the page around them.
  const track = element("span", "rw-slider-box", el);
  track.style.cssText = "flex: 1 1 auto; min-width: 120px; display: block;";
  const slider = element("input", "rw-slider", track);
  slider.type = "range";
  slider.min = "0";
  slider.step = "1";
  slider.setAttribute("aria-label", "step");
  slider.style.cssText = "display: block; box-sizing: border-box; width: 100%; height: 16px; margin: 0; contain: strict;";
  const step = createStepLine("span", "rw-step", el);
  step.el.style.cssText = "flex: none; font-variant-numeric: tabular-nums;";
  const speedLabel = element("label", "rw-speed-label", el);
  speedLabel.style.cssText = "display: flex; align-items: center; gap: 4px;"; // (its colour: the theme's text, style.ts)
  const speed = element("input", "rw-speed", speedLabel);
  speed.type = "number";
  speed.min = String(MIN_INTERVAL_MS);
  speed.max = String(MAX_INTERVAL_MS);
  speed.style.cssText = "width: 64px;";
  speedLabel.append("ms/step");

  const shown = { t: -1, steps: -1, length: -1, first: 0, playing: null as boolean | null };
  function showPlaying(): void {
    const playing = model.get("playing");
    if (playing === shown.playing) return;
    shown.playing = playing;
    play.textContent = playing ? "❚❚" : "▶";
    play.title = playing ? "pause (space)" : "play (space)";
    play.setAttribute("aria-label", playing ? "pause" : "play");
  }
  function showSpeed(): void {
    speed.value = String(model.get("interval"));
  }

  function update(t: number, steps: number, length = steps, first = 0): void {
    // Written only when changed: a range input's value is cheap, but not free to rewrite.
    if (steps !== shown.steps || length !== shown.length || first !== shown.first) {
      slider.max = String(Math.max(0, steps - 1));
      const longest = `step ${first + steps - 1} / ${first + steps - 1}${length < steps ? " (padding)" : ""}`;
      // ch: a digit's width, wider than the letters used
      step.size(`max(110px, ${longest.length + 1}ch)`, "16px");
      shown.steps = steps;
      shown.length = length;
      shown.first = first;
      shown.t = -1;
    }
    if (t !== shown.t) {
      slider.value = String(t);
      step.set(`step ${first + t} / ${first + steps - 1}${t >= length ? " (padding)" : ""}`);
      shown.t = t;
    }
    showPlaying();
  }

  play.addEventListener("click", () => player.toggle());
  slider.addEventListener("input", () => player.setT(Number(slider.value)));
  speed.addEventListener("change", () => {
    player.setInterval(Number(speed.value));
    showSpeed(); // a value out of bounds shows the bound it was clamped to
  });
  model.on("change:playing", showPlaying);
  model.on("change:interval", showSpeed);
  showSpeed();
  showPlaying();
  player.attach();

  return {
    el,
    update,
    destroy() {
      model.off("change:playing", showPlaying);
      model.off("change:interval", showSpeed);
      player.detach();
    },
  };
}
