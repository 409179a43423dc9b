// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { colorWord } from "../src/colormap";
import { cursorAt } from "../src/cursor_line";
import { createTokens, MAX_TOKEN_CHARS, paintBand, stepLabel, visibleToken, WINDOW, windowStart } from "../src/tokens";
import { explorerState, layer, quantity, recordingActions } from "./fake-state";

const lstm = (steps: number, units = 3) =>
  layer("lstm.l0", "lstm", [quantity("h", steps, units, (t, u) => Math.tanh((t - 5) * 0.3 + u))]);

describe("token strip", () => {
  it("renders hostile tokens as text and creates no element from them", () => {
    const tokens = ["<img src=x onerror=alert(1)>", "<img/src=x/onerror=alert(3)>", "<script>alert(2)</script>", "&amp;", "ok"];
    const panel = createTokens(recordingActions().actions);
    document.body.append(panel.el);
    panel.update(explorerState([lstm(5)], { tokens }));
    expect(panel.el.querySelector("img, script")).toBeNull();
    const shown = [...panel.el.querySelectorAll(".rw-token")].map((s) => s.textContent);
    expect(shown).toEqual(["<img␣src=x␣onerror=alert(1)>", "<img/src=x/onerror=alert(3)>", "<script>alert(2)</script>", "&amp;", "ok"]);
    panel.el.remove();
  });

  it("shows whitespace and control characters visibly", () => {
    expect(visibleToken(" ")).toBe("␣");
    expect(visibleToken("\n")).toBe("⏎");
    expect(visibleToken("a\tb")).toBe("a⇥b");
    expect(visibleToken("\u0000")).toBe("␀");
    expect(visibleToken("")).toBe("∅");
    expect(visibleToken("héllo")).toBe("héllo");
  });

  it("labels steps: a long token cut with an ellipsis, padding as ·, step numbers without tokens", () => {
    const long = "x".repeat(100);
    expect(stepLabel([long], 0)).toBe(`${"x".repeat(MAX_TOKEN_CHARS - 1)}…`);
    expect(Array.from(stepLabel(["😀".repeat(40)], 0))).toHaveLength(MAX_TOKEN_CHARS); // cut by character
    expect(stepLabel(["a"], 3)).toBe("·");
    expect(stepLabel(null, 7)).toBe("7");
  });

  it("highlights the current step, greys padding, colours by the selected unit", () => {
    const panel = createTokens(recordingActions().actions);
    const state = explorerState([lstm(10)], { tokens: "abcdefgh".split(""), length: 8, t: 3, unit: 1 });
    panel.update(state);
    const spans = [...panel.el.querySelectorAll<HTMLElement>(".rw-token")];
    expect(spans).toHaveLength(10);
    expect(panel.el.querySelectorAll(".rw-token-current")).toHaveLength(1);
    expect(spans[3].classList.contains("rw-token-current")).toBe(true);
    expect(spans.filter((s) => s.classList.contains("rw-token-pad")).map((s) => s.dataset.t)).toEqual(["8", "9"]);
    expect(spans[9].textContent).toBe("·");
    // different values at different steps give different backgrounds
    expect(spans[0].style.background).not.toBe(spans[7].style.background);
    // the readout names the selected unit's value at that step
    const v = state.layers[0].quantities.h.data[2 * 3 + 1];
    expect(spans[2].title).toContain(`h[1] = ${v.toPrecision(4)}`);

    // a scrub moves the highlight without touching the text
    const before = spans[5];
    panel.update({ ...state, t: 5 });
    expect(panel.el.querySelector(".rw-token-current")).toBe(before);
    expect(panel.el.querySelectorAll(".rw-token-current")).toHaveLength(1);
    // another unit recolours
    const bg = spans[0].style.background;
    panel.update({ ...state, t: 5, unit: 2 });
    expect(spans[0].style.background).not.toBe(bg);
  });

  it("clicking a token asks for that step", () => {
    const { actions, calls } = recordingActions();
    const panel = createTokens(actions);
    panel.update(explorerState([lstm(6)], { tokens: "abcdef".split("") }));
    panel.el.querySelectorAll<HTMLElement>(".rw-token")[4].click();
    expect(calls).toEqual([["setT", 4]]);
  });

  it("leaves tokens outside the window of steps the browser holds uncoloured", () => {
    const q = { ...quantity("h", 4, 1, () => 0.9), t0: 3 }; // steps 3..6 of 10
    const panel = createTokens(recordingActions().actions);
    panel.update(explorerState([layer("l", "lstm", [q])], { tokens: "abcdefghij".split(""), steps: 10, length: 10, t: 4 }));
    const spans = [...panel.el.querySelectorAll<HTMLElement>(".rw-token")];
    expect(spans).toHaveLength(10);
    expect(spans[2].style.background).toBe("");
    expect(spans[2].title).toBe("step 2 · c · not loaded"); // its token, and no value
    expect(spans[3].style.background).not.toBe("");
    expect(spans[7].style.background).toBe("");
  });

  it("keeps a bounded window of elements for a long sequence", () => {
    const steps = 100_000;
    const tokens = Array.from({ length: steps }, (_, t) => `w${t}`);
    const panel = createTokens(recordingActions().actions);
    const state = explorerState([lstm(steps, 2)], { tokens, t: 73_210 });
    panel.update(state);
    const spans = [...panel.el.querySelectorAll<HTMLElement>(".rw-token")];
    expect(spans.length).toBe(WINDOW);
    const current = panel.el.querySelector<HTMLElement>(".rw-token-current")!;
    expect(current.textContent).toBe("w73210");
    expect(current.dataset.t).toBe("73210");
    panel.update({ ...state, t: steps - 1 });
    expect(panel.el.querySelectorAll(".rw-token")).toHaveLength(WINDOW);
    expect(panel.el.querySelector(".rw-token-current")!.textContent).toBe(`w${steps - 1}`);
  });

  it("draws one header per pixel when many steps share one, and always the labelled ones", () => {
    // the strip measured at 600 px (its resize observer): 100,000 steps are 0.006 px each
    const observed: ResizeObserverCallback[] = [];
    const saved = globalThis.ResizeObserver;
    globalThis.ResizeObserver = class {
      constructor(callback: ResizeObserverCallback) { observed.push(callback); }
      observe() {}
      disconnect() {}
    } as unknown as typeof ResizeObserver;
    try {
      const steps = 100_000;
      const panel = createTokens(recordingActions().actions);
      const row = panel.el.querySelector<HTMLElement>(".rw-token-row")!;
      const state = explorerState([lstm(steps, 2)], { t: 73_210 });
      panel.update(state);
      const spans = () => [...panel.el.querySelectorAll<HTMLElement>(".rw-token")];
      expect(spans().filter((s) => s.style.display !== "none")).toHaveLength(WINDOW); // unmeasured: all
      Object.defineProperty(row, "clientWidth", { value: 600 });
      for (const callback of observed) callback([], {} as ResizeObserver);
      expect(spans()).toHaveLength(WINDOW);
      const shown = spans().filter((s) => s.style.display !== "none");
      // the window's steps 73,088..73,343 span pixels 438.5..440.1: two pixels, and the current step
      const pixels = new Set(spans().map((s) => Math.round(Number(s.dataset.t) * 600 / steps)));
      expect(shown.length).toBeLessThanOrEqual(pixels.size + 1);
      expect(shown.length).toBeGreaterThanOrEqual(2);
      const current = panel.el.querySelector<HTMLElement>(".rw-token-current")!;
      expect(current.style.display).toBe("");
      expect(current.textContent).toBe("73210");
      // the highlight moves on: the old step loses its label and its element unless it has a pixel
      panel.update({ ...state, t: 73_211 });
      expect(current.textContent).toBe("");
      expect(panel.el.querySelector<HTMLElement>(".rw-token-current")!.style.display).toBe("");
      // a short sequence at the same width keeps every header
      panel.update(explorerState([lstm(300, 2)], { t: 10 }));
      expect(spans().filter((s) => s.style.display !== "none")).toHaveLength(WINDOW);
    } finally {
      globalThis.ResizeObserver = saved;
    }
  }, 30_000);

  it("the window always contains t, with context, inside the sequence", () => {
    for (const steps of [1, 100, WINDOW, WINDOW + 1, 1000, 100_000]) {
      for (const t of [0, 1, 63, 64, 127, 128, 129, 500, steps - 2, steps - 1].filter((t) => t >= 0 && t < steps)) {
        const start = windowStart(t, steps);
        expect(start).toBeGreaterThanOrEqual(0);
        expect(start + Math.min(WINDOW, steps)).toBeLessThanOrEqual(steps);
        expect(t).toBeGreaterThanOrEqual(start);
        expect(t).toBeLessThan(start + WINDOW);
        if (start > 0 && start + WINDOW < steps) {
          expect(t - start).toBeGreaterThanOrEqual(WINDOW / 4);
          expect(start + WINDOW - 1 - t).toBeGreaterThanOrEqual(WINDOW / 4);
        }
      }
    }
  });

  it("numeric inputs get a sparkline with a cursor instead of tokens", () => {
    const steps = 50;
    const inputs = quantity("inputs", steps, 2, (t, f) => (f ? Math.cos(t) : t));
    const { actions, calls } = recordingActions();
    const panel = createTokens(actions);
    panel.update(explorerState([lstm(steps)], { inputs, t: 25 }));
    const spark = panel.el.querySelector<HTMLElement>(".rw-tokens-spark")!;
    expect(spark.style.display).toBe("");
    expect(panel.el.querySelector<HTMLElement>(".rw-token-row")!.style.display).toBe("none");
    // step 25's centre of 50, as a fraction of the strip (drawn on a canvas over it: cursor_line.ts)
    expect(cursorAt(panel.el.querySelector("canvas.rw-tokens-cursor"))).toBe(326 / 640);
    spark.getBoundingClientRect = () => ({ left: 0, top: 0, width: 640, height: 48 }) as DOMRect;
    spark.dispatchEvent(new MouseEvent("click", { clientX: 639, clientY: 5 }));
    spark.dispatchEvent(new MouseEvent("click", { clientX: 13, clientY: 5 }));
    expect(calls).toEqual([["setT", 49], ["setT", 1]]);
  });

  it("the inputs' title numbers a window's steps as the model does", () => {
    const inputs = quantity("inputs", 60, 3, (t) => t);
    const panel = createTokens(recordingActions().actions);
    const info = () => panel.el.querySelector(".rw-tokens-info")!.textContent;
    panel.update(explorerState([lstm(60)], { inputs, t: 1 }));
    expect(info()).toBe("inputs: 3 features · colour: h[0] · step 1 of 60");
    panel.update(explorerState([lstm(60)], { inputs, t: 1, firstStep: 120 }));
    expect(info()).toBe("inputs: 3 features · colour: h[0] · step 121 of 120–179");
    // a long sequence held as a window of steps 10..29 of the browser's
    panel.update(explorerState([lstm(60)], { inputs: { ...inputs, steps: 20, t0: 10 }, t: 12, firstStep: 120 }));
    expect(info()).toBe("inputs: 3 features, steps 130–149 held · colour: h[0] · step 132 of 120–179");
  });

  it("a window of steps' headers, tooltips and window line number the steps as the model does", () => {
    const panel = createTokens(recordingActions().actions);
    const info = () => panel.el.querySelector(".rw-tokens-info")!.textContent;
    const spans = () => [...panel.el.querySelectorAll<HTMLElement>(".rw-token")];
    panel.update(explorerState([lstm(60)], { t: 2, firstStep: 120 }));      // no tokens: step numbers
    expect(spans()[0].textContent).toBe("120");
    expect(spans()[2].title.startsWith("step 122 · h[0] = ")).toBe(true);
    expect(stepLabel(null, 3, 120)).toBe("123");
    expect(stepLabel(null, 3)).toBe("3");
    const long = createTokens(recordingActions().actions);
    const longInfo = () => long.el.querySelector(".rw-tokens-info")!.textContent;
    long.update(explorerState([lstm(1000)], { t: 500 }));
    const start = windowStart(500, 1000);
    expect(longInfo()).toBe(`steps ${start}–${start + WINDOW - 1} of 1000`);
    long.update(explorerState([lstm(1000)], { t: 500, firstStep: 2000 }));
    expect(longInfo()).toBe(`steps ${2000 + start}–${2000 + start + WINDOW - 1} of 2000–2999`);
    expect(info()).toBe("");
  });

  it("the whole token at the cursor moves along the strip with tokens, and stays put without any", () => {
    const panel = createTokens(recordingActions().actions);
    const label = panel.el.querySelector<HTMLElement>(".rw-token-full-label")!;
    const tokens = "abcdefghij".split("");
    panel.update(explorerState([lstm(10)], { tokens, t: 4 }));
    expect(label.textContent).toBe("e");
    expect(label.style.left).toBe(`${((4.5 / 10) * 100).toFixed(4)}%`);
    // steps without tokens: nothing to show, so nothing moved (a moved element costs the page a
    // new layerization in the frame, cursor_line.ts)
    const bare = createTokens(recordingActions().actions);
    const bareLabel = bare.el.querySelector<HTMLElement>(".rw-token-full-label")!;
    for (const t of [0, 3, 7]) bare.update(explorerState([lstm(10)], { t }));
    expect(bareLabel.textContent).toBe("");
    expect(bareLabel.style.cssText).toBe("");
    expect(bare.el.querySelector<HTMLElement>(".rw-token-full")!.style.visibility).toBe("hidden");
  });

  it("the colour band under a sparkline follows the selected unit over the steps shown", () => {
    const q = quantity("h", 10, 2, (t, u) => (u ? -1 : t / 10));
    const words = new Uint32Array(5);
    paintBand(words, 5, q, 0, 0, 10);
    // column x covers steps 2x..2x+1 and shows its middle step, 2x + 1
    expect(Array.from(words)).toEqual([1, 3, 5, 7, 9].map((t) => colorWord(t / 10, "diverging", -1, 1)));
    paintBand(words, 5, q, 0, 0, 5); // only the element's 5 valid steps
    expect(words[4]).toBe(colorWord(0.4, "diverging", -1, 1));
    paintBand(words, 5, q, 1, 0, 10);
    expect(new Set(words).size).toBe(1);
    // a window of a long sequence: steps 100..109 held, the band over 95..110
    paintBand(words, 5, { ...q, t0: 100 }, 0, 95, 110);
    expect(words[0]).toBe(0); // steps 95..97: not held, left transparent
    expect(words[2]).toBe(colorWord(0.2, "diverging", -1, 1)); // step 102 is held index 2
  });
});
