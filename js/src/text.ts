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

export function renderText(model: AnyModel<TextModel>, el: HTMLElement): () => void {
  const root = element("div", "rw-text", el);
  root.style.cssText = "font: 13px sans-serif; color: var(--jp-ui-font-color1, inherit); line-height: 1.4;";
  const show = () => {
    const value = model.get("value") ?? "";
    if (model.get("html")) root.innerHTML = value;
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
