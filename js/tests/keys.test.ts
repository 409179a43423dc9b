// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { EXPLORER_BOX, listenKeys, stepKeys, suppressNotebookShortcuts, takeKeys } from "../src/keys";
import { type ExplorerModel, ExplorerStore } from "../src/store";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";
import { buildPayload } from "./payload";

const ATTRIBUTE = "data-lm-suppress-shortcuts";
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(null)));

/** A notebook output holding an Explorer's box: a slider handle, then the view's el and root. */
function explorerBox() {
  const output = document.createElement("div");
  const box = document.createElement("div");
  box.className = `widget-vbox ${EXPLORER_BOX}`;
  const handle = document.createElement("div");
  handle.tabIndex = 0;
  const outside = document.createElement("button");
  const el = document.createElement("div");
  const root = document.createElement("div");
  root.tabIndex = 0;
  el.append(root);
  output.append(box, outside);
  box.append(handle);
  document.body.append(output);
  return { box, handle, outside, el, root };
}

describe("suppressNotebookShortcuts", () => {
  it("marks the view's root at once, and what takes the focus in the box once the view is in it", async () => {
    const { box, handle, outside, el, root } = explorerBox();
    const undo = suppressNotebookShortcuts(root, el);
    expect(root.getAttribute(ATTRIBUTE)).toBe("true");
    box.append(el); // as ipywidgets does, after render
    await nextFrame();
    await nextFrame();
    handle.focus();
    expect(handle.getAttribute(ATTRIBUTE)).toBe("true");
    outside.focus();
    expect(outside.hasAttribute(ATTRIBUTE)).toBe(false); // the notebook keeps its keys
    expect(box.hasAttribute(ATTRIBUTE)).toBe(false);
    undo();
  });

  it("stops marking once undone, and stops waiting for a box after its frames", async () => {
    const first = explorerBox();
    first.box.append(first.el);
    suppressNotebookShortcuts(first.root, first.el)();
    first.handle.focus();
    expect(first.handle.hasAttribute(ATTRIBUTE)).toBe(false);

    const late = explorerBox();
    suppressNotebookShortcuts(late.root, late.el, 1);
    await nextFrame();
    await nextFrame();
    late.box.append(late.el);
    await nextFrame();
    late.handle.focus();
    expect(late.handle.hasAttribute(ATTRIBUTE)).toBe(false);
  });
});

describe("listenKeys", () => {
  function explorerKeys() {
    const { index, buffer } = buildPayload(4, [{ name: "rnn.l0", kind: "rnn", quantities: [{ name: "h", units: 3, f: () => 0 }] }]);
    const model = new FakeModel<ExplorerModel>({
      index, buffer, tokens: null, t: 0, unit: 0, layer: "", quantity: "h", playing: false, interval: 150,
    });
    const store = new ExplorerStore(model, playerOf(model, () => 3));
    store.load();
    const root = document.createElement("div");
    const text = document.createElement("input");
    const slider = document.createElement("input");
    slider.type = "range";
    const select = document.createElement("select");
    root.append(text, slider, select);
    document.body.append(root);
    const undo = listenKeys(root, store);
    const press = (target: Element, key: string) => {
      const ev = new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true });
      target.dispatchEvent(ev);
      return ev.defaultPrevented;
    };
    return { model, store, root, text, slider, select, undo, press };
  }

  it("takes the Explorer's keys in the view and on the step slider, not in a text box or a select", () => {
    const { store, root, text, slider, select, press } = explorerKeys();
    expect(root.tabIndex).toBe(0);
    expect(press(root, "ArrowRight")).toBe(true);
    expect(press(slider, "ArrowRight")).toBe(true);
    expect(store.state.t).toBe(2);
    expect(press(text, "ArrowRight")).toBe(false);
    expect(press(select, "ArrowLeft")).toBe(false);
    expect(press(root, "a")).toBe(false);
    expect(store.state.t).toBe(2);
  });

  it("moves the unit down and up by rows of the order, and stops at the ends", () => {
    const { model, store, root, press } = explorerKeys();
    press(root, "ArrowUp");
    expect(model.get("unit")).toBe(0);
    store.actions.setOrder(Int32Array.of(2, 0, 1));
    press(root, "ArrowDown"); // unit 0 is row 1: the next row down is unit 1
    expect(model.get("unit")).toBe(1);
    press(root, "ArrowDown");
    expect(model.get("unit")).toBe(1);
    press(root, "ArrowUp");
    press(root, "ArrowUp");
    expect(model.get("unit")).toBe(2);
  });

  it("shows a ring while focused, plays with space, and lets go once undone", () => {
    const { model, root, undo, press } = explorerKeys();
    root.dispatchEvent(new FocusEvent("focus"));
    expect(root.style.boxShadow).not.toBe("");
    root.dispatchEvent(new FocusEvent("blur"));
    expect(root.style.boxShadow).toBe("");
    press(root, " ");
    expect(model.get("playing")).toBe(true);
    undo();
    expect(press(root, " ")).toBe(false);
    expect(model.get("playing")).toBe(true);
  });
});

describe("takeKeys and stepKeys", () => {
  /** A view with a step of 10 and rows [5, 2, 7], its keys taken by `root` (a text box inside). */
  function view(ring: boolean) {
    const root = document.createElement("div");
    const box = document.createElement("input");
    root.append(box);
    document.body.append(root);
    const rows = [5, 2, 7];
    const at = { t: 3, unit: 2, played: 0 };
    const undo = takeKeys(
      root,
      stepKeys({
        t: () => at.t,
        steps: () => 10,
        setT: (t) => (at.t = Math.max(0, Math.min(9, t))),
        moveRow: (delta) => (at.unit = rows[Math.max(0, Math.min(2, rows.indexOf(at.unit) + delta))]),
        togglePlay: () => at.played++,
      }),
      ring,
    );
    const press = (key: string, target: HTMLElement = root) => {
      const ev = new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true });
      target.dispatchEvent(ev);
      return ev.defaultPrevented;
    };
    return { root, box, at, undo, press };
  }

  it("steps, jumps, moves the row within the rows and plays; other keys and typing pass", () => {
    const { root, box, at, undo, press } = view(true);
    expect(root.tabIndex).toBe(0);
    expect(press("ArrowRight")).toBe(true);
    expect(at.t).toBe(4);
    press("ArrowLeft");
    press("ArrowLeft");
    expect(at.t).toBe(2);
    press("End");
    expect(at.t).toBe(9);
    press("Home");
    expect(at.t).toBe(0);
    press("ArrowDown");
    expect(at.unit).toBe(7);
    press("ArrowDown"); // the last row stays
    expect(at.unit).toBe(7);
    press("ArrowUp");
    press("ArrowUp");
    press("ArrowUp"); // the first row stays
    expect(at.unit).toBe(5);
    press(" ");
    expect(at.played).toBe(1);
    expect(press("a")).toBe(false); // not a key of the view
    expect(press("ArrowRight", box)).toBe(false); // typing in a box keeps its keys
    expect(at.t).toBe(0);
    undo();
    expect(press("ArrowRight")).toBe(false);
    expect(at.t).toBe(0);
  });

  it("rings the view while it has the focus, unless told not to", () => {
    const ringed = view(true);
    ringed.root.dispatchEvent(new FocusEvent("focus"));
    expect(ringed.root.style.boxShadow).not.toBe("");
    ringed.root.dispatchEvent(new FocusEvent("blur"));
    expect(ringed.root.style.boxShadow).toBe("");
    const plain = view(false);
    plain.root.dispatchEvent(new FocusEvent("focus"));
    expect(plain.root.style.boxShadow).toBe("");
  });
});
