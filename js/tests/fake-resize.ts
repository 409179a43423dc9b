/** Replaces ResizeObserver with one a test drives: each `observe(target)` is kept with its
 * callback, and `report` hands a content box to the observer of an element, as the browser would
 * once layout knows its size. `restore` puts the page's own ResizeObserver back. */
export function fakeResizeObservers() {
  const observed: { callback: ResizeObserverCallback; target: Element }[] = [];
  const original = globalThis.ResizeObserver;
  globalThis.ResizeObserver = class {
    constructor(private callback: ResizeObserverCallback) {}
    observe(target: Element) {
      observed.push({ callback: this.callback, target });
    }
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
  return {
    observed,
    /** Reports `width` x `height` to the observer of the first observed element matching
     * `selector` (the first observed element when none is given). */
    report(width: number, height: number, selector?: string): void {
      const o = observed.find((e) => selector === undefined || e.target.matches(selector));
      if (!o) throw new Error(`no observed element matches ${selector ?? "anything"}`);
      const entry = { contentRect: { width, height } as DOMRectReadOnly, target: o.target } as ResizeObserverEntry;
      o.callback([entry], {} as ResizeObserver);
    },
    restore(): void {
      globalThis.ResizeObserver = original;
    },
  };
}
