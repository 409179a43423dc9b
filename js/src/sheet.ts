// The views' stylesheets, one per page: each rule set (the Explorer's, the patterns', the what-if
// layout's, the comparison's) lives once in the document's <head>, or once in the shadow root a
// view is shown in (marimo, a custom element), however many views the page holds. A <style> in
// every view made the page match each element against as many copies of the same rules as there
// were views, and re-match every view already shown whenever a new one added its copy.
//
// A view carries a hidden marker element (<rw-sheet hidden>) in place of its own <style>: when the
// marker is connected to a page, wherever that is (the document, a shadow root, an exported page,
// a re-rendered output), it puts the sheets the view needs into that root if they are not there
// yet. The sheet stays when the view that added it is removed: the next view finds it there.
// Each sheet is named by its rule set and a hash of its text, so that two builds of the bundle in
// one page (an old output beside a new one) each keep their own rules.

/** The attribute that names a shared <style>: `${name}-${hash of its text}`. */
export const SHEET_ATTRIBUTE = "data-rw-sheet";
/** The marker's tag; the number changes with the marker's contract (rwSheets below). */
export const MARKER_TAG = "rw-sheet-1";

type Root = Document | ShadowRoot;
type Sheet = { key: string; css: string };

const keys = new Map<string, string>();

/** FNV-1a over `text`, in base 36. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/** The key of the rule set `name` with text `css` (computed once per text). */
export function sheetKey(name: string, css: string): string {
  let key = keys.get(css);
  if (key === undefined || !key.startsWith(`${name}-`)) {
    key = `${name}-${hash(css)}`;
    keys.set(css, key);
  }
  return key;
}

function isShadowRoot(node: Node): node is ShadowRoot {
  return node.nodeType === Node.DOCUMENT_FRAGMENT_NODE && "host" in node;
}

/** Where the styles of `node` must be: the shadow root it is in, else its document. */
export function sheetRoot(node: Node): Root {
  const root = node.getRootNode();
  if (isShadowRoot(root)) return root;
  return node.ownerDocument ?? document;
}

/** The <style> holding `key` in `root` (its head, for a document), or null. */
export function findSheet(root: Root, key: string): HTMLStyleElement | null {
  const parent = isShadowRoot(root) ? root : root.head ?? root.documentElement;
  if (!parent) return null;
  for (const child of Array.from(parent.children)) {
    if (child.tagName === "STYLE" && child.getAttribute(SHEET_ATTRIBUTE) === key) return child as HTMLStyleElement;
  }
  return null;
}

/** Puts the rule set `css`, named `key`, into `root` unless it holds it already; returns its <style>. */
export function ensureSheet(root: Root, key: string, css: string): HTMLStyleElement | null {
  const found = findSheet(root, key);
  if (found) return found;
  const doc = isShadowRoot(root) ? root.ownerDocument : root;
  const parent = isShadowRoot(root) ? root : doc.head ?? doc.documentElement;
  if (!parent) return null;
  const style = doc.createElement("style");
  style.setAttribute(SHEET_ATTRIBUTE, key);
  style.textContent = css;
  parent.append(style);
  return style;
}

interface Marker extends HTMLElement {
  rwSheets?: Sheet[];
}

/** Puts the marker's sheets where it now is: called when it is connected to a page. */
function placeSheets(marker: Marker): void {
  if (!marker.isConnected) return;
  const root = sheetRoot(marker);
  for (const { key, css } of marker.rwSheets ?? []) ensureSheet(root, key, css);
}

/** Defines the marker element once per window (a bundle loaded twice finds it defined). */
function defineMarker(): boolean {
  if (typeof customElements === "undefined" || typeof HTMLElement === "undefined") return false;
  if (!customElements.get(MARKER_TAG)) {
    customElements.define(MARKER_TAG, class extends HTMLElement {
      connectedCallback(this: Marker) {
        placeSheets(this);
      }
    });
  }
  return true;
}

/**
 * A hidden element for a view's DOM that makes the rule set `css` (named `name`) reach the view:
 * once connected, wherever, its root holds the one shared <style> of that rule set. Without
 * custom elements, the sheet goes into the document at once and into the view's shadow root, if
 * any, on the next frame.
 */
export function sheetMarker(name: string, css: string): HTMLElement {
  const sheet = { key: sheetKey(name, css), css };
  if (!defineMarker()) {
    const marker = document.createElement("span") as Marker;
    marker.hidden = true;
    marker.rwSheets = [sheet];
    ensureSheet(document, sheet.key, css);
    const later = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (f: () => void) => setTimeout(f, 0);
    later(() => placeSheets(marker));
    return marker;
  }
  const marker = document.createElement(MARKER_TAG) as Marker;
  marker.hidden = true;
  marker.rwSheets = [sheet];
  placeSheets(marker);
  return marker;
}
