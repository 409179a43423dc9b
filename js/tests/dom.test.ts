// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import { coalesced, createStepLine, element, setText, textColumns, themeSource, themeVariable, widerLine } from "../src/dom";

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

describe("themeVariable", () => {
  it("reads a view's theme variable once per colour table for every view of the page", () => {
    const a = element("div", "rw-explorer"), b = element("div", "rw-explorer");
    a.style.setProperty("--rw-test-ink", " #123456 ");
    b.style.setProperty("--rw-test-ink", "#123456");
    document.body.append(a, b);
    const inA = element("canvas", "x", a), inB = element("canvas", "x", b);
    const reads = vi.spyOn(window, "getComputedStyle");
    expect(themeVariable(inA, "--rw-test-ink", 101)).toBe("#123456");
    expect(themeVariable(inB, "--rw-test-ink", 101)).toBe("#123456"); // the first view's read
    expect(themeVariable(inA, "--rw-test-ink", 101)).toBe("#123456");
    expect(reads).toHaveBeenCalledTimes(1);
    // a new theme (a new colour table) reads again
    a.style.setProperty("--rw-test-ink", "#abcdef");
    expect(themeVariable(inA, "--rw-test-ink", 102)).toBe("#abcdef");
    expect(reads).toHaveBeenCalledTimes(2);
    reads.mockRestore();
    a.remove();
    b.remove();
  });

  it("reads each time outside a connected view: a detached view sees the page's, not a cached view's", () => {
    const a = element("div", "rw-explorer");
    a.style.setProperty("--rw-test-other", "#111111");
    document.body.append(a);
    expect(themeVariable(element("span", "x", a), "--rw-test-other", 103)).toBe("#111111");
    const detached = element("div", "rw-explorer");
    const inside = element("span", "x", detached);
    expect(themeVariable(inside, "--rw-test-other", 103)).toBe(""); // the document's root has none
    const plain = element("div", "rw-compare");
    plain.style.setProperty("--rw-test-other", "#222222");
    document.body.append(plain);
    expect(themeVariable(plain, "--rw-test-other", 103)).toBe("#222222"); // another root: its own
    a.remove();
    plain.remove();
  });
});

describe("lines a scrub rewrites", () => {
  it("sit in a contained box of a fixed size inside the caller's element, written in place", () => {
    const line = createStepLine("span", "rw-x");
    line.size("12ch", "16px");
    line.set("step 1 / 9");
    const node = line.box.lastChild;
    line.set("step 2 / 9");
    expect(line.box.lastChild).toBe(node);
    expect(node?.nodeType).toBe(Node.TEXT_NODE);
    expect([line.el.className, line.el.textContent, line.box.parentElement]).toEqual(["rw-x", "step 2 / 9", line.el]);
    expect([line.box.style.width, line.box.style.height, line.box.style.lineHeight]).toEqual(["12ch", "16px", "16px"]);
    expect([line.box.style.contain, line.box.style.display]).toEqual(["strict", "block"]);
    // the anchor: an empty float as large as the box that takes no room, before the text
    const anchor = line.box.firstElementChild as HTMLElement;
    expect([anchor.textContent, anchor.style.float, anchor.style.width, anchor.style.height, anchor.style.marginRight])
      .toEqual(["", "left", "100%", "100%", "-100%"]);
    expect(line.box.childNodes.length).toBe(2);
    line.set("");
    expect([line.el.textContent, line.box.childNodes.length]).toEqual(["", 2]);
  });

  it("count a wide character as two monospace columns", () => {
    expect(textColumns("a␣b")).toBe(3);
    expect(textColumns("日本")).toBe(4);
    expect(textColumns("")).toBe(0);
  });

  it("keep, word by word, the longer of a sizer's text and the next", () => {
    expect(widerLine(undefined, "step 9 / 99")).toBe("step 9 / 99");
    expect(widerLine("h = -0.5 + 1", "h = 0.25 + -10")).toBe("h = -0.5 + -10");
    expect(widerLine("a b", "a b c")).toBe("a b c"); // words that do not match up: the next
  });
});
