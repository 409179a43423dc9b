/** An element with a class name, appended to `parent` when one is given. */
export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, parent?: HTMLElement) {
  const el = document.createElement(tag);
  el.className = className;
  if (parent) parent.append(el);
  return el;
}
