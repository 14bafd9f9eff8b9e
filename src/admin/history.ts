/**
 * Recent traffic for the dashboard's charts: per listener, new connections/s and bytes/s over
 * the last few minutes; per member, the connections it took in that window (its share of the
 * pool's traffic). A fixed number of samples per listener, so memory is bounded whatever runs;
 * listeners and members that are gone are dropped at the next sample.
 *
 * `TrafficHistory` is pure (readings and times come in); `startSampler` is the timer around it.
 */

/** Counters as read at one moment. Totals only ever grow, except when an object is replaced. */
export interface TrafficReading {
  listeners: ReadonlyMap<string, { total: number; bytes: number }>;
  /** Connections/flows ever opened, by pool id, then member id. */
  members: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** One point of a listener's chart: rates over the interval that ended at `t` (wall-clock ms). */
export interface RatePoint {
  t: number;
  conn_rate: number;
  bytes_rate: number;
}

export const HISTORY_INTERVAL_MS = 5000;
/** 60 samples of 5 s: the last 5 minutes. */
export const HISTORY_SAMPLES = 60;

/** The increase of a counter; a smaller value means its object was replaced (a rebound listener) and counts from 0. */
export function counterDelta(prev: number, cur: number): number {
  return cur >= prev ? cur - prev : cur;
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export class TrafficHistory {
  private readonly series = new Map<string, RatePoint[]>();
  private prev: { t: number; reading: TrafficReading } | undefined;
  /** Member totals at the start of the window (the oldest sample kept), by pool then member. */
  private readonly memberWindow: Array<ReadonlyMap<string, ReadonlyMap<string, number>>> = [];

  constructor(readonly capacity = HISTORY_SAMPLES) {}

  /** Take a sample at wall-clock time `t`. The first one only sets the baseline. */
  record(t: number, reading: TrafficReading): void {
    const prev = this.prev;
    this.prev = { t, reading };
    this.memberWindow.push(reading.members);
    if (this.memberWindow.length > this.capacity + 1) this.memberWindow.shift();
    for (const id of [...this.series.keys()]) if (!reading.listeners.has(id)) this.series.delete(id);
    if (!prev || t <= prev.t) return;
    const dt = (t - prev.t) / 1000;
    for (const [id, cur] of reading.listeners) {
      const was = prev.reading.listeners.get(id) ?? { total: 0, bytes: 0 };
      let s = this.series.get(id);
      if (!s) this.series.set(id, (s = []));
      s.push({ t, conn_rate: round(counterDelta(was.total, cur.total) / dt), bytes_rate: Math.round(counterDelta(was.bytes, cur.bytes) / dt) });
      if (s.length > this.capacity) s.shift();
    }
  }

  /** A listener's points, oldest first (empty for a listener not sampled yet). */
  points(listenerId: string): readonly RatePoint[] {
    return this.series.get(listenerId) ?? [];
  }

  /** The newest point of a listener, if any. */
  latest(listenerId: string): RatePoint | undefined {
    const s = this.series.get(listenerId);
    return s?.[s.length - 1];
  }

  /**
   * Each member's share of its pool's new connections since the start of the window, given
   * the totals now; null for every member of a pool that took none in the window.
   */
  shares(poolId: string, totalsNow: ReadonlyMap<string, number>): Map<string, number | null> {
    const base = this.memberWindow[0]?.get(poolId);
    const taken = new Map<string, number>();
    let sum = 0;
    for (const [id, cur] of totalsNow) {
      const n = counterDelta(base?.get(id) ?? 0, cur);
      taken.set(id, n);
      sum += n;
    }
    const out = new Map<string, number | null>();
    for (const [id, n] of taken) out.set(id, sum > 0 ? round(n / sum, 4) : null);
    return out;
  }

  clear(): void {
    this.series.clear();
    this.memberWindow.length = 0;
    this.prev = undefined;
  }
}

export interface Sampler {
  readonly history: TrafficHistory;
  stop(): void;
}

/** Sample `read()` now and every `intervalMs` into a new TrafficHistory; the timer never keeps the process alive. */
export function startSampler(read: () => TrafficReading, opts: { intervalMs?: number; capacity?: number; now?: () => number } = {}): Sampler {
  const history = new TrafficHistory(opts.capacity ?? HISTORY_SAMPLES);
  const now = opts.now ?? Date.now;
  const sample = () => history.record(now(), read());
  sample();
  const timer = setInterval(sample, opts.intervalMs ?? HISTORY_INTERVAL_MS);
  timer.unref();
  return {
    history,
    stop() {
      clearInterval(timer);
      history.clear();
    },
  };
}
