// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { EXPLORER_BOX, suppressNotebookShortcuts } from "../src/explorer";

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
