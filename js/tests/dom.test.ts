// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { coalesced, element, setText, themeSource } from "../src/dom";

describe("setText", () => {
  it("rewrites the one text node in place, so a scrub step rebuilds no layout object", () => {
    const el = element("span", "x");
    setText(el, "step 1 / 9");
    const node = el.firstChild;
    expect(node?.nodeType).toBe(Node.TEXT_NODE);
    setText(el, "step 2 / 9");
    expect(el.firstChild).toBe(node); // the same node, its data changed
    expect(el.textContent).toBe("step 2 / 9");
    expect(el.childNodes).toHaveLength(1);
  });

  it("writes text over children that are not one text node, and empties", () => {
    const el = element("div", "x");
    el.append(element("b", "y"), "tail");
    setText(el, "plain");
    expect(el.innerHTML).toBe("plain");
    setText(el, "");
    expect(el.childNodes).toHaveLength(0);
    setText(el, "<img src=x>"); // text, never markup
    expect(el.querySelector("img")).toBeNull();
    expect(el.textContent).toBe("<img src=x>");
  });
});

describe("coalesced", () => {
  it("calls once after the calls of one task, and again after a later one", async () => {
    let calls = 0;
    const onChange = coalesced(() => calls++);
    onChange();
    onChange();
    onChange();
    expect(calls).toBe(0); // not before the task's messages are all in
    await Promise.resolve();
    expect(calls).toBe(1);
    onChange();
    await Promise.resolve();
    expect(calls).toBe(2);
  });
});

describe("themeSource", () => {
  it("reads a view's theme at its root (outside its size container), else the element, else the page", () => {
    const root = element("div", "rw-explorer");
    const inner = element("canvas", "rw-heatmap", element("div", "rw-main", root));
    expect(themeSource(inner)).toBe(document.documentElement); // detached: the page's variables
    document.body.append(root);
    expect(themeSource(inner)).toBe(root);
    expect(themeSource(root)).toBe(root);
    const other = element("div", "rw-chart", document.body);
    expect(themeSource(other)).toBe(other);
    root.remove();
    other.remove();
  });
});
