/** An element with a class name, appended to `parent` when one is given. */
export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, parent?: HTMLElement) {
  const el = document.createElement(tag);
  el.className = className;
  if (parent) parent.append(el);
  return el;
}

/** Where to read the page's theme (its CSS variables) for `el`: the view's root (.rw-explorer),
 * whose variables every element in the view inherits. The root is its own size container and
 * sits outside it, so reading it costs no layout; reading an element inside (whose style waits
 * on the container's size) forces the page's style and layout, as on a first paint while the
 * view is being built. `el` itself outside such a view, the document's root while detached. */
export function themeSource(el: Element): Element {
  if (!el.isConnected) return document.documentElement;
  return el.closest(".rw-explorer") ?? el;
}

/** The theme variables read so far for the views of one page, for one colour table (`version`). */
let themeReads: { version: number; doc: Document | null; values: Map<string, string> } = { version: -1, doc: null, values: new Map() };

/** The theme variable `name` (a CSS custom property, trimmed) as `el`'s view sees it. Inside a
 * connected view (.rw-explorer) it is read once per theme for every view of the page: the
 * variables are the page's theme's and the views' shared sheet's, the same for all of them, and a
 * read after a panel has resized its canvas forces the page's style and layout; so the first
 * panel's read serves the others. `version` is the colour table's (colormap.ts lutVersion), which
 * changes with the theme: a new one reads again. Elsewhere (a detached view, another root) it
 * reads `el`'s own style each time. */
export function themeVariable(el: Element, name: string, version: number): string {
  const source = themeSource(el);
  if (!el.isConnected || !source.classList.contains("rw-explorer")) {
    return getComputedStyle(source).getPropertyValue(name).trim();
  }
  if (themeReads.version !== version || themeReads.doc !== el.ownerDocument) {
    themeReads = { version, doc: el.ownerDocument, values: new Map() };
  }
  let value = themeReads.values.get(name);
  if (value === undefined) {
    value = getComputedStyle(source).getPropertyValue(name).trim();
    themeReads.values.set(name, value);
  }
  return value;
}

/** Sets `el`'s text only when it differs: writing the same text still replaces the text node,
 * which costs a scrub frame a layout of its line. A new text where `el` holds one text node
 * rewrites that node's data in place: replacing the node (textContent) would also have the page
 * recalculate the style of `el` and rebuild its layout objects, on every step of a scrub. */
export function setText(el: Element, text: string): void {
  const only = el.firstChild;
  if (only !== null && only === el.lastChild && only.nodeType === Node.TEXT_NODE && text !== "") {
    if ((only as Text).data !== text) (only as Text).data = text;
  } else if (el.textContent !== text) {
    el.textContent = text;
  }
}

/** `fn`, called once after the calls made in the same task: traits that change together (one
 * message, hold_sync) fire one change event each, and the view draws once for all of them. */
export function coalesced(fn: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      fn();
    });
  };
}

/**
 * A line of text rewritten at every step of a scrub (the step, the token or a value at t), in a
 * box of a fixed size that the page lays out on its own. Chromium lays a box out alone (a
 * "relayout boundary": the change stops there instead of laying out the page) only when it is
 * size- and layout-contained, paints on its own layer and is neither a flex nor a grid item.
 * These lines sit in flex rows and grids, so `el` (the caller's class, placed like any element)
 * holds `box`, a block under contain: strict, whose size `size` sets (CSS lengths; the text is
 * clipped to it, an ellipsis marking a cut).
 *
 * The text is one text node after `anchor`, an empty float the box's size that takes no room
 * (its margin cancels its width). The page regroups its whole paint into compositor layers
 * (PaintArtifactCompositor::Update, about 2 ms in JupyterLab) whenever the bounds of a run of
 * paint under one clip change: the text alone would change them with its width at every step;
 * the anchor, in the same run, keeps them the box's (js/tests/dom.test.ts; a Chromium trace of a
 * scrub shows no Update for a rewritten line).
 */
export interface StepLine {
  el: HTMLElement;
  box: HTMLElement;
  set(text: string): void;
  size(width: string, height: string): void;
}

export function createStepLine<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, parent?: HTMLElement): StepLine {
  const el = element(tag, className, parent);
  const box = element("span", "rw-step-line", el);
  box.style.cssText = "display:block;position:relative;contain:strict;overflow:hidden;white-space:pre;text-overflow:ellipsis;";
  const anchor = element("span", "rw-step-anchor", box);
  anchor.style.cssText = "float:left;width:100%;height:100%;margin-right:-100%;";
  anchor.setAttribute("aria-hidden", "true");
  const text = document.createTextNode("");
  box.append(text);
  return {
    el,
    box,
    set: (next) => {
      if (text.data !== next) text.data = next;
    },
    size(width, height) {
      if (box.style.width !== width) box.style.width = width;
      if (box.style.height !== height) {
        box.style.height = height;
        box.style.lineHeight = height;
      }
    },
  };
}

/** Whether a code point is drawn two columns wide in a monospace font (CJK, Hangul, full-width
 * forms, emoji). */
function wide(c: number): boolean {
  return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) ||
    (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
    (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd);
}

/** The columns `text` takes in a monospace font: one a character, two for a wide one. */
export function textColumns(text: string): number {
  let n = 0;
  for (const ch of text) n += wide(ch.codePointAt(0) ?? 0) ? 2 : 1;
  return n;
}

/** Word by word, the longer of what a sizer held and `next` (`next` itself when their words do not
 * match up): a text that, wrapped at its spaces in the same font, takes at least as many rows as
 * either, and a line at least as wide when their words differ only in digits (each digit as wide
 * as any other). A text shown in a box laid over a hidden sizer holding it (cellview.ts,
 * what_if.ts) then keeps the box's size through a scrub. */
export function widerLine(held: string | undefined, next: string): string {
  if (held === undefined || held === next) return next;
  const a = held.split(" "), b = next.split(" ");
  if (a.length !== b.length) return next;
  return b.map((word, i) => (Array.from(word).length > Array.from(a[i]).length ? word : a[i])).join(" ");
}
