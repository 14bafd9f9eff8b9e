/**
 * The timing edge of health checks: schedules probes per member, feeds results to the
 * pure state machine, reports transitions. One unref'd timer per member: Node keeps
 * timers of equal duration in one list under a single native timer, so 1,000 members
 * cost about as much as a hand-rolled wheel, without the code (see the report's CPU figure).
 */
import { systemClock, type Clock, type Timers } from "../clock.js";
import { Lb4Error } from "../errors.js";
import { probe as httpProbe } from "./probers/http.js";
import { errText } from "./probers/common.js";
import { probe as tcpProbe } from "./probers/tcp.js";
import { probe as udpProbe } from "./probers/udp.js";
import {
  applyResult,
  firstCheckDelayMs,
  initialHealth,
  restoredHealth,
  type HealthState,
  type MemberHealth,
  type Transition,
} from "./state-machine.js";
import type {
  HealthMonitorSettings,
  HealthMonitorType,
  OperatingStatus,
  ProbeResult,
  ProbeTarget,
  Prober,
} from "./types.js";

/** A member to check. `port` is the member's port; `settings.monitor_port` overrides it. */
export interface CheckTarget extends ProbeTarget {
  /** Sent first on every probe (PROXY v2 LOCAL header when the pool sends headers). */
  prefix?: Buffer;
}

export interface MemberHealthStatus {
  /** NO_MONITOR when the monitor is admin-down; OFFLINE until the first pass. */
  status: OperatingStatus;
  state: HealthState;
  /** null until the first result arrives. */
  lastResult: boolean | null;
  lastDetail: string | null;
  /** clock.now() of the last result, ms; null until then. */
  checkedAt: number | null;
  passes: number;
  failures: number;
}

/** Timer seam so unit tests can drive scheduling from a FakeClock. */
export type TimerApi = Timers;

/**
 * Due times are rounded up to a 10 ms grid so members due close together share one
 * event-loop wakeup: 1,000 members at delay 1 then wake the loop ≤100 times a second,
 * not 1,000. Unref'd: health checks alone must never keep the process alive.
 */
const TIMER_GRID_MS = 10;
export const realTimers: TimerApi = {
  set: (fn, ms) => {
    const now = performance.now();
    const at = Math.ceil((now + ms) / TIMER_GRID_MS) * TIMER_GRID_MS;
    return setTimeout(fn, at - now).unref();
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** After a restart, members with a known health are first checked within this, spread over it. */
export const RESTORED_FIRST_CHECK_MS = 1000;

export const defaultProbers: Readonly<Record<HealthMonitorType, Prober>> = Object.freeze({
  TCP: tcpProbe,
  HTTP: httpProbe,
  UDP_CONNECT: udpProbe,
});

export interface HealthCheckerOptions {
  onTransition?: (memberKey: string, transition: Transition) => void;
  /** Every check result (for metrics); `durationMs` by the clock. */
  onResult?: (memberKey: string, result: ProbeResult, durationMs: number) => void;
  /** A callback threw. Default: rethrown asynchronously, like a throwing event listener. */
  onError?: (err: unknown, memberKey: string) => void;
  clock?: Clock;
  random?: () => number;
  /** One prober for every type, or per-type overrides of the real ones. */
  prober?: Prober | Partial<Record<HealthMonitorType, Prober>>;
  timers?: TimerApi;
}

interface Entry {
  readonly key: string;
  target: CheckTarget;
  settings: HealthMonitorSettings;
  health: MemberHealth;
  lastResult: boolean | null;
  lastDetail: string | null;
  checkedAt: number | null;
  timer: unknown;
  /** When the next probe should start (clock ms); probes never start before the previous ends. */
  nextDue: number;
  lastStarted: number | null;
  inFlight: AbortController | null;
  /** Bumped by every settings change: results of probes started before it are dropped. */
  gen: number;
  removed: boolean;
}

export class HealthChecker {
  private readonly members = new Map<string, Entry>();
  private readonly pending = new Set<Promise<void>>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly timers: TimerApi;
  private readonly probers: Record<HealthMonitorType, Prober>;
  private closed = false;

  constructor(private readonly opts: HealthCheckerOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? realTimers;
    const p = opts.prober;
    this.probers =
      typeof p === "function"
        ? { TCP: p, HTTP: p, UDP_CONNECT: p }
        : { ...defaultProbers, ...(p ?? {}) };
  }

  get size(): number {
    return this.members.size;
  }

  has(memberKey: string): boolean {
    return this.members.has(memberKey);
  }

  /**
   * Start checking a member: first check at a random moment within `delay`. With `restored`
   * (its last known state from before a restart) it keeps that state until its first check,
   * which runs within RESTORED_FIRST_CHECK_MS. Adding a known key updates it.
   */
  add(memberKey: string, target: CheckTarget, settings: HealthMonitorSettings, opts: { restored?: "ONLINE" | "OFFLINE" } = {}): void {
    if (this.closed) throw new Lb4Error("LB4.HEALTH_CHECKER_CLOSED", "health checker is closed; create a new one");
    if (this.members.has(memberKey)) {
      this.update(memberKey, settings, target);
      return;
    }
    const e: Entry = {
      key: memberKey,
      target,
      settings,
      health: opts.restored ? restoredHealth(opts.restored) : initialHealth,
      lastResult: null,
      lastDetail: null,
      checkedAt: null,
      timer: undefined,
      nextDue: 0,
      lastStarted: null,
      inFlight: null,
      gen: 0,
      removed: false,
    };
    this.members.set(memberKey, e);
    if (settings.admin_state_up) this.scheduleFirst(e, opts.restored ? RESTORED_FIRST_CHECK_MS / 1000 : settings.delay);
  }

  /**
   * Change a member's settings (and optionally its target). Health state is kept; a new
   * `delay` applies from the last check; monitor admin-down stops checks (NO_MONITOR) and
   * admin-up again starts over as for a new member.
   */
  update(memberKey: string, settings: HealthMonitorSettings, target?: CheckTarget): void {
    const e = this.members.get(memberKey);
    if (!e) throw new Lb4Error("LB4.NOT_FOUND", `health-checked member "${memberKey}" does not exist; add it first`);
    const old = e.settings;
    // The same settings and target again (a reload re-creates every object): nothing to restart.
    if (sameSettings(old, settings) && (!target || sameTarget(e.target, target))) return;
    e.settings = settings;
    if (target) e.target = target;
    e.gen++;

    if (!settings.admin_state_up) {
      this.stop(e);
      this.reset(e);
      return;
    }
    if (!old.admin_state_up) {
      this.reset(e);
      this.scheduleFirst(e);
      return;
    }
    if (old.delay !== settings.delay) {
      const now = this.clock.now();
      e.nextDue =
        e.lastStarted === null
          ? now + firstCheckDelayMs(settings.delay, this.random)
          : Math.max(now, e.lastStarted + settings.delay * 1000);
      if (!e.inFlight) this.arm(e);
    }
  }

  /** Stop checking a member; an in-flight probe is aborted. Returns false if unknown. */
  remove(memberKey: string): boolean {
    const e = this.members.get(memberKey);
    if (!e) return false;
    e.removed = true;
    this.stop(e);
    this.members.delete(memberKey);
    return true;
  }

  status(memberKey: string): MemberHealthStatus | undefined {
    const e = this.members.get(memberKey);
    if (!e) return undefined;
    return {
      status: !e.settings.admin_state_up ? "NO_MONITOR" : e.health.state === "ONLINE" ? "ONLINE" : "OFFLINE",
      state: e.health.state,
      lastResult: e.lastResult,
      lastDetail: e.lastDetail,
      checkedAt: e.checkedAt,
      passes: e.health.passes,
      failures: e.health.failures,
    };
  }

  /** Clear every timer, abort in-flight probes and wait until they have released their sockets. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.members.values()) {
      e.removed = true;
      this.stop(e);
    }
    this.members.clear();
    await Promise.all([...this.pending]);
  }

  // ---- internals -------------------------------------------------------------------

  private reset(e: Entry): void {
    e.health = initialHealth;
    e.lastResult = null;
    e.lastDetail = null;
    e.checkedAt = null;
  }

  private scheduleFirst(e: Entry, withinSeconds = e.settings.delay): void {
    e.lastStarted = null;
    e.nextDue = this.clock.now() + firstCheckDelayMs(withinSeconds, this.random);
    if (!e.inFlight) this.arm(e);
    // else: the probe being aborted/finished arms the timer when it settles.
  }

  private arm(e: Entry): void {
    if (e.timer !== undefined) this.timers.clear(e.timer);
    e.timer = this.timers.set(() => this.run(e), Math.max(0, e.nextDue - this.clock.now()));
  }

  private stop(e: Entry): void {
    if (e.timer !== undefined) this.timers.clear(e.timer);
    e.timer = undefined;
    e.inFlight?.abort();
  }

  private run(e: Entry): void {
    e.timer = undefined;
    if (e.removed || e.inFlight || !e.settings.admin_state_up) return;
    const gen = e.gen;
    const settings = e.settings;
    const started = this.clock.now();
    e.lastStarted = started;
    // Keep to the planned grid so timer lateness does not accumulate; after an overrun of
    // a whole interval, restart the grid here instead of firing catch-up probes.
    const delayMs = settings.delay * 1000;
    e.nextDue = (started - e.nextDue < delayMs ? e.nextDue : started) + delayMs;
    const ac = new AbortController();
    e.inFlight = ac;
    const target: ProbeTarget = { address: e.target.address, port: settings.monitor_port ?? e.target.port };
    if (e.target.localAddress !== undefined) target.localAddress = e.target.localAddress;

    let p: Promise<ProbeResult>;
    try {
      p = this.probers[settings.type](target, settings, { prefix: e.target.prefix, signal: ac.signal });
    } catch (err) {
      p = Promise.resolve({ ok: false, detail: errText(err) });
    }
    const done: Promise<void> = p
      .then(
        (r) => r,
        (err: unknown): ProbeResult => ({ ok: false, detail: errText(err) }),
      )
      .then((r) => {
        this.pending.delete(done);
        this.complete(e, gen, started, r);
      });
    this.pending.add(done);
  }

  private complete(e: Entry, gen: number, started: number, r: ProbeResult): void {
    e.inFlight = null;
    if (e.removed || this.closed) return;
    if (!e.settings.admin_state_up) return;
    let transition: Transition | undefined;
    const now = this.clock.now();
    if (gen === e.gen) {
      const step = applyResult(e.health, r.ok, r.detail, e.settings);
      e.health = step.health;
      transition = step.transition;
      e.lastResult = r.ok;
      e.lastDetail = r.detail;
      e.checkedAt = now;
    }
    // Next probe on the `delay` grid, or right away if this one overran it (never overlapping).
    this.arm(e);
    if (gen !== e.gen) return;
    this.call(e.key, () => this.opts.onResult?.(e.key, r, now - started));
    if (transition) {
      const t = transition;
      this.call(e.key, () => this.opts.onTransition?.(e.key, t));
    }
  }

  private call(key: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.opts.onError) this.opts.onError(err, key);
      else
        queueMicrotask(() => {
          throw err;
        });
    }
  }
}

function sameSettings(a: HealthMonitorSettings, b: HealthMonitorSettings): boolean {
  if (a === b) return true;
  for (const k of Object.keys(b) as Array<keyof HealthMonitorSettings>) if (a[k] !== b[k]) return false;
  return Object.keys(a).length === Object.keys(b).length;
}

function sameTarget(a: CheckTarget, b: CheckTarget): boolean {
  const prefixSame = a.prefix === b.prefix || (a.prefix !== undefined && b.prefix !== undefined && a.prefix.equals(b.prefix));
  return a.address === b.address && a.port === b.port && a.localAddress === b.localAddress && prefixSame;
}
