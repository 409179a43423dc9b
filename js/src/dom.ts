/** An element with a class name, appended to `parent` when one is given. */
export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, parent?: HTMLElement) {
  const el = document.createElement(tag);
  el.className = className;
  if (parent) parent.append(el);
  return el;
}

/** Sets `el`'s text only when it differs: writing the same text still replaces the text node,
 * which costs a scrub frame a layout of its line. */
export function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}
