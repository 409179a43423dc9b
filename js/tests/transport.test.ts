// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SAVE_EVERY_MS, SAVE_REST_MS, type TransportModel, createTransport, playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";

const LAST = 9;

function transportModel(over: Partial<TransportModel> = {}) {
  return new FakeModel<TransportModel>({ t: 0, playing: false, interval: 100, ...over });
}

function mount(model: FakeModel<TransportModel>) {
  const transport = createTransport(model, playerOf(model, () => LAST));
  document.body.append(transport.el);
  transport.update(model.get("t"), LAST + 1);
  const q = <E extends Element>(cls: string) => transport.el.querySelector<E>(cls)!;
  return { transport, play: q<HTMLButtonElement>(".rw-play"), slider: q<HTMLInputElement>(".rw-slider"), speed: q<HTMLInputElement>(".rw-speed") };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  vi.useRealTimers();
  document.body.replaceChildren();
});

describe("the Explorer's transport", () => {
  it("sets a step in the page at once and saves it to the kernel once the scrub rests", () => {
    const model = transportModel();
    const player = playerOf(model, () => LAST);
    player.attach();
    const heard: number[] = [];
    player.onStep(() => heard.push(player.t));
    player.setT(3);
    player.setT(4);
    expect(heard).toEqual([3, 4]); // every view hears each step at once...
    expect([model.get("t"), model.saves]).toEqual([0, 0]); // ...the kernel once the scrub rests
    vi.advanceTimersByTime(SAVE_REST_MS - 1);
    expect(model.saves).toBe(0);
    vi.advanceTimersByTime(1);
    expect([model.get("t"), model.saves]).toEqual([4, 1]);
    player.setT(99); // clamped
    expect(player.t).toBe(LAST);
    player.setT(-5);
    expect(player.t).toBe(0);
  });

  it("takes a step the kernel sets over one not yet saved, and an echo of its own save changes nothing", () => {
    const model = transportModel();
    const player = playerOf(model, () => LAST);
    player.attach();
    player.setT(5);
    model.set("t", 2); // Python's select(t=2) arrives before the scrub rested
    expect(player.t).toBe(2);
    vi.advanceTimersByTime(SAVE_EVERY_MS);
    expect([model.get("t"), model.saves]).toEqual([2, 0]); // 5 is not sent over it
    player.setT(3);
    vi.advanceTimersByTime(SAVE_REST_MS);
    player.setT(4); // scrubbing on while the save of 3 travels
    model.set("t", 3); // its echo: the model has it already
    expect(player.t).toBe(4);
  });

  it("saves at least every second while a scrub goes on, not at every step", () => {
    const model = transportModel();
    const player = playerOf(model, () => 1000);
    player.attach();
    for (let i = 1; i <= 150; i++) { // 3 s of one step every 20 ms
      player.setT(i);
      vi.advanceTimersByTime(20);
    }
    expect(model.saves).toBeGreaterThanOrEqual(Math.floor(3000 / SAVE_EVERY_MS) - 1);
    expect(model.saves).toBeLessThanOrEqual(Math.ceil(3000 / SAVE_EVERY_MS) + 1);
  });

  it("plays one step per interval, stops at the last step and starts over from there", () => {
    const model = transportModel({ t: 6 });
    const { play, transport } = mount(model);
    play.click();
    expect(model.get("playing")).toBe(true);
    expect(play.getAttribute("aria-label")).toBe("pause");
    vi.advanceTimersByTime(100);
    expect(model.get("t")).toBe(6); // the kernel hears later...
    expect(playerOf(model, () => LAST).t).toBe(7); // ...the views now
    vi.advanceTimersByTime(1000);
    expect(model.get("t")).toBe(LAST); // saved when it stopped
    expect(model.get("playing")).toBe(false);
    expect(play.getAttribute("aria-label")).toBe("play");
    play.click(); // at the end: from the start
    expect(model.get("t")).toBe(0);
    vi.advanceTimersByTime(250);
    play.click(); // pause: saved at once
    expect(model.get("t")).toBe(2);
    vi.advanceTimersByTime(1000);
    expect(model.get("t")).toBe(2);
    transport.destroy();
  });

  it("plays at one speed however many views show the model, and stops when the last goes", () => {
    const model = transportModel();
    const a = mount(model);
    const b = mount(model);
    const player = playerOf(model, () => LAST);
    a.play.click();
    vi.advanceTimersByTime(300);
    expect(player.t).toBe(3);
    a.transport.destroy();
    vi.advanceTimersByTime(100);
    expect(player.t).toBe(4);
    b.transport.destroy();
    expect(model.get("t")).toBe(4); // saved as the last view went
    vi.advanceTimersByTime(500);
    expect(player.t).toBe(4);
    expect(model.listenerCount()).toBe(0);
  });

  it("follows the slider, shows the step on it and bounds the speed", () => {
    const model = transportModel();
    const { slider, speed, transport } = mount(model);
    expect([slider.min, slider.max, slider.value]).toEqual(["0", String(LAST), "0"]);
    slider.value = "5";
    slider.dispatchEvent(new Event("input"));
    expect(playerOf(model, () => LAST).t).toBe(5);
    transport.update(7, LAST + 1);
    expect(slider.value).toBe("7");
    const step = transport.el.querySelector(".rw-step")!;
    expect(step.textContent).toBe(`step 7 / ${LAST}`);
    transport.update(7, LAST + 1, 6); // steps from 6 on are padding
    expect(step.textContent).toBe(`step 7 / ${LAST} (padding)`);
    transport.update(7, LAST + 1, LAST + 1, 120); // a window of steps from the model's step 120
    expect([step.textContent, slider.value]).toEqual([`step 127 / ${LAST + 120}`, "7"]);
    speed.value = "2";
    speed.dispatchEvent(new Event("change"));
    expect(model.get("interval")).toBe(16);
    expect(speed.value).toBe("16");
    model.set("interval", 400); // from Python
    expect(speed.value).toBe("400");
    expect(model.saves).toBe(1); // the speed is saved at once (the step with it)
  });

  it("saves a pending step when its last view goes away", () => {
    const model = transportModel();
    const { slider, transport } = mount(model);
    slider.value = "2";
    slider.dispatchEvent(new Event("input"));
    expect(model.saves).toBe(0);
    transport.destroy();
    expect(model.saves).toBe(1);
  });
});
