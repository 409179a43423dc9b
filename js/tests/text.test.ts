// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { renderText, type TextModel } from "../src/text";
import { FakeModel } from "./fake_model";

describe("renderText", () => {
  it("shows plain text as text, markup included, and follows the kernel", () => {
    const model = new FakeModel<TextModel>({ value: "loss <b>1</b>", html: false });
    const el = document.createElement("div");
    const undo = renderText(model, el);
    const root = el.querySelector(".rw-text") as HTMLElement;
    expect([root.textContent, root.querySelector("b")]).toEqual(["loss <b>1</b>", null]);
    model.set("value", "step 3");
    expect(root.textContent).toBe("step 3");
    undo();
    model.set("value", "step 4");
    expect(root.textContent).toBe("step 3");
    expect(model.listenerCount()).toBe(0);
  });

  it("shows the kernel's HTML as HTML when html is set", () => {
    const model = new FakeModel<TextModel>({ value: "<b>lstm.l0</b>: healthy", html: true });
    const el = document.createElement("div");
    renderText(model, el);
    expect(el.querySelector(".rw-text b")?.textContent).toBe("lstm.l0");
  });
});
