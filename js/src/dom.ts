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

/** Sets `el`'s text only when it differs: writing the same text still replaces the text node,
 * which costs a scrub frame a layout of its line. A new text where `el` holds one text node
 * rewrites that node's data in place: replacing the node (textContent) would also have the page
 * recalculate the style of `el` and rebuild its layout objects, on every step of a scrub. */
export function setText(el: HTMLElement, text: string): void {
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
