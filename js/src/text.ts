// A line of text or a few lines of our HTML that the kernel updates: what an ipywidgets Label or
// HTML shows in Jupyter, for front ends that draw anywidget views only (marimo). The Python side
// (rnnwidgets/widgets/marimo.py) mirrors a Label's or HTML's value into it.
//
// Stable DOM hook: .rw-text (the root). Model traits: value (str), html (bool: value is HTML our
// Python built with every datum escaped, as ipywidgets.HTML shows it; else plain text).
import type { AnyModel } from "@anywidget/types";
import { element } from "./dom";

export interface TextModel {
  value: string;
  html: boolean;
}

// The few tags our Python writes (the gradient-flow verdict, the monitor's probe lines); any other
// element is dropped for its text, and no attribute is kept.
const KEPT_TAGS = new Set(["B", "STRONG", "I", "EM", "BR", "CODE"]);

/** Copies `from`'s children into `to`: text as text, elements of KEPT_TAGS bare, any other
 * element's children in its place (a <script>'s or <style>'s contents are dropped). */
function copyKept(from: Node, to: Node): void {
  for (const node of Array.from(from.childNodes)) {
    if (node.nodeType === Node.TEXT_NODE) {
      to.appendChild(document.createTextNode(node.textContent ?? ""));
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      const tag = (node as Element).tagName.toUpperCase();
      if (tag === "SCRIPT" || tag === "STYLE" || tag === "TEMPLATE") continue;
      if (KEPT_TAGS.has(tag)) copyKept(node, to.appendChild(document.createElement(tag.toLowerCase())));
      else copyKept(node, to);
    }
  }
}

/** `root` showing `value`, HTML our Python built with every datum escaped, as safe DOM: parsed in
 * an inert document (no script runs, nothing loads), then only text and a few bare formatting
 * tags copied in, so even a hostile saved value can neither run code nor fetch anything. */
export function showHTML(root: HTMLElement, value: string): void {
  const parsed = new DOMParser().parseFromString(value, "text/html");
  root.replaceChildren();
  copyKept(parsed.body, root);
}

export function renderText(model: AnyModel<TextModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-text", el);
  root.style.cssText = "font: 13px sans-serif; color: var(--jp-ui-font-color1, inherit); line-height: 1.4;";
  const show = () => {
    const value = model.get("value") ?? "";
    if (model.get("html")) showHTML(root, value);
    else root.textContent = value;
  };
  model.on("change:value", show);
  model.on("change:html", show);
  show();
  return () => {
    model.off("change:value", show);
    model.off("change:html", show);
  };
}
