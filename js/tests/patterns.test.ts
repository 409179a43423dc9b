// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { type ExplorerModel, renderExplorer } from "../src/explorer";
import {
  type CoclustersModel, type MatchesModel, brushRange, groupStarts, matchMeta, matrixRowPx, renderCoclusters,
  renderMatches, revealExplorer, selectUnits, shortToken, thinned,
} from "../src/patterns";
import type { Quantity } from "../src/state";
import { stepRange } from "../src/timeaxis";
import { FakeModel } from "./fake_model";
import { buildPayload, lodPayload } from "./payload";

afterEach(() => document.body.replaceChildren());

/** A (time, units) quantity from rows of values. */
function quantity(rows: number[][]): Quantity {
  return { name: "h", units: rows[0].length, steps: rows.length, data: Float32Array.from(rows.flat()),
           scale: "diverging", vmin: -1, vmax: 1 };
}

describe("selectUnits (the rule of patterns.py's select_units)", () => {
  const q = quantity([[0, 0, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 0, 1]]);
  it("keeps units on over the range and off just before and after it", () => {
    // unit 0: off, on, on, off; unit 1 stays on after; unit 2 was on before; unit 3 is off inside
    expect(selectUnits(q, 1, 3, 0.5, 4)).toEqual([0]);
    expect(selectUnits(q, 0, 4, -1, 4)).toEqual([0, 1, 2, 3]); // no step before or after
    expect(selectUnits(q, 1, 3, 0.5, 3)).toEqual([0, 1]); // step 3 is padding: nothing after
    expect(selectUnits(q, 2, 2, 0.5, 4)).toEqual([]);
  });
  it("orders a drag's ends into [start, end)", () => {
    expect(brushRange(5, 2)).toEqual([2, 6]);
    expect(brushRange(2, 2)).toEqual([2, 3]);
  });
});

function explorer(firstStep = 0) {
  // unit 0 is on at steps 2..3 only; unit 1 always; unit 2 never
  const { index, buffer } = buildPayload(6, [{ name: "lstm.l0", kind: "lstm", quantities: [
    { name: "h", units: 3, f: (t, u) => (u === 0 ? (t === 2 || t === 3 ? 0.9 : -0.9) : u === 1 ? 0.9 : -0.9) },
  ] }], { length: 6, firstStep });
  const model = new FakeModel<ExplorerModel & { brush: number[]; threshold: number; highlight: number[] }>({
    index, buffer, tokens: null, t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150,
    brush: [], threshold: 0.5, highlight: [],
  });
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = renderExplorer(model, el);
  return { model, el, cleanup };
}

describe("the Explorer's selection tool", () => {
  it("says the brushed steps as the model numbers them in a window of steps", () => {
    const { model, el, cleanup } = explorer(120);
    model.set("brush", [2, 4]);
    expect(el.querySelector(".rw-select-count")!.textContent).toBe("1 unit on over steps [122, 124) and off around: 0");
    cleanup();
  });

  it("counts the selected units live as the brush and the threshold move", () => {
    const { model, el } = explorer();
    const count = () => el.querySelector(".rw-select-count")!.textContent;
    expect(count()).toContain("drag over the heatmap");
    model.set("brush", [2, 4]);
    expect(count()).toBe("1 unit on over steps [2, 4) and off around: 0");
    const brush = el.querySelector<HTMLElement>(".rw-brush")!;
    expect(brush.style.display).toBe("block");
    expect(brush.style.left).toBe(`${(100 * 2) / 6}%`);
    const slider = el.querySelector<HTMLInputElement>(".rw-threshold")!;
    slider.value = "0.95";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("threshold")).toBeCloseTo(0.95);
    expect(count()).toBe("0 units on over steps [2, 4) and off around");
  });

  it("brushes by dragging over the heatmap and keeps the drag's click from moving the step", () => {
    const { model, el } = explorer();
    const box = el.querySelector<HTMLElement>(".rw-heatmap-box")!;
    const canvas = el.querySelector<HTMLCanvasElement>(".rw-heatmap")!;
    canvas.getBoundingClientRect = () => ({ left: 0, top: 0, width: 600, height: 90, right: 600, bottom: 90, x: 0, y: 0, toJSON() {} });
    const mouse = (type: string, x: number, target: EventTarget) =>
      target.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: 10, button: 0, bubbles: true }));
    mouse("mousedown", 250, box); // step 2
    mouse("mousemove", 350, window); // step 3
    mouse("mouseup", 350, window);
    mouse("click", 350, canvas);
    expect(model.get("brush")).toEqual([2, 4]);
    expect(model.get("t")).toBe(0);
    mouse("mousedown", 450, box); // a plain click still picks the step
    mouse("mouseup", 450, window);
    mouse("click", 450, canvas);
    expect(model.get("t")).toBe(4);
    expect(model.get("brush")).toEqual([2, 4]);
  });

  it("counts a long sequence's selection only where its window of steps is loaded", () => {
    const { index, buffer } = lodPayload(1000, 3, 100, 0, 10, (t, u) => (u === 0 && t >= 10 && t < 20 ? 0.9 : -0.9));
    const model = new FakeModel<ExplorerModel & { brush: number[]; threshold: number; highlight: number[] }>({
      index, buffer, tokens: null, t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150, brush: [], threshold: 0.5, highlight: [],
    });
    const el = document.createElement("div");
    renderExplorer(model, el);
    const count = () => el.querySelector(".rw-select-count")!.textContent;
    model.set("brush", [10, 20]);
    expect(count()).toBe("1 unit on over steps [10, 20) and off around: 0");
    model.set("brush", [500, 510]);
    expect(count()).toBe("steps [500, 510): scrub there to count the units (steps [0, 100) are loaded)");
    model.set("t", 505); // the view asks for the window around 505; the kernel's reply arrives
    const reply = Float32Array.from(Array.from({ length: 100 * 3 }, () => -0.9));
    model.emit("msg:custom", { type: "window", t0: 450, held: 100 }, [new DataView(reply.buffer)]);
    expect(count()).toBe("0 units on over steps [500, 510) and off around");
  });

  it("draws θ on the unit lines, labelled with its value, and moves it with the slider", () => {
    const { model, el } = explorer();
    const line = el.querySelector<HTMLElement>(".rw-units-plot .rw-threshold-line")!;
    expect(line).not.toBeNull();
    expect(line.style.display).toBe("none"); // no selection under way: no θ yet
    model.set("brush", [2, 4]);
    expect([line.style.display, line.textContent]).toEqual(["", "θ = 0.500"]);
    model.set("threshold", 2); // off the quantity's scale (-1..1 here): not drawn
    expect(line.style.display).toBe("none");
    model.set("threshold", -0.25);
    expect([line.style.display, line.textContent]).toEqual(["", "θ = -0.250"]);
  });

  it("takes the units to compare from the kernel (a co-cluster's) and cleans up", () => {
    const { model, el, cleanup } = explorer();
    model.set("highlight", [2, 1]);
    const lines = el.querySelector(".rw-units");
    expect(lines).not.toBeNull();
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("the Match panel", () => {
  function matchesModel() {
    const units = [0, 1];
    const values = Float32Array.from([0.1, 0.9, 0.9, 0.9, -0.5, 0.2, /* row 2 */ 0.9, 0.8, -0.1, 0.0]);
    return new FakeModel<MatchesModel>({
      rows: [
        { sequence: 3, start: 1, end: 2, score: 1, tokens: ["<img src=x onerror=alert(1)>", "(", ")"], before: 1, steps: 3, offset: 0 },
        { sequence: 0, start: 0, end: 1, score: 0.5, tokens: ["(", "a"], before: 0, steps: 2, offset: 6 },
      ],
      units, buffer: new DataView(values.buffer), scale: "diverging", vmin: -1, vmax: 1, context: 1,
      quantity: "c of lstm.l0", selected: -1, explorer_uid: "e1",
    });
  }
  it("lists matches as aligned token cells over their heatmaps, tokens as text", () => {
    const model = matchesModel();
    const el = document.createElement("div");
    renderMatches(model, el);
    const rows = el.querySelectorAll(".rw-match");
    expect(rows.length).toBe(2);
    expect(el.querySelector("img")).toBeNull();
    const cells = [...rows[0].querySelectorAll(".rw-match-tokens span")].map((c) => c.textContent);
    expect(cells).toEqual(["<img␣src=x␣onerror=alert(1)>", "(", ")"]); // whitespace made visible
    // the second row has no context before its run: shifted one cell so the runs line up
    expect((rows[1].querySelector(".rw-match-body") as HTMLElement).style.paddingLeft).toBe("14px");
    const canvas = rows[0].querySelector<HTMLCanvasElement>(".rw-match-heatmap")!;
    expect([canvas.width, canvas.height]).toEqual([3, 2]);
    // where, half-open as in the DataFrame, and the score
    expect([...rows].map((r) => r.querySelector(".rw-match-meta")!.textContent)).toEqual([
      "#3        [1, 2)      1.00", "#0        [0, 1)      0.50"]);
    expect(el.querySelector(".rw-match-explain")!.textContent).toContain("steps [start, end): end excluded");
    expect(el.querySelector(".rw-matches .rw-legend")!.textContent).toContain("under each: c of lstm.l0 of units 0, 1 (one row each),");
    expect(el.querySelector(".rw-matches .rw-legend canvas")).not.toBeNull();
    // the run's own tokens are marked
    expect([...rows[0].querySelectorAll(".rw-match-run")].map((c) => c.textContent)).toEqual(["("]);
    (rows[1] as HTMLElement).click();
    expect(model.sent).toEqual([{ content: { type: "open", row: 1 }, buffers: undefined }]);
    // selected at once, and where the kernel says so after a redraw
    expect(rows[1].classList.contains("rw-match-selected")).toBe(true);
    expect(rows[1].getAttribute("aria-selected")).toBe("true");
    expect(rows[0].classList.contains("rw-match-selected")).toBe(false);
  });

  it("keeps the selected row across redraws and reveals the linked Explorer on a click", async () => {
    const model = matchesModel();
    const el = document.createElement("div");
    document.body.append(el);
    const explorerEl = document.createElement("div");
    explorerEl.className = "rw-explorer";
    explorerEl.dataset.rwUid = "e1";
    let scrolled = 0;
    explorerEl.scrollIntoView = () => { scrolled++; };
    explorerEl.getBoundingClientRect = () => ({ left: 0, top: -2000, width: 800, height: 800, right: 800, bottom: -1200, x: 0, y: -2000, toJSON() {} });
    document.body.prepend(explorerEl);
    renderMatches(model, el);
    model.set("selected", 0);
    await Promise.resolve();
    expect(el.querySelectorAll(".rw-match-selected").length).toBe(1);
    expect(el.querySelector(".rw-match-selected")!.getAttribute("data-index")).toBe("0");
    (el.querySelectorAll(".rw-match")[1] as HTMLElement).click();
    expect(scrolled).toBe(1);
  });
});

describe("the co-cluster view", () => {
  it("draws the ordered matrix, lists each cluster's tokens and selects a cluster on click", () => {
    const model = new FakeModel<CoclustersModel>({
      buffer: new DataView(new Float32Array(6).fill(0.5).buffer), units: [2, 0, 1], tokens: ["(", "<b>"],
      unit_clusters: [0, 1, 1], token_clusters: [0, 1], top_tokens: [["("], ["<b>"]], vmax: 1, cluster: -1,
      what: "mean change of c at the token", explorer_uid: "",
    });
    const el = document.createElement("div");
    const cleanup = renderCoclusters(model, el);
    const canvas = el.querySelector<HTMLCanvasElement>(".rw-cocluster-matrix")!;
    expect([canvas.width, canvas.height]).toEqual([2, 3]);
    canvas.getBoundingClientRect = () => ({ left: 0, top: 0, width: 200, height: 300, right: 200, bottom: 300, x: 0, y: 0, toJSON() {} });
    canvas.dispatchEvent(new MouseEvent("mousemove", { clientX: 150, clientY: 10 }));
    expect(el.querySelector(".rw-cocluster-readout")!.textContent).toBe("unit 2 · <b> · 0.500"); // row 0, column 1
    const clusters = el.querySelectorAll<HTMLElement>(".rw-cluster");
    expect([...clusters].map((c) => c.textContent)).toEqual(["cluster 0 · 1 unit: (units 2", "cluster 1 · 2 units: <b>units 0, 1"]);
    expect(el.querySelector("b b")).toBeNull();
    expect(el.querySelector<HTMLElement>(".rw-cluster-rows")!.style.display).toBe("none");
    clusters[1].click();
    expect(model.get("cluster")).toBe(1);
    const rows = el.querySelector<HTMLElement>(".rw-cluster-rows")!.style;
    expect([rows.display, rows.top, rows.height]).toEqual(["block", `${100 / 3}%`, `${200 / 3}%`]); // rows 1-2 of 3
    const columns = el.querySelector<HTMLElement>(".rw-cluster-columns")!.style;
    expect([columns.left, columns.width]).toEqual(["50%", "50%"]);
    el.querySelectorAll<HTMLElement>(".rw-cluster")[1].click();
    expect(model.get("cluster")).toBe(-1);
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("the co-cluster view's labels, legend and separators", () => {
  function view(units: number, tokens: number) {
    const unitClusters = Array.from({ length: units }, (_, i) => (i < units / 2 ? 0 : 1));
    const tokenClusters = Array.from({ length: tokens }, (_, j) => (j < 1 ? 0 : 1));
    const model = new FakeModel<CoclustersModel>({
      buffer: new DataView(new Float32Array(units * tokens).fill(0.25).buffer),
      units: Array.from({ length: units }, (_, i) => units - 1 - i), tokens: Array.from({ length: tokens }, (_, j) => `tok${j}`),
      unit_clusters: unitClusters, token_clusters: tokenClusters, top_tokens: [["tok0"], ["tok1"]], vmax: 0.5, cluster: -1,
      what: "mean change of c at the token", explorer_uid: "",
    });
    const el = document.createElement("div");
    document.body.append(el);
    renderCoclusters(model, el);
    return el;
  }

  it("labels every unit and token when they fit, draws a line between groups and says what the colour is", () => {
    const el = view(4, 3);
    const labels = (cls: string) => [...el.querySelectorAll(`.${cls} .rw-tick`)].map((t) => t.textContent);
    expect(labels("rw-cocluster-units")).toEqual(["3", "2", "1", "0"]); // the ids in display order
    expect(labels("rw-cocluster-tokens")).toEqual(["tok0", "tok1", "tok2"]);
    const lines = [...el.querySelectorAll<HTMLElement>(".rw-cocluster-separator")];
    expect(lines.map((l) => (l.style.height === "2px" ? l.style.top : l.style.left))).toEqual(["calc(50.0000% - 1px)", "calc(33.3333% - 1px)"]);
    const legend = el.querySelector(".rw-coclusters .rw-legend")!.textContent!;
    // the bar's two ends and the NaN swatch stay on the bar's line: one unbreakable group
    const scale = el.querySelector(".rw-coclusters .rw-legend .rw-legend-scale")!;
    expect([...scale.children].map((c) => c.tagName)).toEqual(["SPAN", "CANVAS", "SPAN", "SPAN", "SPAN"]);
    expect(scale.lastElementChild!.textContent).toBe("NaN/Inf");
    expect(legend).toContain("colour: mean change of c at the token (per unit and token)");
    expect(legend).toContain("scaled symmetrically about 0 to the largest |value|, 0.500");
    expect(legend).toContain("-0.500");
    expect(el.querySelector<HTMLCanvasElement>(".rw-cocluster-matrix")!.style.height).toBe("64px"); // 16 px rows
  });

  it("thins the labels when they are dense", () => {
    const el = view(200, 120);
    const units = el.querySelectorAll(".rw-cocluster-units .rw-tick");
    expect(units.length).toBeLessThan(200);
    expect(units.length).toBeGreaterThan(10);
    expect(el.querySelectorAll(".rw-cocluster-tokens .rw-tick").length).toBeLessThan(120);
  });
});

describe("pattern helpers", () => {
  it("writes step ranges half-open, as the DataFrame holds them", () => {
    expect(stepRange(25, 29)).toBe("[25, 29)");
    expect(matchMeta({ sequence: 12, start: 25, end: 29, score: 0.75, tokens: null, before: 0, steps: 4, offset: 0 }))
      .toBe("#12       [25, 29)    0.75");
  });
  it("finds group boundaries, row heights and thinned labels", () => {
    expect(groupStarts([0, 0, 1, 1, 1, 2])).toEqual([2, 5]);
    expect(groupStarts([])).toEqual([]);
    expect(matrixRowPx(16)).toBe(16);
    expect(matrixRowPx(1000)).toBe(3);
    expect(thinned(10, 20, 14, String).length).toBe(10);
    expect(thinned(100, 3, 14, String).map((l) => l.at).slice(0, 3)).toEqual([0, 5, 10]);
    expect(shortToken("abcdefghij")).toBe("abcde…");
    expect(shortToken("a b")).toBe("a␣b");
  });
  it("reveals nothing without an Explorer of that uid", () => {
    expect(revealExplorer("", document.body)).toBeNull();
    expect(revealExplorer("nope", document.body)).toBeNull();
  });
});
