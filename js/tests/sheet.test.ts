// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ExplorerModel, renderExplorer } from "../src/explorer";
import { MARKER_TAG, SHEET_ATTRIBUTE, ensureSheet, findSheet, sheetKey, sheetMarker, sheetRoot } from "../src/sheet";
import { EXPLORER_SHEET } from "../src/style";
import { WHAT_IF_CSS } from "../src/what_if";
import { FakeModel } from "./fake_model";
import { buildPayload } from "./payload";

function explorerModel() {
  const { index, buffer } = buildPayload(5, [
    { name: "lstm.l0", kind: "lstm", quantities: [{ name: "h", units: 3, f: (t, u) => Math.tanh(t - u) }] },
  ]);
  return new FakeModel<ExplorerModel>({
    index, buffer, tokens: ["a", "b", "c", "d", "e"], t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150,
  });
}

/** An Explorer rendered into a fresh output element under `parent` (the page's body by default). */
function view(parent: ParentNode = document.body) {
  const el = document.createElement("div");
  parent.append(el);
  const cleanup = renderExplorer(explorerModel(), el);
  return { el, cleanup };
}

const KEY = sheetKey("rw-explorer", EXPLORER_SHEET);
/** The shared <style>s of the Explorer's rules in `root` (a document's head, or a shadow root). */
const explorerSheets = (root: ParentNode) => root.querySelectorAll(`style[${SHEET_ATTRIBUTE}="${KEY}"]`);

afterEach(() => {
  document.body.replaceChildren();
  document.head.replaceChildren();
});

describe("one shared stylesheet per page", () => {
  it("puts the Explorer's rules in the document's head once, and none in the view", () => {
    const first = view();
    expect(explorerSheets(document.head)).toHaveLength(1);
    expect(explorerSheets(document.head)[0].textContent).toBe(EXPLORER_SHEET);
    expect(first.el.querySelector("style")).toBeNull(); // the view carries only its hidden marker
    const marker = first.el.querySelector(MARKER_TAG) as HTMLElement;
    expect(marker.hidden).toBe(true);
    // the what-if box's layout and the select tool's rules: one sheet each as well
    expect(findSheet(document, sheetKey("rw-whatif", WHAT_IF_CSS))?.textContent).toBe(WHAT_IF_CSS);
    expect(document.head.querySelectorAll("style")).toHaveLength(3);
    first.cleanup();
  });

  it("is reused by a second view and stays when the first view is removed", () => {
    const first = view();
    const sheet = explorerSheets(document.head)[0];
    const second = view();
    expect(explorerSheets(document.head)).toHaveLength(1);
    expect(explorerSheets(document.head)[0]).toBe(sheet); // the same element, not a copy
    first.cleanup();
    first.el.remove();
    expect(explorerSheets(document.head)[0]).toBe(sheet);
    expect(sheet.isConnected).toBe(true);
    second.cleanup();
    second.el.remove();
    // a view rendered after every other one is gone (a re-run cell) finds the sheet still there
    const third = view();
    expect(explorerSheets(document.head)).toHaveLength(1);
    expect(explorerSheets(document.head)[0]).toBe(sheet);
    third.cleanup();
  });

  it("re-renders an output into the same element without another copy", () => {
    const { el, cleanup } = view();
    cleanup();
    el.replaceChildren();
    const again = renderExplorer(explorerModel(), el);
    expect(el.querySelectorAll(".rw-explorer")).toHaveLength(1);
    expect(explorerSheets(document.head)).toHaveLength(1);
    again();
  });

  it("reaches a view rendered while detached once it is attached (JupyterLab attaches the output after render)", () => {
    const el = document.createElement("div");
    const cleanup = renderExplorer(explorerModel(), el);
    expect(explorerSheets(document.head)).toHaveLength(0); // nothing to style yet
    document.body.append(el);
    expect(explorerSheets(document.head)).toHaveLength(1);
    cleanup();
  });

  it("puts the rules into the shadow root a view is shown in, where the document's cannot reach", () => {
    const host = document.createElement("div");
    document.body.append(host);
    const shadow = host.attachShadow({ mode: "open" });
    const { el, cleanup } = view(shadow);
    expect(sheetRoot(el)).toBe(shadow);
    expect(explorerSheets(shadow)).toHaveLength(1);
    expect(explorerSheets(document.head)).toHaveLength(0);
    const second = view(shadow);
    expect(explorerSheets(shadow)).toHaveLength(1);
    // a view in the page itself gets the document's copy
    const outside = view();
    expect(explorerSheets(document.head)).toHaveLength(1);
    // a view moved into another shadow root (a re-rendered custom element) brings its rules along
    const other = document.createElement("div");
    document.body.append(other);
    const shadow2 = other.attachShadow({ mode: "open" });
    shadow2.append(outside.el);
    expect(explorerSheets(shadow2)).toHaveLength(1);
    cleanup();
    second.cleanup();
    outside.cleanup();
  });

  it("styles a view in a page that holds nothing of ours yet, as an exported page (its head the template's own)", () => {
    const own = document.createElement("style");
    own.textContent = "body { margin: 0; }";
    document.head.append(own);
    const { el, cleanup } = view();
    expect(explorerSheets(document.head)).toHaveLength(1);
    expect(document.head.firstElementChild).toBe(own); // the page's own rules stay as they were
    expect(el.querySelector(".rw-explorer")).not.toBeNull();
    cleanup();
  });

  it("keeps two builds' different rules of one name apart (an old output beside a new one)", () => {
    const a = sheetKey("rw-x", ".a { color: red; }"), b = sheetKey("rw-x", ".a { color: blue; }");
    expect(a).not.toBe(b);
    expect(sheetKey("rw-x", ".a { color: red; }")).toBe(a);
    document.body.append(sheetMarker("rw-x", ".a { color: red; }"), sheetMarker("rw-x", ".a { color: blue; }"));
    expect(findSheet(document, a)?.textContent).toBe(".a { color: red; }");
    expect(findSheet(document, b)?.textContent).toBe(".a { color: blue; }");
    expect(ensureSheet(document, a, ".a { color: red; }")).toBe(findSheet(document, a));
  });

  it("without custom elements, puts the sheet in the document at once and in the view's shadow root a frame later", () => {
    vi.stubGlobal("customElements", undefined);
    try {
      const host = document.createElement("div");
      document.body.append(host);
      const shadow = host.attachShadow({ mode: "open" });
      const frames: (() => void)[] = [];
      vi.stubGlobal("requestAnimationFrame", (f: () => void) => frames.push(f));
      const marker = sheetMarker("rw-y", ".y { color: red; }");
      expect(marker.tagName).toBe("SPAN");
      expect(marker.hidden).toBe(true);
      shadow.append(marker);
      const key = sheetKey("rw-y", ".y { color: red; }");
      expect(findSheet(document, key)).not.toBeNull();
      expect(findSheet(shadow, key)).toBeNull();
      for (const f of frames) f();
      expect(findSheet(shadow, key)?.textContent).toBe(".y { color: red; }");
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
