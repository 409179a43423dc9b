// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type Colours, type Ctx, type DynamicsData, type DynamicsIndex, type DynamicsModel, columnExtremes, decadeLabel, decades, logTicks,
  colours, decodeDynamics, drawEigen, drawPlane, drawSpectrum, extent, readout, renderDynamics, upwardComponents,
} from "../src/dynamics";
import { SERIES_COLOURS, contrast, parseColor } from "../src/colormap";
import { FakeModel } from "./fake_model";

const C: Colours = {
  fg: "fg", muted: "muted", line: "line", accent: "accent", stable: "stable", unstable: "unstable", exponent: "exponent",
  bg: "bg",
};

/** A fake payload: 4 steps (the last past the length), 2 fixed points (0 stable, 1 a saddle), state 2. */
function payload(): { index: DynamicsIndex; floats: Float32Array } {
  const arrays: Record<string, number[]> = {
    trajectory: [0, 0, 0, 1, 1, 0, 2, 0, 1, NaN, NaN, NaN],
    sigma_max: [2, 1, 0.5, NaN],
    sigma_min: [0.1, 0.2, 0.3, NaN],
    exponent: [0.69, 0.35, 0, NaN],
    points: [0, 0, 0, 2, 2, 2],
    stable: [1, 0],
    arrows: [0, 0, 0, 1, 0, 0],
    eig_re: [0.5, 0.2, 1.5, 0.3],
    eig_im: [0, 0, 0, 0],
    nearest: [0, 0, 1, -1],
  };
  const index: DynamicsIndex = {
    arrays: {}, steps: 4, length: 3, k: 2, points: 2, state: 2, explained: [0.6, 0.3, 0.1],
    lyapunov: [-0.1, -0.5], reverse: false,
  };
  const all: number[] = [];
  for (const [name, values] of Object.entries(arrays)) {
    index.arrays[name] = [all.length, values.length];
    all.push(...values);
  }
  return { index, floats: Float32Array.from(all) };
}

/** A fake view's model over the payload. */
function model() {
  const { index, floats } = payload();
  return new FakeModel<DynamicsModel>({
    buffer: new DataView(floats.buffer), index, layer: "gru.l0", batch: 0, t: 0, title: "<b>gru.l0</b>",
  });
}

/** A context that records what was drawn: each path's arcs and whether it was filled or stroked. */
class Recorder {
  calls: { op: string; args: number[]; style: unknown }[] = [];
  fillStyle: unknown = "";
  strokeStyle: unknown = "";
  lineWidth = 1;
  font = "";
  globalAlpha = 1;
  private arcs: number[][] = [];
  beginPath() { this.arcs = []; }
  moveTo() {}
  lineTo() {}
  arc(x: number, y: number, r: number) { this.arcs.push([x, y, r]); }
  fill() { for (const a of this.arcs) this.calls.push({ op: "fill", args: a, style: this.fillStyle }); }
  stroke() { for (const a of this.arcs) this.calls.push({ op: "stroke", args: a, style: this.strokeStyle }); }
  clearRect() {}
  fillText() {}
  setLineDash() {}
}

describe("dynamics payload", () => {
  it("decodes every array as a view of the buffer", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    expect(Array.from(d.sigmaMax.slice(0, 3))).toEqual([2, 1, 0.5]);
    expect(Array.from(d.nearest)).toEqual([0, 0, 1, -1]);
    expect(d.trajectory.buffer).toBe(floats.buffer);
  });

  it("refuses an index that does not fit the buffer, saying what it expected", () => {
    const { index, floats } = payload();
    expect(() => decodeDynamics(index, floats.subarray(0, 10))).toThrow(/array trajectory expected 12 values at 0, the buffer holds 10/);
  });

  it("pads the extent and ignores non-finite values", () => {
    const box = extent([Float32Array.of(0, NaN, 10)], [Float32Array.of(0, 5, 10)]);
    expect(box.x0).toBeCloseTo(-0.8);
    expect(box.x1).toBeCloseTo(10.8);
  });
});

describe("dynamics drawing", () => {
  it("fills stable fixed points, rings unstable ones, and marks the current step", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    const ctx = new Recorder();
    drawPlane(ctx as unknown as Ctx, d, 1, 1, 300, 300, C);
    const points = ctx.calls.filter((c) => c.args[2] === 5);
    expect(points.map((c) => [c.op, c.style])).toEqual([["fill", "stable"], ["stroke", "unstable"]]);
    const marker = ctx.calls.filter((c) => c.args[2] === 4);
    expect(marker).toHaveLength(1);
    expect(marker[0].style).toBe("accent");
    // step 1 is at (1, 1): to the right of and above step 0 at (0, 0), which is the first fixed point
    expect(marker[0].args[0]).toBeGreaterThan(points[0].args[0]);
    expect(marker[0].args[1]).toBeLessThan(points[0].args[1]);
  });

  it("draws no marker past the element's length", () => {
    const { index, floats } = payload();
    const ctx = new Recorder();
    drawPlane(ctx as unknown as Ctx, decodeDynamics(index, floats), 3, 1, 300, 300, C);
    expect(ctx.calls.filter((c) => c.args[2] === 4)).toHaveLength(0);
  });

  it("colours eigenvalues outside the unit circle as unstable", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    const ctx = new Recorder();
    expect(drawEigen(ctx as unknown as Ctx, d, 1, 160, C)).toBe(1);
    const dots = ctx.calls.filter((c) => c.op === "fill").map((c) => c.style);
    expect(dots).toEqual(["unstable", "line"]);
    expect(drawEigen(new Recorder() as unknown as Ctx, d, 0, 160, C)).toBe(0);
  });

  it("puts sigma = 1 inside the spectrum's log range", () => {
    const { index, floats } = payload();
    const [lo, hi] = drawSpectrum(new Recorder() as unknown as Ctx, decodeDynamics(index, floats), 0, 460, 150, C);
    expect(lo).toBeLessThan(Math.log10(0.1));
    expect(hi).toBeGreaterThan(Math.log10(2));
  });

  it("puts the step cursor at the heatmap's column centre when aligned, past a label margin otherwise", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    const cursorX = (left: number | null) => {
      const moves: [number, unknown][] = [];
      const ctx = new Recorder();
      const record = { moveTo: (x: number) => moves.push([x, ctx.strokeStyle]) };
      Object.assign(ctx, record);
      drawSpectrum(ctx as unknown as Ctx, d, 2, 400, 150, C, left);
      return moves.filter(([, style]) => style === "accent").map(([x]) => x);
    };
    expect(cursorX(0)).toEqual([((2 + 0.5) / 4) * 400]);    // timeaxis.xOfStep(2, 4, 400)
    expect(cursorX(44)).toEqual([44 + ((2 + 0.5) / 4) * 356]);   // the heatmap's columns start 44 px in
    expect(cursorX(null)).toEqual([40 + (2 / 3) * (400 - 8 - 40)]);
  });

  /** Each path stroked: its style and its points. */
  function paths(draw: (ctx: Ctx) => void) {
    const out: { style: unknown; points: [number, number][] }[] = [];
    let points: [number, number][] = [];
    const ctx = new Recorder();
    Object.assign(ctx, {
      beginPath: () => { points = []; },
      moveTo: (x: number, y: number) => points.push([x, y]),
      lineTo: (x: number, y: number) => points.push([x, y]),
      stroke: () => out.push({ style: ctx.strokeStyle, points }),
    });
    draw(ctx as unknown as Ctx);
    return out;
  }

  it("draws the running exponent as e^λ on the sigma axis", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    let range: [number, number] = [0, 0];
    const drawn = paths((ctx) => { range = drawSpectrum(ctx, d, 0, 460, 150, C); });
    const line = drawn.filter((p) => p.style === "exponent");
    expect(line).toHaveLength(1);
    expect(line[0].points).toHaveLength(3);                   // the valid steps (the 4th is NaN)
    const [lo, hi] = range;
    const y = (v: number) => 150 - 18 + ((v - lo) / (hi - lo)) * (6 - (150 - 18));
    // e^0.69 ≈ 2 = σ_max at step 0: the same height; e^0 = 1 at step 2: on the dashed line σ = 1
    expect(line[0].points[0][1]).toBeCloseTo(y(0.69 / Math.LN10), 6);
    expect(line[0].points[2][1]).toBeCloseTo(y(0), 6);
  });

  it("labels decades only, in superscript, at least 16 px apart", () => {
    expect(decadeLabel(0)).toBe("10⁰");
    expect(decadeLabel(-12)).toBe("10⁻¹²");
    expect(decades(-7.6, 0.6, 126)).toEqual([-6, -4, -2, 0]);     // 8.2 decades: every 2nd
    expect(decades(-1.2, 0.4, 126)).toEqual([-1, 0]);
    expect(decades(-0.3, 0.3, 126)).toEqual([0]);
    const { index, floats } = payload();
    const texts: string[] = [];
    const ctx = new Recorder();
    Object.assign(ctx, { fillText: (text: string) => texts.push(text) });
    drawSpectrum(ctx as unknown as Ctx, decodeDynamics(index, floats), 0, 460, 150, C);
    const labels = texts.filter((t) => t.startsWith("10"));
    expect(labels).toEqual(["10⁻¹", "10⁰"]);
    expect(texts.every((t) => !t.includes("^") && !t.includes("."))).toBe(true);
  });

  it("right-aligns each decade label a few px short of its tick mark, in either layout", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    for (const left of [null, 44, 90] as (number | null)[]) {
      const labels: { text: string; x: number }[] = [];
      const ctx = new Recorder();
      Object.assign(ctx, {
        fillText: (text: string, x: number) => labels.push({ text, x }),
        measureText: (text: string) => ({ width: 7 * [...text].length }),
      });
      drawSpectrum(ctx as unknown as Ctx, d, 0, 460, 150, C, left);
      const x0 = left ?? 40;   // the plot's left edge; the tick marks run from x0 - 4 to x0
      const decadeLabels = labels.filter((l) => l.text.startsWith("10"));
      expect(decadeLabels.length).toBeGreaterThanOrEqual(2);
      for (const { text, x } of decadeLabels) {
        const gap = x0 - 4 - (x + 7 * [...text].length);
        expect(gap).toBeGreaterThanOrEqual(2);
        expect(gap).toBeLessThanOrEqual(4);
      }
    }
  });

  it("draws the running exponent last, over a halo of the page's colour, thicker than the sigmas", () => {
    const { index, floats } = payload();
    const strokes: { style: unknown; width: number }[] = [];
    const ctx = new Recorder();
    Object.assign(ctx, { stroke: () => strokes.push({ style: ctx.strokeStyle, width: ctx.lineWidth }) });
    drawSpectrum(ctx as unknown as Ctx, decodeDynamics(index, floats), 0, 460, 150, C);
    const marks = strokes.filter((s) => ["line", "muted", "exponent", "bg"].includes(String(s.style)) && s.width > 1);
    expect(marks.map((s) => s.style)).toEqual(["line", "muted", "bg", "exponent"]);
    const [halo, line] = marks.slice(2);
    expect(line.width).toBeGreaterThan(1.5);
    expect(halo.width).toBeGreaterThanOrEqual(line.width + 2);   // at least 1 px of the page on each side
  });

  it("labels a log axis within one decade at two ticks at least: 2·10ⁿ and 5·10ⁿ, else its ends", () => {
    const at = (ticks: { at: number; text: string }[]) => ticks.map((t) => [+t.at.toFixed(4), t.text]);
    expect(logTicks(-1.2, 0.4, 126).map((t) => t.text)).toEqual(["10⁻¹", "10⁰"]);   // two decades: as before
    // σ from 0.49 to 1.6: 10⁰ alone before; now 0.5 and 1 (2 is past the top)
    expect(at(logTicks(-0.31, 0.2, 126))).toEqual([[+Math.log10(0.5).toFixed(4), "0.5"], [0, "1"]]);
    // σ from 0.8 to 1.25: no 2 or 5 inside, the other m·10ⁿ (16 px apart on 126 px for 0.19 decades)
    const narrow = logTicks(-0.097, 0.097, 126);
    expect(narrow.length).toBeGreaterThanOrEqual(2);
    expect(narrow.map((t) => t.text)).toContain("1");
    // a sliver of a decade with no m·10ⁿ of its own: its ends, rounded inwards
    // (10^0.01 = 1.023, 10^0.03 = 1.072: no decade inside at all)
    expect(logTicks(0.01, 0.03, 126).map((t) => t.text)).toEqual(["1.03", "1.07"]);
    for (const [lo, hi] of [[-0.31, 0.2], [-0.097, 0.097], [0.01, 0.03], [-0.05, 0.04], [-0.3, 0.01]]) {
      const ticks = logTicks(lo, hi, 126);
      expect(ticks.length).toBeGreaterThanOrEqual(2);
      expect(ticks.every((t) => t.at >= lo && t.at <= hi)).toBe(true);
      for (let i = 1; i < ticks.length; i++) expect((ticks[i].at - ticks[i - 1].at) * (126 / (hi - lo))).toBeGreaterThanOrEqual(16);
    }
  });

  it("draws at least two labels on the spectrum's axis when σ stays within a decade", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    const flat = { ...d, sigmaMax: d.sigmaMax.map(() => 1.3), sigmaMin: d.sigmaMin.map(() => 0.7), exponent: d.exponent.map(() => 0.1) };
    const texts: string[] = [];
    const ctx = new Recorder();
    Object.assign(ctx, { fillText: (text: string) => texts.push(text) });
    drawSpectrum(ctx as unknown as Ctx, flat, 0, 460, 150, C);
    const numbers = texts.filter((t) => /^[0-9]/.test(t) && !t.startsWith("PC"));
    expect(numbers.length).toBeGreaterThanOrEqual(2);
  });

  it("draws a long sequence as each pixel column's min and max, keeping a one-step spike", () => {
    const steps = 5000;
    const sigma = new Float32Array(steps).fill(0.5);
    sigma[3210] = 50;                                         // one step far above the rest
    const d: DynamicsData = {
      ...decodeDynamics(payload().index, payload().floats), steps, length: steps, sigmaMax: sigma,
      sigmaMin: new Float32Array(steps).fill(0.1), exponent: new Float32Array(steps).fill(-0.5),
      trajectory: new Float32Array(steps * 3), nearest: new Float32Array(steps).fill(-1), points: 0,
    };
    const { lo, hi } = columnExtremes((i) => sigma[i], steps, 100);
    expect(hi[Math.floor((3210 * 100) / steps)]).toBe(50);
    expect(lo.every((v) => v === 0.5)).toBe(true);
    const drawn = paths((ctx) => drawSpectrum(ctx, d, 3210, 544, 150, C, 44));
    const top = drawn.find((p) => p.style === "line")!;
    expect(top.points.length).toBeLessThanOrEqual(2 * 500);  // two points per pixel column of the 500-px plot
    const peak = top.points.reduce((a, b) => (b[1] < a[1] ? b : a));
    const cursor = drawn.find((p) => p.style === "accent")!.points[0][0];
    expect(Math.abs(peak[0] - cursor)).toBeLessThanOrEqual(1);   // the spike sits under the cursor at its step
  });

  it("reads out the step's sigmas and the nearest fixed point", () => {
    const { index, floats } = payload();
    const d = decodeDynamics(index, floats);
    expect(readout(d, 2)).toBe("step 2 · σ_max 0.5000 · σ_min 0.3000 · running exponent 0.000 · nearest fixed point 1 (unstable)");
    expect(readout(d, 3)).toContain("σ_max –");
  });

  it("numbers a window of steps as the model does: its readout and step ticks from first_step", () => {
    const { index, floats } = payload();
    expect(decodeDynamics(index, floats).firstStep).toBe(0);
    const d = decodeDynamics({ ...index, first_step: 120 }, floats);
    expect(d.firstStep).toBe(120);
    expect(readout(d, 2)).toBe("step 122 · σ_max 0.5000 · σ_min 0.3000 · running exponent 0.000 · nearest fixed point 1 (unstable)");
    // 60 steps, the model's 120–179: round ticks of the model's steps, each at its own step's x
    const steps = 60, w = 460, h = 150;
    const long: DynamicsData = {
      ...d, steps, length: steps, sigmaMax: new Float32Array(steps).fill(2), sigmaMin: new Float32Array(steps).fill(0.5),
      exponent: new Float32Array(steps).fill(0.1), trajectory: new Float32Array(steps * 3),
      nearest: new Float32Array(steps).fill(-1), points: 0,
    };
    for (const [first, left] of [[120, null], [125, null], [120, 44]] as [number, number | null][]) {
      const labels: string[] = [];
      const drawn = paths((ctx) => {
        Object.assign(ctx, { fillText: (text: string) => labels.push(text) });
        drawSpectrum(ctx, { ...long, firstStep: first }, 0, w, h, C, left);
      });
      const ticks = drawn.filter((p) => p.style === "fg" && p.points.length === 2 && p.points[0][1] === h - 18);
      const numbers = labels.slice(labels.indexOf("step") + 1).map(Number);   // the step axis's, after its title
      expect(numbers.length).toBeGreaterThanOrEqual(2);
      expect(numbers.every((n) => n >= first && n < first + steps && n % 10 === 0)).toBe(true);
      // the same data counted from 0 draws step n - first at the x where the window's tick n is
      const cursor = (t: number) => paths((ctx) => drawSpectrum(ctx, { ...long, firstStep: 0 }, t, w, h, C, left))
        .find((p) => p.style === "accent")!.points[0][0];
      expect(ticks.length).toBeGreaterThanOrEqual(numbers.length);
      const at = ticks.map((p) => p.points[0][0]);
      for (const n of numbers) expect(at.some((x) => Math.abs(x - cursor(n - first)) < 1e-9)).toBe(true);
    }
  });
});

describe("the dynamics view", () => {
  afterEach(() => vi.useRealTimers());

  it("builds its elements, keeps the title as text, and follows t", () => {
    const m = model();
    const el = document.createElement("div");
    renderDynamics(m, el);
    expect(el.querySelector(".rw-dyn-title")!.textContent).toBe("<b>gru.l0</b>");
    expect(el.querySelector(".rw-dyn-title b")).toBeNull();
    const slider = el.querySelector(".rw-dyn-slider") as HTMLInputElement;
    expect(slider.max).toBe("3");
    m.set("t", 2);
    expect(slider.value).toBe("2");
    expect(el.querySelector(".rw-dyn-readout")!.textContent).toContain("nearest fixed point 1 (unstable)");
    expect(el.querySelectorAll("canvas")).toHaveLength(3);
    expect(el.querySelector(".rw-dyn")!.getAttribute("data-lm-suppress-shortcuts")).toBe("true");
    const legend = () => el.querySelector(".rw-dyn-legend")!.textContent!;
    expect(legend()).not.toContain("whole run");
    m.set("index", { ...m.get("index"), first_step: 120, run_steps: 300 });   // a window of steps: the model's 120 on
    expect(el.querySelector(".rw-dyn-readout")!.textContent).toMatch(/^step 122 · /);
    expect(legend()).toMatch(/ per step; the plane and the exponents are of the whole run \(steps 0–299\), shown here over steps 120–123$/);
  });

  it("says in a sentence, as text, why a layer with no steps in the window has nothing to draw", () => {
    const m = model();
    const el = document.createElement("div");
    renderDynamics(m, el);
    const empty = el.querySelector<HTMLElement>(".rw-dyn-empty")!;
    const hidden = () => [".rw-dyn-row", ".rw-dyn-aligned-row", ".rw-dyn-slider", ".rw-dyn-readout", ".rw-dyn-legend"]
      .map((c) => el.querySelector<HTMLElement>(c)!.style.display);
    expect(empty.style.display).toBe("none");
    expect(hidden()).toEqual(["flex", "flex", "", "", ""]);
    const sentence = "<b>encoder.l0</b> has no steps in the window shown (steps 6–9): it runs 5 steps, 0–4, so there is nothing of it to draw here.";
    // what DynamicsView sends for such a layer: every per-step array empty
    const arrays = Object.fromEntries(["trajectory", "sigma_max", "sigma_min", "exponent"].map((k) => [k, [0, 0] as [number, number]]));
    m.set("index", { ...m.get("index"), arrays, points: 0, steps: 0, length: 0, first_step: 6, empty: sentence });
    m.set("buffer", new DataView(new ArrayBuffer(0)));
    expect(empty.style.display).toBe("");
    expect(empty.textContent).toBe(sentence);
    expect(empty.querySelector("b")).toBeNull();                   // text, never HTML
    expect(hidden()).toEqual(["none", "none", "none", "none", "none"]);
    expect(el.querySelector(".rw-dyn-title")!.textContent).toBe("<b>gru.l0</b>");   // the title still says which layer
    m.set("t", 3);                                                  // nothing drawn, nothing thrown
    m.set("buffer", new DataView(payload().floats.buffer));
    m.set("index", payload().index);                                // a layer with steps: the plots again
    expect(empty.style.display).toBe("none");
    expect(hidden()).toEqual(["flex", "flex", "", "", ""]);
  });

  it("offers upwards only the principal components the layer has", () => {
    expect(upwardComponents(3).map((o) => o.text)).toEqual(["PC2 upwards", "PC3 upwards"]);
    expect(upwardComponents(2).map((o) => o.text)).toEqual(["PC2 upwards"]);
    expect(upwardComponents(1)).toEqual([]);
    const m = model();
    const el = document.createElement("div");
    renderDynamics(m, el);
    const menu = el.querySelector<HTMLSelectElement>(".rw-dyn-yaxis")!;
    expect([...menu.options].map((o) => o.textContent)).toEqual(["PC2 upwards", "PC3 upwards"]);
    expect(menu.style.display).toBe("");
    menu.value = "2";
    m.set("index", { ...m.get("index"), components: 2, explained: [0.7, 0.3] });   // a two-unit layer
    expect([...menu.options].map((o) => o.textContent)).toEqual(["PC2 upwards"]);
    expect(menu.value).toBe("1");
    expect(menu.style.display).toBe("none");   // nothing to choose between
    m.set("index", { ...m.get("index"), components: 1, explained: [1] });     // a one-unit layer
    expect(menu.options).toHaveLength(0);
    m.set("index", { ...m.get("index"), components: 3, explained: [0.6, 0.3, 0.1] });
    expect(menu.options).toHaveLength(2);
    expect(menu.style.display).toBe("");
  });

  it("says so on the plane of a one-unit layer instead of naming a PC2 it has not", () => {
    const d = decodeDynamics(payload().index, payload().floats);
    const texts = (components: number) => {
      const out: string[] = [];
      const ctx = new Recorder();
      Object.assign(ctx, { fillText: (text: string) => out.push(text) });
      drawPlane(ctx as unknown as Ctx, d, 1, 1, 300, 300, C, components);
      return out;
    };
    expect(texts(3)).toContain("PC2 ↑");
    expect(texts(1)).toContain("PC1 only: the layer has one unit");
    expect(texts(1).some((t) => t.includes("PC2"))).toBe(false);
  });

  it("moves t at once from the slider and saves once the slider rests", () => {
    vi.useFakeTimers();
    const m = model();
    const el = document.createElement("div");
    renderDynamics(m, el);
    const slider = el.querySelector(".rw-dyn-slider") as HTMLInputElement;
    for (const v of ["1", "2"]) {
      slider.value = v;
      slider.dispatchEvent(new Event("input"));
    }
    expect(m.get("t")).toBe(2);
    expect(m.saves).toBe(0);
    vi.advanceTimersByTime(300);
    expect(m.saves).toBe(1);
  });
});

describe("dynamics colours", () => {
  afterEach(() => { document.body.replaceChildren(); document.body.removeAttribute("style"); });

  /** A view inside a transparent wrapper on a page painted `page`. */
  function viewOn(page: string): HTMLElement {
    document.body.style.backgroundColor = page;
    const wrapper = document.createElement("div");
    wrapper.style.backgroundColor = "rgba(0, 0, 0, 0)";
    const el = document.createElement("div");
    wrapper.append(el);
    document.body.append(wrapper);
    return el;
  }

  it("draws every mark in the series colours of the page's theme, at least 3:1 against it", () => {
    for (const [theme, page] of [["light", "#ffffff"], ["dark", "#111111"]] as const) {
      const c = colours(viewOn(page));
      expect([c.line, c.unstable, c.stable, c.exponent]).toEqual(SERIES_COLOURS[theme].slice(0, 4));
      expect(parseColor(c.bg)).toEqual(parseColor(page));   // the exponent's halo: the page itself
      for (const mark of [c.line, c.unstable, c.stable, c.exponent]) {
        expect(contrast(parseColor(mark)!, parseColor(page)!), `${theme} ${mark}`).toBeGreaterThanOrEqual(3);
      }
      document.body.replaceChildren();
    }
  });

  it("reads the theme of a view drawn before it was attached once it is", () => {
    const m = model();
    const el = document.createElement("div");
    renderDynamics(m, el);           // detached: no page to read, the light colours
    const swatch = el.querySelector<HTMLElement>(".rw-dyn-swatch")!;
    expect(parseColor(swatch.style.borderTopColor)).toEqual(parseColor(SERIES_COLOURS.light[0]));
    viewOn("#111111").append(el);
    m.set("t", 1);                   // the next draw
    expect(parseColor(swatch.style.borderTopColor)).toEqual(parseColor(SERIES_COLOURS.dark[0]));
  });
});
