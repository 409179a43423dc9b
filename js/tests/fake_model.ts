// A fake anywidget model for unit tests: traits in a plain object, change events fired
// synchronously on set (as Backbone does), and a record of save_changes and custom messages.
import type { AnyModel } from "@anywidget/types";

// biome-ignore lint/suspicious/noExplicitAny: @anywidget/types' own handler type, which this fake implements
type Handler = (...args: any[]) => void;

// biome-ignore lint/suspicious/noExplicitAny: @anywidget/types' ObjectHash (traits of any type)
export class FakeModel<T extends Record<string, any>> implements AnyModel<T> {
  saves = 0;
  sent: { content: unknown; buffers?: unknown[] }[] = [];
  private handlers = new Map<string, Handler[]>();
  widget_manager: AnyModel<T>["widget_manager"] = { get_model: () => Promise.reject(new Error("no widget manager in tests")) };

  constructor(public state: T) {}

  get<K extends keyof T>(key: K): T[K] {
    return this.state[key];
  }

  set<K extends keyof T>(key: K, value: T[K]): void {
    if (this.state[key] === value) return;
    this.state[key] = value;
    this.emit(`change:${String(key)}`);
  }

  on(name: string, callback: Handler): void {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), callback]);
  }

  off(name?: string | null, callback?: Handler | null): void {
    if (!name) {
      this.handlers.clear();
      return;
    }
    this.handlers.set(name, (this.handlers.get(name) ?? []).filter((h) => callback && h !== callback));
  }

  save_changes(): void {
    this.saves++;
  }

  send(content: unknown, _callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void {
    this.sent.push({ content, buffers });
  }

  /** Fire an event as the kernel side would (e.g. "msg:custom" with buffers). */
  emit(name: string, ...args: unknown[]): void {
    for (const h of this.handlers.get(name) ?? []) h(...args);
  }

  /** How many handlers are attached (to check a view cleans up). */
  listenerCount(): number {
    let n = 0;
    for (const hs of this.handlers.values()) n += hs.length;
    return n;
  }
}
