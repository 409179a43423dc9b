// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { colorWord, setBackground, unpack } from "../src/colormap";
import { createHeatmapPanel, highlightedRows } from "../src/heatmap_panel";
import { type ExplorerModel, ExplorerStore } from "../src/store";
import { playerOf } from "../src/transport";
import { explorerState, layer, quantity } from "./fake-state";
import { FakeModel } from "./fake_model";
import { buildPayload } from "./payload";
import { fakeResizeObservers } from "./fake-resize";

/** A heatmap panel over a payload of 3 steps of `layers`, showing `quantity` (not yet loaded). */
function panelOver(layers: Parameters<typeof buildPayload>[1], quantity: string, meta?: Parameters<typeof buildPayload>[2]) {
  const { index, buffer } = buildPayload(3, layers, meta);
  const model = new FakeModel<ExplorerModel>({
    index, buffer, tokens: null, t: 0, unit: 0, layer: "", quantity, playing: false, interval: 150,
  });
  const store = new ExplorerStore(model, playerOf(model, () => 2));
  const panel = createHeatmapPanel(model, store);
  store.subscribe((change) => panel.update(change));
  return { model, store, panel };
}

describe("the Explorer's heatmap panel", () => {
  it("marks the highlighted units' rows under the order, skipping units the quantity lacks", () => {
    const state = explorerState([layer("rnn.l0", "rnn", [quantity("h", 2, 4, () => 0)])]);
    expect(highlightedRows([], state)).toEqual([]);
    expect(highlightedRows([3, 1, 4, -1], state)).toEqual([3, 1]);
    expect(highlightedRows([3, 1], { ...state, order: Int32Array.of(3, 2, 1, 0) })).toEqual([0, 2]);
  });

  it("repaints the image and its caption for a new layer, quantity or order, not for a step", () => {
    const { model, store, panel } = panelOver([
      { name: "lstm.l0", kind: "lstm", quantities: [{ name: "h", units: 2, f: () => 0 }, { name: "c", units: 4, f: () => 0 }] },
    ], "h");
    store.load();
    expect(panel.caption.textContent).toBe("h of lstm.l0: 2 units (rows) × 3 steps (columns)");
    expect(panel.heatmap.el.getAttribute("aria-label")).toBe(`heatmap of ${panel.caption.textContent}`);
    const image = panel.heatmap.el.querySelector("canvas")!;
    expect([image.width, image.height]).toEqual([3, 2]);
    model.set("quantity", "c");
    expect(panel.caption.textContent).toBe("c of lstm.l0: 4 units (rows) × 3 steps (columns)");
    expect([image.width, image.height]).toEqual([3, 4]);
    panel.caption.textContent = "(drawn)";
    store.actions.setT(2);
    model.set("unit", 3);
    store.actions.setUnits([1, 2]);
    expect(panel.caption.textContent).toBe("(drawn)");
    store.actions.setOrder(Int32Array.of(3, 2, 1, 0));
    expect(panel.caption.textContent).toBe("c of lstm.l0: 4 units (rows) × 3 steps (columns)");
    panel.destroy();
    store.destroy();
    expect(model.listenerCount()).toBe(0);
  });

  it("says when the model was traced in training mode, and (dropout on) only where dropout was at work", () => {
    const layers = [{ name: "rnn.l0", kind: "rnn" as const, quantities: [{ name: "h", units: 2, f: () => 0 }] }];
    const captions = ([[true, true], [true, false], [true, null], [false, false], [null, null]] as const).map(([training, dropout]) => {
      const { store, panel } = panelOver(layers, "h", { training, dropout });
      store.load();
      const text = panel.caption.textContent;
      panel.destroy();
      store.destroy();
      return text;
    });
    const plain = "h of rnn.l0: 2 units (rows) × 3 steps (columns)";
    expect(captions[0]).toBe(`${plain} · traced in training mode (dropout on)`);
    expect(captions[1]).toBe(`${plain} · traced in training mode`); // a bare nn.LSTM in train(): nothing dropped
    expect(captions[2]).toBe(`${plain} · traced in training mode`); // a trace saved before dropout was recorded
    expect(captions[3]).toBe(plain);
    expect(captions[4]).toBe(plain);
  });

  it("labels its steps with the model's own step numbers for a window of steps (rw.trace(steps=...))", () => {
    const layers = [{ name: "rnn.l0", kind: "rnn" as const, quantities: [{ name: "h", units: 2, f: () => 0 }] }];
    const labels = [undefined, 120].map((firstStep) => {
      const { store, panel } = panelOver(layers, "h", { firstStep });
      panel.heatmap.size = () => ({ w: 300, h: 80, steps: 3, units: 2 }); // laid out 300 px wide
      store.load();
      const text = [...panel.el.querySelectorAll(".rw-step-axis .rw-tick")].map((tick) => tick.textContent);
      panel.destroy();
      store.destroy();
      return text;
    });
    expect(labels[0]).toEqual(["0", "1", "2"]);
    expect(labels[1]).toEqual(["120", "121", "122"]);
  });

  it("centres the diverging map on the page background, and repaints when the theme changes", async () => {
    const { store, panel } = panelOver([
      { name: "lstm.l0", kind: "lstm", quantities: [{ name: "h", units: 2, f: () => 0 }] },
    ], "h");
    document.body.append(panel.heatmap.el);
    store.load();
    expect(unpack(colorWord(0, "diverging", -1, 1))).toEqual([255, 255, 255, 255]); // no theme: white
    panel.caption.textContent = "(drawn)";
    // JupyterLab Dark's background, as the heatmap's computed style gives it (happy-dom does not
    // inherit custom properties, so it is set on the element itself)
    panel.heatmap.el.style.setProperty("--jp-layout-color0", "#111111");
    document.body.setAttribute("data-jp-theme-name", "JupyterLab Dark");
    await new Promise((resolve) => setTimeout(resolve, 0)); // the observer's callback
    expect(panel.caption.textContent).toBe("h of lstm.l0: 2 units (rows) × 3 steps (columns)");
    expect(unpack(colorWord(0, "diverging", -1, 1))).toEqual([0x11, 0x11, 0x11, 255]);
    panel.caption.textContent = "(drawn)";
    document.body.setAttribute("data-jp-theme-name", "JupyterLab Dark"); // same background: no repaint
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(panel.caption.textContent).toBe("(drawn)");
    panel.destroy();
    store.destroy();
    document.body.removeAttribute("data-jp-theme-name");
    panel.heatmap.el.remove();
    setBackground("#ffffff");
  });

  it("says how colours are scaled, and scales each unit to its own range at one click", () => {
    const { store, panel } = panelOver([
      { name: "lstm.l0", kind: "lstm", quantities: [{ name: "c", units: 2, f: (t, u) => (u ? t : 9.8), vmin: -3.8, vmax: 3.8 }] },
    ], "c");
    store.load();
    document.body.append(panel.legend);
    const scaling = panel.legend.querySelector(".rw-scaling")!;
    const ends = () => Array.from(panel.legend.querySelectorAll("span")).slice(0, 2).map((e) => e.textContent);
    expect(scaling.textContent).toBe("robust limits ±3.800 (upper quartile of the units' 99th percentiles)");
    expect(ends()).toEqual(["-3.800", "3.800"]);
    expect(panel.legend.querySelector(".rw-per-unit")).toBe(panel.perUnit);
    panel.perUnit.click();
    expect(scaling.textContent).toBe("each unit scaled to its own range");
    expect(ends()).toEqual(["−unit max", "+unit max"]);
    panel.perUnit.click();
    expect(scaling.textContent).toContain("robust limits ±3.800");
    panel.legend.remove();
    panel.destroy();
    store.destroy();
  });
});

describe("the heatmap's first cursor", () => {
  it("waits for the resize observer's first report instead of measuring the view mid-build", async () => {
    const { createHeatmap } = await import("../src/heatmap");
    const resize = fakeResizeObservers();
    try {
      const heatmap = createHeatmap();
      const image = heatmap.el.querySelector("canvas.rw-heatmap") as HTMLCanvasElement;
      const cursor = heatmap.el.querySelector("canvas.rw-cursor") as HTMLCanvasElement;
      let reads = 0;
      Object.defineProperty(image, "clientWidth", {
        get: () => {
          reads++;
          return 300;
        },
      });
      document.body.append(heatmap.el);
      heatmap.drawCursor(1, 0);
      expect(reads).toBe(0); // no layout forced: the cursor is not drawn yet
      expect(heatmap.size().w).toBe(0);
      resize.report(200, 80);
      expect(reads).toBe(0);
      expect(heatmap.size()).toMatchObject({ w: 200, h: 80 });
      expect(cursor.width).toBe(Math.round(200 * (window.devicePixelRatio || 1))); // drawn at the reported size
      heatmap.el.remove();
      heatmap.destroy();
    } finally {
      resize.restore();
    }
  });
});
