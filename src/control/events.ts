/**
 * The control plane's event stream: health transitions, member changes, reloads. Bounded
 * (a ring of the last EVENT_CAP), numbered so a reader can resume after the last one it
 * saw; the dashboard and `lb4 status --watch` read it through the admin API.
 */
export type ControlEvent =
  | { type: "health"; pool_id: string; member_id: string; address: string; from: string; to: string; reason: string }
  | { type: "member_added" | "member_updated" | "member_removed"; pool_id: string; member_id: string }
  | { type: "reload"; result: "ok" | "failed"; error?: string };

export type NumberedEvent = ControlEvent & { seq: number; time: number };

export const EVENT_CAP = 1000;

export class EventLog {
  private readonly ring: NumberedEvent[] = [];
  private seq = 0;
  private readonly listeners = new Set<(e: NumberedEvent) => void>();

  constructor(private readonly cap = EVENT_CAP) {}

  push(e: ControlEvent): NumberedEvent {
    const n = { ...e, seq: ++this.seq, time: Date.now() } as NumberedEvent;
    this.ring.push(n);
    if (this.ring.length > this.cap) this.ring.shift();
    for (const fn of this.listeners) {
      try {
        fn(n);
      } catch {
        // a broken subscriber must not break the control plane
      }
    }
    return n;
  }

  /** Events after `seq` still held (oldest first). */
  since(seq = 0): NumberedEvent[] {
    return this.ring.filter((e) => e.seq > seq);
  }

  get last(): number {
    return this.seq;
  }

  subscribe(fn: (e: NumberedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
