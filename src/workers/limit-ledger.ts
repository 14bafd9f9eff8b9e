/**
 * The instance-wide `connection_limit` with workers (SPEC §10), kept by the primary: slots of
 * each limited listener are leased to workers in blocks. A worker admits on a slot it holds
 * without asking anyone and keeps a few idle ones for the next connections, so the primary
 * hears from it only when it runs out or has too many idle. The sum of what is leased never
 * exceeds the limit; when nothing is free, the idle slots other workers hold are reclaimed
 * before a connection is refused, so a refusal means the instance really is at its limit.
 * Pure: the messages go out through `LedgerIO`, time through its timers.
 */
import type { Timers } from "../clock.js";
import type { Snapshot } from "../model/snapshot.js";

/** How long a reclaim waits for the workers' idle slots before answering with what came back. */
export const RECLAIM_WAIT_MS = 200;
/** A block is this fraction of the limit per worker (at least one slot). */
const BLOCKS_PER_WORKER = 8;

export interface LedgerIO {
  /** The listener's connection_limit now (0 = unlimited). */
  limitOf(listenerId: string): number;
  /** How many workers share the limit. */
  workerCount(): number;
  /** Tell worker `w`: `n` more slots of listener `l` (0: none free), hold at most `keep` idle. */
  grant(w: number, l: string, n: number, keep: number): void;
  /** Ask worker `w` for its idle slots of listener `l`. */
  reclaim(w: number, l: string): void;
  timers: Timers;
}

interface Ledger {
  granted: Map<number, number>;
  total: number;
  waiting: Array<{ w: number; want: number }>;
  reclaiming: Set<number> | undefined;
  timer: unknown;
  /** A reclaim just ran: what is still waiting after it is over the limit. */
  reclaimed: boolean;
}

export class LimitLedger {
  private readonly ledgers = new Map<string, Ledger>();

  constructor(private readonly io: LedgerIO) {}

  private of(l: string): Ledger {
    let x = this.ledgers.get(l);
    if (!x) this.ledgers.set(l, (x = { granted: new Map(), total: 0, waiting: [], reclaiming: undefined, timer: undefined, reclaimed: false }));
    return x;
  }

  /** Slots leased out for listener `l` (open connections plus the idle slots workers keep). */
  leased(l: string): number {
    return this.ledgers.get(l)?.total ?? 0;
  }

  /** Worker `w` has `want` connections waiting for a slot of `l`. */
  lease(w: number, l: string, want: number): void {
    this.of(l).waiting.push({ w, want: Math.max(1, want) });
    this.serve(l);
  }

  /** Worker `w` gave `n` slots of `l` back (idle, or answering a reclaim). */
  returned(w: number, l: string, n: number): void {
    const x = this.of(l);
    const had = x.granted.get(w) ?? 0;
    const back = Math.min(had, Math.max(0, n));
    x.granted.set(w, had - back);
    x.total -= back;
    if (x.reclaiming?.delete(w) && x.reclaiming.size === 0) this.finishReclaim(l);
    else if (!x.reclaiming && x.waiting.length > 0) this.serve(l);
  }

  /** Worker `w` holds `n` slots of `l` it was not granted: connections open when the limit was set, which count against it. */
  book(w: number, l: string, n: number): void {
    if (n <= 0) return;
    const x = this.of(l);
    x.granted.set(w, (x.granted.get(w) ?? 0) + n);
    x.total += n;
  }

  /** Worker `w` is gone: its slots (open connections included: they died with it) are free. */
  workerGone(w: number): void {
    for (const [l, x] of this.ledgers) {
      x.total -= x.granted.get(w) ?? 0;
      x.granted.delete(w);
      x.waiting = x.waiting.filter((q) => q.w !== w);
      if (x.reclaiming?.delete(w) && x.reclaiming.size === 0) this.finishReclaim(l);
      else if (!x.reclaiming && x.waiting.length > 0) this.serve(l);
    }
  }

  /** A listener's limit changed or it went: idle slots come back, so leases follow the new limit. */
  limitChanged(l: string): void {
    const x = this.ledgers.get(l);
    if (!x) return;
    for (const [w, n] of x.granted) if (n > 0) this.io.reclaim(w, l);
  }

  private serve(l: string): void {
    const x = this.of(l);
    if (x.reclaiming) return;
    const limit = this.io.limitOf(l);
    const block = limit > 0 ? Math.max(1, Math.floor(limit / (BLOCKS_PER_WORKER * Math.max(1, this.io.workerCount())))) : 0;
    while (x.waiting.length > 0) {
      const free = limit > 0 ? limit - x.total : Infinity;
      if (free <= 0) break;
      const { w, want } = x.waiting.shift()!;
      const n = Math.min(free, Math.max(want, block));
      x.granted.set(w, (x.granted.get(w) ?? 0) + n);
      x.total += n;
      this.io.grant(w, l, n, block);
    }
    if (x.waiting.length === 0) {
      x.reclaimed = false;
      return;
    }
    const holders = [...x.granted].filter(([, n]) => n > 0).map(([w]) => w);
    if (!x.reclaimed && holders.length > 0) {
      x.reclaiming = new Set(holders);
      for (const w of holders) this.io.reclaim(w, l);
      x.timer = this.io.timers.set(() => this.finishReclaim(l), RECLAIM_WAIT_MS);
      return;
    }
    // Every slot is on an open connection: the waiting ones are over the limit.
    x.reclaimed = false;
    for (const { w } of x.waiting.splice(0)) this.io.grant(w, l, 0, block);
  }

  private finishReclaim(l: string): void {
    const x = this.of(l);
    if (x.timer !== undefined) this.io.timers.clear(x.timer);
    x.timer = undefined;
    x.reclaiming = undefined;
    x.reclaimed = true;
    this.serve(l);
  }

  /** Forget listeners that have no limit any more and nothing leased (so ids of removed listeners do not pile up). */
  prune(limited: ReadonlySet<string>): void {
    for (const [l, x] of this.ledgers) if (!limited.has(l) && x.total <= 0 && x.waiting.length === 0 && !x.reclaiming) this.ledgers.delete(l);
  }

  /** Stop the reclaim timers (the primary closes). */
  close(): void {
    for (const x of this.ledgers.values()) if (x.timer !== undefined) this.io.timers.clear(x.timer);
  }
}

/** connection_limit of every TCP listener with one, by id. */
export function limits(s: Snapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const lb of s.lbs) for (const l of lb.listeners) if (l.protocol === "TCP" && l.connection_limit > 0) out.set(l.id, l.connection_limit);
  return out;
}
