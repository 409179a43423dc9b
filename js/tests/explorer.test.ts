// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { type ExplorerModel, renderExplorer } from "../src/explorer";
import { formatValue } from "../src/heatmap";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";
import { buildPayload, lodPayload, windowValues } from "./payload";

const STEPS = 6;

function explorerModel(over: Partial<ExplorerModel> = {}) {
  const { index, buffer } = buildPayload(STEPS, [
    { name: "lstm.l0", kind: "lstm", quantities: [
      { name: "h", units: 3, f: (t, u) => Math.tanh(t - u) },
      { name: "c", units: 3, f: (t, u) => t - u },
      { name: "forget", units: 3, f: () => 0.5, scale: "sequential" },
    ] },
    { name: "gru.l0", kind: "gru", quantities: [
      { name: "h", units: 2, f: (t, u) => t * u },
      { name: "update", units: 2, f: () => 0.2, scale: "sequential" },
    ] },
  ], { length: 4 });
  return new FakeModel<ExplorerModel>({
    index, buffer, tokens: ["a", "<img src=x onerror=alert(1)>", " ", "d"],
    t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150, ...over,
  });
}

function mount(model: FakeModel<ExplorerModel>) {
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = renderExplorer(model, el);
  const root = el.querySelector<HTMLElement>(".rw-explorer")!;
  const text = (cls: string) => el.querySelector(cls)!.textContent;
  const key = (k: string) => root.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
  return { el, root, cleanup, text, key };
}

afterEach(() => document.body.replaceChildren());

/** The step the views show: the model's t follows once the scrub rests (transport.ts). */
const live = (model: FakeModel<ExplorerModel>) => playerOf(model, () => 0).t;

describe("the Explorer view", () => {
  it("builds the documented DOM hooks and picks the first layer when none is set", () => {
    const { el, text } = mount(explorerModel());
    for (const cls of [".rw-explorer", ".rw-heatmap", ".rw-cursor", ".rw-legend", ".rw-layer", ".rw-quantity", ".rw-readout"]) {
      expect(el.querySelector(cls), cls).not.toBeNull();
    }
    const layers = [...el.querySelectorAll(".rw-layer option")].map((o) => o.textContent);
    expect(layers).toEqual(["lstm.l0", "gru.l0"]);
    const quantities = [...el.querySelectorAll(".rw-quantity option")].map((o) => o.textContent);
    expect(quantities).toEqual(["h", "c", "forget"]);
    expect(text(".rw-step")).toBe("step 0 / 5");
    expect(text(".rw-token-at")).toBe("a");
    expect(text(".rw-caption")).toBe("h of lstm.l0: 3 units (rows) × 6 steps (columns)");
    expect(el.querySelector(".rw-heatmap-box")!.getAttribute("aria-label")).toBe("heatmap of h of lstm.l0: 3 units (rows) × 6 steps (columns)");
  });

  it("steps with the arrow keys, jumps with Home/End and clamps at the ends", () => {
    const model = explorerModel();
    const { key, text } = mount(model);
    key("ArrowRight");
    key("ArrowRight");
    expect(live(model)).toBe(2);
    expect(model.saves).toBe(0); // saved to the kernel once the scrub rests (transport.test.ts)
    expect(text(".rw-token-at")).toBe("␣");
    key("End");
    expect(live(model)).toBe(STEPS - 1);
    expect(text(".rw-step")).toBe("step 5 / 5 (padding)");
    key("ArrowRight");
    expect(live(model)).toBe(STEPS - 1);
    key("Home");
    key("ArrowLeft");
    expect(live(model)).toBe(0);
  });

  it("moves the widgets that follow its step at each step, in the page, and only the latest list of them", async () => {
    const grid = new FakeModel<{ t: number }>({ t: 0 });
    const stale = new FakeModel<{ t: number }>({ t: 0 });
    let releaseStale: (m: unknown) => void = () => {};
    const model = explorerModel({ followers: ["IPY_MODEL_stale"] });
    model.widget_manager = {
      get_model: (id: string) => (id === "grid" ? Promise.resolve(grid) : new Promise((resolve) => (releaseStale = resolve))),
    } as unknown as typeof model.widget_manager;
    const { key } = mount(model);
    model.set("followers", ["IPY_MODEL_grid"]); // a newer list while the first is still being found
    await new Promise((resolve) => setTimeout(resolve, 0));
    key("ArrowRight");
    key("ArrowRight");
    expect([grid.get("t"), grid.saves, model.saves]).toEqual([2, 0, 0]); // live, and nothing sent
    releaseStale(stale);
    await new Promise((resolve) => setTimeout(resolve, 0));
    key("ArrowRight");
    expect([grid.get("t"), stale.get("t")]).toEqual([3, 0]);
  });

  it("goes to a step the kernel names, even one equal to the model's unsaved-over t", () => {
    const model = explorerModel();
    const { key, text } = mount(model);
    key("ArrowRight");
    key("ArrowRight"); // shown, not yet saved: the model's t is still 0
    expect([live(model), model.get("t")]).toEqual([2, 0]);
    model.emit("msg:custom", { type: "step", t: 0 }, []); // Python's select(t=0): no change of t to carry it
    expect(live(model)).toBe(0);
    expect(text(".rw-step")).toBe("step 0 / 5");
  });

  it("plays and pauses with space, and moves the selected unit with up/down", () => {
    const model = explorerModel();
    const { key } = mount(model);
    key(" ");
    expect(model.get("playing")).toBe(true);
    key(" ");
    expect(model.get("playing")).toBe(false);
    key("ArrowDown");
    key("ArrowDown");
    key("ArrowDown");
    expect(model.get("unit")).toBe(2);
    key("ArrowUp");
    expect(model.get("unit")).toBe(1);
  });

  it("shows a hostile token as text and creates no element from it", () => {
    const model = explorerModel({ t: 1 });
    const { el, text } = mount(model);
    expect(text(".rw-token-at")).toBe("<img␣src=x␣onerror=alert(1)>");
    expect(el.querySelector("img")).toBeNull();
  });

  it("follows a layer change from the kernel, falling back to its first quantity when it lacks the selected one", () => {
    const model = explorerModel({ quantity: "c", unit: 2 });
    const { el } = mount(model);
    model.set("layer", "gru.l0");
    const quantities = [...el.querySelectorAll(".rw-quantity option")].map((o) => o.textContent);
    expect(quantities).toEqual(["h", "update"]);
    expect(el.querySelector<HTMLSelectElement>(".rw-quantity")!.value).toBe("h");
    expect(el.querySelector<HTMLSelectElement>(".rw-layer")!.value).toBe("gru.l0");
  });

  it("sends a layer picked in its selector to the model", () => {
    const model = explorerModel();
    const { el } = mount(model);
    const select = el.querySelector<HTMLSelectElement>(".rw-layer")!;
    select.value = "gru.l0";
    select.dispatchEvent(new Event("change"));
    expect(model.get("layer")).toBe("gru.l0");
    expect(model.saves).toBe(1);
  });

  it("reads the hovered cell and selects it on click", () => {
    const model = explorerModel();
    const { el, text } = mount(model);
    const image = el.querySelector<HTMLCanvasElement>(".rw-heatmap")!;
    image.getBoundingClientRect = () => ({ left: 0, top: 0, width: 60, height: 30, right: 60, bottom: 30, x: 0, y: 0, toJSON() {} });
    const box = el.querySelector<HTMLElement>(".rw-heatmap-box")!;
    // 6 steps x 3 units over 60 x 30 px: (25, 25) is step 2, unit 2
    box.dispatchEvent(new MouseEvent("mousemove", { clientX: 25, clientY: 25 }));
    expect(text(".rw-readout")).toBe(`unit 2 · step 2 · ␣ · h = ${Math.tanh(0).toFixed(3)}`);
    box.dispatchEvent(new MouseEvent("mousemove", { clientX: 55, clientY: 5 }));
    expect(text(".rw-readout")).toContain("(padding)");
    box.dispatchEvent(new MouseEvent("click", { clientX: 15, clientY: 15 }));
    expect([model.get("t"), model.get("unit")]).toEqual([1, 1]);
  });

  it("redecodes a new payload once and clamps the selection into it", async () => {
    const model = explorerModel({ t: 5, unit: 2 });
    const { text } = mount(model);
    const small = buildPayload(2, [{ name: "lstm.l0", kind: "lstm", quantities: [{ name: "h", units: 1, f: () => 0 }] }]);
    model.set("index", small.index);
    model.set("buffer", small.buffer);
    await Promise.resolve();
    expect(text(".rw-step")).toBe("step 1 / 1");
  });

  it("removes its listeners when the view goes away", () => {
    const model = explorerModel();
    const { cleanup } = mount(model);
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });

  it("composes the panels and moves them with a scrub", () => {
    const model = explorerModel();
    const { el, key } = mount(model);
    expect(el.querySelector(".rw-panels-above .rw-tokens")).not.toBeNull();
    expect(el.querySelector(".rw-panels .rw-bars")).not.toBeNull();
    expect(el.querySelector(".rw-panels .rw-cellview")).not.toBeNull();
    expect(el.querySelector(".rw-panels .rw-units")).not.toBeNull();
    expect(el.querySelector(".rw-token-current")!.textContent).toBe("a");
    key("ArrowRight");
    key("ArrowRight");
    key("ArrowRight");
    expect(el.querySelector(".rw-token-current")!.textContent).toBe("d");
  });

  it("draws rows in the order the units panel asks for, and hit-tests through it", () => {
    const { index, buffer } = buildPayload(3, [
      { name: "rnn.l0", kind: "rnn", quantities: [{ name: "h", units: 3, f: (t, u) => 0.1 * u * (t + 1) }] },
    ]);
    const model = new FakeModel<ExplorerModel>({
      index, buffer, tokens: null, t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150,
    });
    const { el, text, key } = mount(model);
    const image = el.querySelector<HTMLCanvasElement>(".rw-heatmap")!;
    image.getBoundingClientRect = () => ({ left: 0, top: 0, width: 30, height: 30, right: 30, bottom: 30, x: 0, y: 0, toJSON() {} });
    const box = el.querySelector<HTMLElement>(".rw-heatmap-box")!;
    const order = el.querySelector<HTMLSelectElement>(".rw-order")!;
    order.value = "value"; // by value at t: unit 2 highest
    order.dispatchEvent(new Event("change"));
    box.dispatchEvent(new MouseEvent("mousemove", { clientX: 5, clientY: 5 }));
    expect(text(".rw-readout")).toMatch(/^unit 2 · step 0 · h = 0\.200/);
    key("ArrowDown"); // the next row down from unit 0 (the last row) stays there
    expect(model.get("unit")).toBe(0);
    key("ArrowUp");
    expect(model.get("unit")).toBe(1);
  });

  it("follows a long sequence's window: asks the kernel once near its edge, then reads the reply", () => {
    const f = (t: number, u: number) => (t % 7) / 10 - u / 10;
    const { index, buffer } = lodPayload(1000, 3, 100, 0, 10, f);
    const model = new FakeModel<ExplorerModel>({
      index, buffer, tokens: null, t: 0, unit: 0, layer: "rnn.l0", quantity: "h", playing: false, interval: 150,
    });
    const { el, text } = mount(model);
    const image = el.querySelector<HTMLCanvasElement>(".rw-heatmap")!;
    image.getBoundingClientRect = () => ({ left: 0, top: 0, width: 1000, height: 30, right: 1000, bottom: 30, x: 0, y: 0, toJSON() {} });
    const box = el.querySelector<HTMLElement>(".rw-heatmap-box")!;
    const hover = (t: number) => box.dispatchEvent(new MouseEvent("mousemove", { clientX: t + 0.5, clientY: 5 }));
    model.set("t", 50);
    expect(model.sent).toEqual([]);
    model.set("t", 80); // within a quarter of the window's end
    model.set("t", 90);
    expect(model.sent.map((m) => m.content)).toEqual([{ type: "window", start: 30 }]);
    hover(500);
    expect(text(".rw-readout")).toBe("unit 0 · steps 500–509 · h in [0.000, 0.600]");
    expect(text(".rw-caption")).toBe("h of rnn.l0: 3 units (rows) × 1000 steps (columns) · 10 steps per column (min/max)");
    model.emit("msg:custom", { type: "window", t0: 30, held: 100 }, [new DataView(Float32Array.from(windowValues(3, 100, 30, f)).buffer)]);
    hover(125);
    expect(text(".rw-readout")).toBe(`unit 0 · step 125 · h = ${formatValue(f(125, 0))}`);
    model.set("t", 100); // inside the new window [30, 130), away from its edges: nothing asked
    expect(model.sent.length).toBe(1);
    model.set("t", 110); // near its end again: the next window
    expect(model.sent.map((m) => m.content)).toEqual([{ type: "window", start: 30 }, { type: "window", start: 60 }]);
  });

  it("draws cells crisp when each gets a pixel and smoothed when the image is shrunk", () => {
    const { el } = mount(explorerModel());
    expect(el.querySelector<HTMLElement>(".rw-heatmap")!.style.getPropertyValue("image-rendering")).toBe("pixelated");
    const many = buildPayload(2, [{ name: "rnn.l0", kind: "rnn", quantities: [{ name: "h", units: 400, f: () => 0 }] }]);
    const model = new FakeModel<ExplorerModel>({ ...many, tokens: null, t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150 });
    const shrunk = mount(model).el.querySelector<HTMLElement>(".rw-heatmap")!;
    expect(shrunk.style.getPropertyValue("image-rendering")).toBe("auto"); // 400 rows in at most 360 px
  });
});
