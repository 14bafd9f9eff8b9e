/**
 * The primary's data plane when workers serve TCP (SPEC §10): the same port as the
 * in-process DataPlane, so the control plane neither knows nor cares. It
 *   - forks N workers with node:cluster, workers accepting directly (SCHED_NONE), and
 *     replaces one that dies;
 *   - sends every snapshot to every worker (wire form: only what changed) and applies it
 *     once all took it; a TCP bind that fails in the workers fails the change, as in one
 *     process;
 *   - serves UDP itself (a flow is never split across processes) and mirrors the TCP
 *     listeners from the workers' counters, so the read model sees instance totals;
 *   - holds the instance-wide connection_limit count and persistence table the workers
 *     ask for (only listeners with a limit or a persistent pool do).
 */
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import { DataPlane, type DataPlaneOptions, type DataPlanePort, type LbRuntime, type WorkerView } from "../dataplane/dataplane.js";
import type { Listener } from "../dataplane/listener.js";
import { MirrorListener } from "../dataplane/mirror-listener.js";
import { Lb4Error } from "../errors.js";
import type { Plan } from "../model/plan.js";
import type { PoolRuntime } from "../model/pool.js";
import { EMPTY_SNAPSHOT, type Snapshot } from "../model/snapshot.js";
import { STAT_FIELDS, WORKER_ENV, type FromWorker, type Report, type ToWorker, type WorkerInit } from "./protocol.js";
import { toWire } from "./snapshot-wire.js";
import { LimitLedger, limits } from "./limit-ledger.js";
import { dataplanePath, describeDataplane } from "../platform/dataplane-path.js";

/** A worker that has not said ready by then is killed and started again. */
const READY_TIMEOUT_MS = 10_000;
/** A snapshot a worker has not acknowledged by then: the worker is taken as hung and replaced. */
const APPLY_TIMEOUT_MS = 5_000;
/** How long a read of fresh counters waits for the workers. */
const REFRESH_TIMEOUT_MS = 500;
/** Workers that die this soon after starting, this many times in a row, are restarted after a pause. */
const CRASH_LOOP = { withinMs: 2_000, count: 5, pauseMs: 1_000 };
const REPORT_MS = 1000;
/** How long close() waits for a worker to flush its log and exit before SIGKILL. */
const WORKER_EXIT_WAIT_MS = 2500;

export interface ClusterOptions extends DataPlaneOptions {
  workers: number;
}

interface Slot {
  readonly index: number;
  worker: Worker;
  startedAt: number;
  ready: boolean;
  /** The snapshot this worker runs (acknowledged). */
  runs: Snapshot;
  report: Report | undefined;
  /** The worker's TCP data plane, once it is ready. */
  dataplane: Extract<FromWorker, { t: "ready" }>["dataplane"] | undefined;
  acks: Map<number, (r: { error?: { code: string; message: string } }) => void>;
  reports: Map<number, () => void>;
  crashes: number;
}

/** The worker entry next to this file: compiled JS, or (tests on sources) TypeScript through tsx. */
function workerEntry(): { exec: string; execArgv: string[] } {
  const url = import.meta.url;
  if (url.endsWith(".ts")) return { exec: fileURLToPath(new URL("./worker-main.ts", url)), execArgv: ["--import", "tsx"] };
  // The primary's node flags (bin/lb4 sets the heap's initial old space), but not an inspector: its port would clash.
  return { exec: fileURLToPath(new URL("./worker-main.js", url)), execArgv: process.execArgv.filter((a) => !a.startsWith("--inspect")) };
}

export class ClusterDataPlane implements DataPlanePort {
  private readonly local: DataPlane;
  private readonly slots: Slot[] = [];
  private readonly opts: ClusterOptions;
  /** The snapshot the instance runs. */
  private current: Snapshot = EMPTY_SNAPSHOT;
  /** The instance-wide connection_limit: slots leased to workers. */
  private readonly ledger: LimitLedger;
  /** Counters of workers that exited (monotonic ones only), so totals never go back. */
  private readonly departed = { listeners: new Map<string, number[]>(), members: new Map<string, number>() };
  private seq = 0;
  private closing = false;
  /** stopAccepting() ran (shutdown grace): no new workers, no new listeners. */
  private stopping = false;
  private closed = false;
  restarts = 0;
  /** connection_limit by TCP listener id, of the snapshot being applied or run. */
  private limits = new Map<string, number>();
  readonly fanout = { count: 0, sumMs: 0, maxMs: 0 };
  private refreshing: Promise<void> | undefined;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.local = new DataPlane({ ...opts, role: "primary" });
    this.ledger = new LimitLedger({
      limitOf: (l) => this.limits.get(l) ?? 0,
      workerCount: () => this.slots.length,
      grant: (w, l, n, keep) => {
        const s = this.slots[w];
        if (s) this.send(s, { t: "leased", l, n, keep });
      },
      reclaim: (w, l) => {
        const s = this.slots[w];
        if (s) this.send(s, { t: "reclaim", l });
      },
      timers: opts.timers,
    });
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const { exec, execArgv } = workerEntry();
    cluster.setupPrimary({ exec, execArgv, args: [], silent: false });
    for (let i = 0; i < opts.workers; i++) this.fork(i);
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  get lbs(): ReadonlyMap<string, LbRuntime> {
    return this.local.lbs;
  }

  pool(poolId: string): PoolRuntime | undefined {
    return this.local.pool(poolId);
  }

  listener(listenerId: string): Listener | undefined {
    return this.local.listener(listenerId);
  }

  get activeConnections(): number {
    let n = 0;
    for (const l of this.local.allListeners()) if (!(l instanceof MirrorListener)) n += l.stats.active;
    for (const s of this.slots) n += s.report?.active ?? 0;
    return n;
  }

  workers(): WorkerView[] {
    const now = Date.now();
    return this.slots.map((s) => ({ index: s.index, pid: s.worker.process.pid ?? 0, ready: s.ready, connections: s.report?.active ?? 0, uptimeMs: now - s.startedAt, dataplane: s.dataplane ? describeDataplane(s.dataplane) : "", dataplanePath: s.dataplane?.path }));
  }

  private fork(index: number, crashes = 0): void {
    const init: WorkerInit = { level: this.opts.logger.level, tuning: { connectTimeoutMs: this.opts.tuning.connectTimeoutMs, tickMs: this.opts.tuning.tickMs }, reportMs: REPORT_MS };
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(init) });
    const slot: Slot = { index, worker, startedAt: Date.now(), ready: false, runs: EMPTY_SNAPSHOT, report: undefined, dataplane: undefined, acks: new Map(), reports: new Map(), crashes };
    this.slots[index] = slot;
    const readyTimer = setTimeout(() => {
      this.opts.logger.error({ ev: "worker_stuck", worker: index, pid: worker.process.pid }, `worker ${index} did not start within ${READY_TIMEOUT_MS / 1000} s; replacing it`);
      worker.process.kill("SIGKILL");
    }, READY_TIMEOUT_MS);
    readyTimer.unref();
    worker.on("message", (msg: FromWorker) => this.onMessage(slot, msg, readyTimer));
    worker.on("error", () => undefined); // EPIPE on a worker that just died: its 'exit' follows
    worker.on("exit", (code, signal) => {
      clearTimeout(readyTimer);
      this.onExit(slot, code, signal);
    });
  }

  private onExit(slot: Slot, code: number | null, signal: string | null): void {
    if (this.slots[slot.index] !== slot) return;
    // Its open connections are gone with it: their limit slots free, its counters kept.
    this.ledger.workerGone(slot.index);
    if (slot.report) this.keepDeparted(slot.report);
    slot.report = undefined;
    slot.ready = false;
    for (const ack of slot.acks.values()) ack({});
    slot.acks.clear();
    for (const done of slot.reports.values()) done();
    slot.reports.clear();
    if (this.closing || this.stopping) return;
    this.restarts++;
    const early = Date.now() - slot.startedAt < CRASH_LOOP.withinMs;
    const crashes = early ? slot.crashes + 1 : 0;
    this.opts.logger.warn(
      { ev: "worker_exit", worker: slot.index, pid: slot.worker.process.pid, code, signal, restarts: this.restarts },
      `worker ${slot.index} (pid ${slot.worker.process.pid}) exited (${signal ?? `code ${code}`}); starting a new one`,
    );
    this.fold();
    if (crashes >= CRASH_LOOP.count) {
      setTimeout(() => !this.closing && this.fork(slot.index, crashes), CRASH_LOOP.pauseMs).unref();
    } else {
      this.fork(slot.index, crashes);
    }
  }

  private onMessage(slot: Slot, msg: FromWorker, readyTimer: ReturnType<typeof setTimeout>): void {
    switch (msg.t) {
      case "ready":
        clearTimeout(readyTimer);
        slot.ready = true;
        slot.dataplane = msg.dataplane;
        if (msg.dataplane.path !== dataplanePath()) {
          const text = describeDataplane(msg.dataplane);
          this.opts.logger.warn({ ev: "worker_dataplane", worker: slot.index, dataplane: text, primary: dataplanePath() }, `worker ${slot.index} runs the ${text} TCP data plane, not ${dataplanePath()}`);
        }
        this.opts.logger.debug({ ev: "worker_ready", worker: slot.index, pid: slot.worker.process.pid }, `worker ${slot.index} ready`);
        this.syncLater(slot);
        this.readyWaiters.forEach((w) => w());
        return;
      case "applied": {
        const ack = slot.acks.get(msg.version);
        slot.acks.delete(msg.version);
        ack?.(msg.error ? { error: msg.error } : {});
        return;
      }
      case "claim":
        this.onClaim(slot, msg);
        return;
      case "lease":
        this.ledger.lease(slot.index, msg.l, msg.want);
        return;
      case "returned":
        this.ledger.returned(slot.index, msg.l, msg.n);
        return;
      case "holding":
        this.ledger.book(slot.index, msg.l, msg.n);
        return;
      case "stick": {
        const pool = this.local.pool(msg.p);
        const m = pool?.members.get(msg.m);
        if (pool?.persistence && m) pool.persistence.set(msg.ip, m, this.opts.clock.now());
        return;
      }
      case "touch": {
        const pool = this.local.pool(msg.p);
        const m = pool?.members.get(msg.m);
        if (m) pool!.touch(msg.ip, m);
        return;
      }
      case "counters":
        slot.report = msg.r;
        if (msg.id !== undefined) {
          const done = slot.reports.get(msg.id);
          slot.reports.delete(msg.id);
          done?.();
        } else {
          this.fold();
        }
        return;
    }
  }

  /** A worker's new connection of a persistent pool: the member the instance's table holds for the client. */
  private onClaim(slot: Slot, msg: Extract<FromWorker, { t: "claim" }>): void {
    const pool = this.local.pool(msg.p);
    // The primary's scheduler places new clients of persistent pools, so the table has one writer.
    const m = pool?.persistence ? pool.pick({ ip: msg.ip, port: 0 })?.id : undefined;
    this.send(slot, m === undefined ? { t: "claimed", id: msg.id } : { t: "claimed", id: msg.id, m });
  }

  private send(slot: Slot, msg: ToWorker): void {
    if (!slot.worker.isConnected()) return;
    try {
      slot.worker.send(msg);
    } catch {
      // The channel closed under us: the worker's 'exit' handles it.
    }
  }

  private readonly readyWaiters = new Set<() => void>();

  /** Resolve once every worker is ready (the first start), bounded. */
  private async allReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!this.slots.every((s) => s.ready) && Date.now() < deadline && !this.closing) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.readyWaiters.delete(done);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(done, 100);
        this.readyWaiters.add(done);
      });
    }
  }

  /** Send `next` to a worker and wait for its answer. */
  private push(slot: Slot, next: Snapshot): Promise<{ error?: { code: string; message: string } }> {
    if (!slot.ready) return Promise.resolve({});
    const had = slot.runs;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        slot.acks.delete(next.version);
        this.opts.logger.error({ ev: "worker_stuck", worker: slot.index, pid: slot.worker.process.pid }, `worker ${slot.index} did not take snapshot ${next.version} within ${APPLY_TIMEOUT_MS / 1000} s; replacing it`);
        slot.worker.process.kill("SIGKILL");
        resolve({});
      }, APPLY_TIMEOUT_MS);
      timer.unref();
      slot.acks.set(next.version, (r) => {
        clearTimeout(timer);
        if (!r.error) slot.runs = next;
        resolve(r);
      });
      this.send(slot, { t: "snap", wire: toWire(had, next) });
    });
  }

  /** Bring a worker to the snapshot the instance runs, on the push chain. */
  private syncLater(slot: Slot): void {
    this.chain = this.chain.then(() => this.sync(slot)).catch(() => undefined);
  }

  /** A worker that became ready, or missed a snapshot: bring it to the one the instance runs. */
  private async sync(slot: Slot): Promise<void> {
    if (!slot.ready || slot.runs === this.current || this.current === EMPTY_SNAPSHOT) return;
    const r = await this.push(slot, this.current);
    if (r.error) {
      // Its peers run this snapshot; a worker that cannot is replaced (it will retry from scratch).
      this.opts.logger.error({ ev: "worker_apply_failed", worker: slot.index, err: r.error.message }, `worker ${slot.index} cannot run the current configuration; replacing it`);
      slot.worker.process.kill("SIGKILL");
    }
  }

  /**
   * Run `next` in every worker, then here. One at a time (snapshots can be published while a
   * change is in flight): overlapping pushes could leave a worker acknowledging an older
   * snapshot after a newer one, with nothing to bring it back.
   */
  apply(next: Snapshot): Promise<Plan> {
    const run = this.chain.then(() => this.applyNow(next));
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Pushes to workers (apply, and bringing a late or restarted worker up to date) go one at a time. */
  private chain: Promise<unknown> = Promise.resolve();

  private async applyNow(next: Snapshot): Promise<Plan> {
    if (this.closed) throw new Lb4Error("LB4.CLOSED", "the load balancer is closed");
    if (this.current === EMPTY_SNAPSHOT) await this.allReady();
    const prev = this.current;
    const limitsBefore = this.limits;
    // The ledger answers with the limits being applied, not those of the snapshot before.
    this.limits = limits(next);
    const slots = this.slots.filter((s) => s.ready);
    const sentAt = performance.now();
    const results = await Promise.all(slots.map((s) => this.push(s, next)));
    const ms = performance.now() - sentAt;
    this.fanout.count++;
    this.fanout.sumMs += ms;
    if (ms > this.fanout.maxMs) this.fanout.maxMs = ms;
    const failed = results.find((r) => r.error);
    const back = async () => {
      await Promise.all(slots.filter((s) => s.runs === next).map((s) => this.push(s, prev)));
    };
    if (failed?.error) {
      this.limits = limitsBefore;
      await back();
      throw new Lb4Error(failed.error.code, failed.error.message);
    }
    let plan: Plan;
    try {
      plan = await this.local.apply(next);
    } catch (err) {
      this.limits = limitsBefore;
      await back();
      throw err;
    }
    this.current = next;
    for (const [l, n] of limitsBefore) if (this.limits.get(l) !== n) this.ledger.limitChanged(l);
    this.prune(next);
    // A worker that started meanwhile, or missed this one: brought up to date behind this apply.
    for (const s of this.slots) if (s.ready && s.runs !== this.current) this.syncLater(s);
    this.fold();
    return plan;
  }

  /** Ask every worker for its counters now and fold them in (metrics, status: instance totals). */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const waits = this.slots
        .filter((s) => s.ready)
        .map(
          (s) =>
            new Promise<void>((resolve) => {
              const id = ++this.seq;
              const t = setTimeout(() => {
                s.reports.delete(id);
                resolve();
              }, REFRESH_TIMEOUT_MS);
              s.reports.set(id, () => {
                clearTimeout(t);
                resolve();
              });
              this.send(s, { t: "report", id });
            }),
        );
      await Promise.all(waits);
      this.fold();
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Counters and leases of listeners and members the snapshot no longer has are dropped: nothing reads them. */
  private prune(s: Snapshot): void {
    const listeners = new Set<string>();
    const members = new Set<string>();
    for (const lb of s.lbs) {
      for (const l of lb.listeners) listeners.add(l.id);
      for (const p of lb.pools) for (const m of p.members) members.add(`${p.settings.id}/${m.config.id}`);
    }
    for (const id of this.departed.listeners.keys()) if (!listeners.has(id)) this.departed.listeners.delete(id);
    for (const key of this.departed.members.keys()) if (!members.has(key)) this.departed.members.delete(key);
    this.ledger.prune(new Set(this.limits.keys()));
  }

  private keepDeparted(r: Report): void {
    const activeAt = STAT_FIELDS.indexOf("active");
    for (const [id, vals, bytesIn, bytesOut] of r.listeners) {
      const d = this.departed.listeners.get(id) ?? new Array<number>(STAT_FIELDS.length + 2).fill(0);
      vals.forEach((v, i) => {
        if (i !== activeAt) d[i]! += v;
      });
      d[STAT_FIELDS.length]! += bytesIn;
      d[STAT_FIELDS.length + 1]! += bytesOut;
      this.departed.listeners.set(id, d);
    }
    for (const [p, m, , total] of r.members) this.departed.members.set(`${p}/${m}`, (this.departed.members.get(`${p}/${m}`) ?? 0) + total);
  }

  /** Mirror listeners and TCP members := what departed workers left + what live workers report. */
  private fold(): void {
    const mirrors = new Map<string, MirrorListener>();
    for (const l of this.local.allListeners()) if (l instanceof MirrorListener) mirrors.set(l.config.id, l);
    const n = STAT_FIELDS.length;
    for (const [id, l] of mirrors) {
      const d = this.departed.listeners.get(id);
      STAT_FIELDS.forEach((f, i) => (l.stats[f] = d?.[i] ?? 0));
      l.live = { bytesIn: d?.[n] ?? 0, bytesOut: d?.[n + 1] ?? 0, datagramsIn: 0, datagramsOut: 0 };
    }
    const members = new Map<string, { active: number; total: number }>();
    for (const lb of this.local.lbs.values()) {
      for (const p of lb.pools.values()) {
        if (p.config.protocol !== "TCP") continue;
        for (const m of p.members.values()) {
          const key = `${p.id}/${m.id}`;
          m.active = 0;
          m.total = this.departed.members.get(key) ?? 0;
          members.set(key, m);
        }
      }
    }
    for (const s of this.slots) {
      const r = s.report;
      if (!r) continue;
      for (const [id, vals, bytesIn, bytesOut] of r.listeners) {
        const l = mirrors.get(id);
        if (!l) continue;
        STAT_FIELDS.forEach((f, i) => (l.stats[f] += vals[i] ?? 0));
        l.live = { bytesIn: l.live.bytesIn + bytesIn, bytesOut: l.live.bytesOut + bytesOut, datagramsIn: 0, datagramsOut: 0 };
      }
      for (const [p, id, active, total] of r.members) {
        const m = members.get(`${p}/${id}`);
        if (!m) continue;
        m.active += active;
        m.total += total;
      }
    }
  }

  /** Workers stop accepting and report often from now on; the count the shutdown waits on is fresh. */
  async stopAccepting(): Promise<void> {
    // A worker that dies from now on is not replaced: the instance is draining.
    this.stopping = true;
    for (const s of this.slots) this.send(s, { t: "stop" });
    await this.local.stopAccepting();
    await this.refresh();
  }

  destroyAll(): void {
    for (const s of this.slots) this.send(s, { t: "destroy" });
    this.local.destroyAll();
  }

  /** Tell every worker to close and exit; kill those still there after a second. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.closed = true;
    this.ledger.close();
    this.local.close();
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.worker.isDead()) return resolve();
            // More than the worker's own bound for flushing its log at exit.
            const t = setTimeout(() => {
              s.worker.process.kill("SIGKILL");
              resolve();
            }, WORKER_EXIT_WAIT_MS);
            s.worker.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            this.send(s, { t: "close" });
          }),
      ),
    );
  }
}
