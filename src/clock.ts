/**
 * Time enters the core only through a Clock (monotonic ms) and Timers, so tests drive both
 * with fakes: FakeClock alone for pure code, FakeClock + FakeTimers for code that waits.
 */
export interface Clock {
  now(): number;
}

/**
 * Monotonic, on a time base every process on the host shares (its origin is the process's
 * start in epoch ms): a slow-start start time from the control plane means the same in a worker.
 */
const origin = performance.timeOrigin; // constant; its getter validates on every read
export const systemClock: Clock = {
  now: () => origin + performance.now(),
};

/** One-shot timers. Real ones are unref'd: a timer alone never keeps lb4 alive. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const systemTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Resolves after `ms` on the given timers. */
export function sleep(timers: Timers, ms: number): Promise<void> {
  return new Promise((resolve) => timers.set(resolve, ms));
}

/** A clock tests advance by hand. */
export class FakeClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/** Timers on a FakeClock: `advance()` runs due callbacks in time order, letting promises settle between them. */
export class FakeTimers implements Timers {
  private q: { id: number; at: number; fn: () => void }[] = [];
  private seq = 0;
  constructor(readonly clock: FakeClock) {}
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.q.push({ id, at: this.clock.now() + Math.max(0, ms), fn });
    return id;
  }
  clear(h: unknown): void {
    this.q = this.q.filter((t) => t.id !== h);
  }
  get pending(): number {
    return this.q.length;
  }
  /** When the next timer is due, or undefined when none is set. */
  nextAt(): number | undefined {
    return this.q.reduce<number | undefined>((m, t) => (m === undefined || t.at < m ? t.at : m), undefined);
  }
  async advance(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      const due = this.q.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.q = this.q.filter((t) => t !== due);
      this.clock.set(Math.max(this.clock.now(), due.at));
      due.fn();
    }
    this.clock.set(end);
    await new Promise<void>((r) => setImmediate(r));
  }
}
