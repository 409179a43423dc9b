// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { renderText, showHTML, type TextModel } from "../src/text";
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

  it("keeps only text and bare formatting tags of HTML, so a hostile value neither runs nor loads", () => {
    const hostile =
      '<b onclick="window.__xss=1">lstm.l0</b>: ok<br>&nbsp;&nbsp;<img src=x onerror="window.__xss=1">' +
      '<script>window.__xss=1</script><a href="https://example.invalid/">link</a><style>*{}</style>' +
      '<svg><circle onload="window.__xss=1"/></svg>&lt;i&gt;';
    const model = new FakeModel<TextModel>({ value: hostile, html: true });
    const el = document.createElement("div");
    renderText(model, el);
    const root = el.querySelector(".rw-text") as HTMLElement;
    const tags = Array.from(root.querySelectorAll("*")).map((e) => e.tagName.toLowerCase());
    expect(tags).toEqual(["b", "br"]);
    expect(Array.from(root.querySelectorAll("*")).every((e) => e.attributes.length === 0)).toBe(true);
    expect(root.textContent).toBe("lstm.l0: ok\u00a0\u00a0link<i>");
    expect((window as unknown as { __xss?: number }).__xss).toBeUndefined();
    model.set("value", "<b>a</b>");   // replaced whole as the kernel changes it
    expect(root.innerHTML).toBe("<b>a</b>");
  });

  it("shows a hostile token inside our escaped HTML as text", () => {
    const root = document.createElement("div");
    showHTML(root, "<b>&lt;img src=x onerror=alert(1)&gt;</b>: \u202eevil");
    expect(root.querySelector("img")).toBeNull();
    expect(root.textContent).toBe("<img src=x onerror=alert(1)>: \u202eevil");
  });
});
