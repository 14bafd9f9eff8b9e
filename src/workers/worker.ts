/**
 * A worker process (SPEC §10): the TCP data plane, run from the snapshots the primary sends.
 * It accepts on the primary's listening sockets (node:cluster, SCHED_NONE: the kernel hands
 * each connection to one worker), reports counters back, and asks the primary only what
 * must hold across workers. Signals are the primary's business: a worker ignores them and
 * exits when told to, or when the primary is gone (the IPC channel closes).
 */
import type { Logger } from "pino";
import { systemClock, systemTimers } from "../clock.js";
import { DataPlane } from "../dataplane/dataplane.js";
import { CLAIM_HELD, CLAIM_NONE, type ClaimingConn, type SharedAdmission } from "../dataplane/shared-admission.js";
import type { Snapshot } from "../model/snapshot.js";
import { Lb4Error } from "../errors.js";
import { createLogger, flushAndExit } from "../log.js";
import type { LevelWithSilent } from "pino";
import { STAT_FIELDS, WORKER_ENV, type FromWorker, type Report, type ToWorker, type WorkerInit } from "./protocol.js";
import { fromWire } from "./snapshot-wire.js";
import { limits } from "./limit-ledger.js";
import { dataplaneChoice } from "../platform/dataplane-path.js";

/** While stopping, counters go to the primary this often so its shutdown wait sees connections end. */
const STOPPING_REPORT_MS = 25;

function send(msg: FromWorker): void {
  if (process.connected) process.send!(msg);
}

/** One listener's lease of its limit's slots in this worker. */
interface Lease {
  /** Slots granted to this worker. */
  have: number;
  /** Slots held by open connections. */
  used: number;
  /** Idle slots this worker may keep (the primary says). */
  keep: number;
  asking: boolean;
  /** Connections waiting for a slot, oldest first. */
  waiting: ClaimingConn[];
}

/** The primary, as the data plane's SharedAdmission: slot leases per listener, persistence asks matched by id. */
class PrimaryLink implements SharedAdmission {
  private seq = 0;
  private readonly asked = new Map<number, ClaimingConn>();
  private readonly leases = new Map<string, Lease>();

  private lease(l: string): Lease {
    let x = this.leases.get(l);
    if (!x) this.leases.set(l, (x = { have: 0, used: 0, keep: 0, asking: false, waiting: [] }));
    return x;
  }

  acquire(conn: ClaimingConn): void {
    const x = this.lease(conn.listener.config.id);
    if (x.used < x.have && x.waiting.length === 0) {
      x.used++;
      conn.slotted(true);
      return;
    }
    x.waiting.push(conn);
    this.ask(conn.listener.config.id, x);
  }

  private ask(l: string, x: Lease): void {
    if (x.asking) return;
    x.asking = true;
    send({ t: "lease", l, want: x.waiting.length });
  }

  leased(l: string, n: number, keep: number): void {
    const x = this.lease(l);
    x.asking = false;
    x.have += n;
    x.keep = keep;
    while (x.waiting.length > 0 && x.used < x.have) {
      x.used++;
      x.waiting.shift()!.slotted(true);
    }
    if (x.waiting.length === 0) return;
    if (n === 0) {
      // None free in the whole instance: the waiting connections are over the limit.
      for (const c of x.waiting.splice(0)) c.slotted(false);
      return;
    }
    this.ask(l, x);
  }

  /** Drop leases of listeners without a limit whose slots are all back (ids of removed listeners do not pile up). */
  prune(limited: ReadonlySet<string>): void {
    for (const [l, x] of this.leases) {
      if (limited.has(l) || x.used !== 0 || x.waiting.length !== 0 || x.asking) continue;
      if (x.have > 0) send({ t: "returned", l, n: x.have }); // the primary's books stay right
      this.leases.delete(l);
    }
  }

  /** A limit was just set on `l`: `n` open connections hold slots from now (the primary books them). */
  book(l: string, n: number): void {
    if (n <= 0) return;
    const x = this.lease(l);
    x.have += n;
    x.used += n;
    send({ t: "holding", l, n });
  }

  reclaim(l: string): void {
    const x = this.lease(l);
    const idle = x.have - x.used;
    x.have = x.used;
    send({ t: "returned", l, n: idle });
  }

  releaseSlot(l: string): void {
    const x = this.lease(l);
    x.used--;
    // Reused by the next connection while idle slots stay few; the rest go back.
    const extra = x.have - x.used - x.keep;
    if (extra > 0 && x.waiting.length === 0) {
      x.have -= extra;
      send({ t: "returned", l, n: extra });
    }
  }

  claim(conn: ClaimingConn): void {
    const id = ++this.seq;
    this.asked.set(id, conn);
    send({ t: "claim", id, p: conn.listener.pool.id, ip: conn.ip });
  }

  claimed(id: number, m: string | undefined): void {
    const conn = this.asked.get(id);
    if (!conn) return;
    this.asked.delete(id);
    conn.claimed(m);
  }

  stick(p: string, ip: string, m: string): void {
    send({ t: "stick", p, ip, m });
  }

  touch(p: string, ip: string, m: string): void {
    send({ t: "touch", p, ip, m });
  }
}

function report(dp: DataPlane): Report {
  const byId = new Map<string, Report["listeners"][number]>();
  for (const l of dp.allListeners()) {
    const t = l.traffic();
    const row = byId.get(l.config.id);
    const vals = STAT_FIELDS.map((f) => l.stats[f]);
    if (row) {
      // A retired listener and its replacement share an id: one row.
      vals.forEach((v, i) => (row[1][i]! += v));
      row[2] += t.bytesIn;
      row[3] += t.bytesOut;
    } else {
      byId.set(l.config.id, [l.config.id, vals, t.bytesIn, t.bytesOut]);
    }
  }
  const members: Report["members"] = [];
  for (const lb of dp.lbs.values()) {
    for (const p of lb.pools.values()) {
      if (p.config.protocol !== "TCP") continue;
      for (const m of p.members.values()) members.push([p.id, m.id, m.active, m.total]);
    }
  }
  return { active: dp.activeConnections, listeners: [...byId.values()], members };
}

/**
 * A listener whose limit was just set (it had none): its open connections count against the
 * limit from now, as they do in one process (SPEC §3), so they take slots and give them back
 * when they close.
 */
function holdOpenConnections(dp: DataPlane, before: Snapshot, link: PrimaryLink): void {
  const had = new Map<string, number>();
  for (const lb of before.lbs) for (const l of lb.listeners) had.set(l.id, l.connection_limit);
  for (const lb of dp.snapshot.lbs) {
    for (const cfg of lb.listeners) {
      // Kept listeners only (a new one has no connections yet) whose limit was 0.
      if (cfg.protocol !== "TCP" || cfg.connection_limit === 0 || had.get(cfg.id) !== 0) continue;
      const l = dp.listener(cfg.id) as unknown as { sessions?: { forEach(fn: (s: { claim: number; done: boolean }) => void): void } } | undefined;
      let n = 0;
      l?.sessions?.forEach((s) => {
        if (s.done || s.claim !== CLAIM_NONE) return;
        s.claim = CLAIM_HELD;
        n++;
      });
      link.book(cfg.id, n);
    }
  }
}

export function runWorker(): void {
  const init = JSON.parse(process.env[WORKER_ENV] ?? "{}") as WorkerInit;
  const logger: Logger = createLogger((init.level ?? "info") as LevelWithSilent, { atomic: true });
  const link = new PrimaryLink();
  const dp = new DataPlane({
    logger,
    clock: systemClock,
    timers: systemTimers,
    tuning: { connectTimeoutMs: init.tuning?.connectTimeoutMs ?? 5000, tickMs: init.tuning?.tickMs ?? 1000 },
    role: "worker",
    shared: link,
  });
  // The primary drives stop and reload; a signal to the whole process group must not stop a worker on its own.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => undefined);

  let applying: Promise<unknown> = Promise.resolve();
  let stopping: ReturnType<typeof setInterval> | undefined;
  const periodic = setInterval(() => send({ t: "counters", r: report(dp) }), init.reportMs ?? 1000);
  periodic.unref();

  process.on("message", (msg: ToWorker) => {
    switch (msg.t) {
      case "snap":
        // In order: each snapshot is relative to the one before.
        applying = applying.then(async () => {
          try {
            const before = dp.snapshot;
            await dp.apply(fromWire(dp.snapshot, msg.wire));
            holdOpenConnections(dp, before, link);
            link.prune(new Set(limits(dp.snapshot).keys()));
            send({ t: "applied", version: msg.wire.version });
          } catch (err) {
            const e = err as Error;
            send({ t: "applied", version: msg.wire.version, error: { code: e instanceof Lb4Error ? e.code : "LB4.WORKER_APPLY_FAILED", message: e.message } });
          }
        });
        return;
      case "claimed":
        link.claimed(msg.id, msg.m);
        return;
      case "leased":
        link.leased(msg.l, msg.n, msg.keep);
        return;
      case "reclaim":
        link.reclaim(msg.l);
        return;
      case "report":
        send({ t: "counters", id: msg.id, r: report(dp) });
        return;
      case "stop":
        void dp.stopAccepting();
        stopping ??= setInterval(() => send({ t: "counters", r: report(dp) }), STOPPING_REPORT_MS);
        return;
      case "destroy":
        dp.destroyAll();
        send({ t: "counters", r: report(dp) });
        return;
      case "close":
        clearInterval(periodic);
        if (stopping) clearInterval(stopping);
        void dp.stopAccepting();
        dp.destroyAll();
        dp.close();
        flushAndExit(logger, 0, 1000);
        return;
    }
  });
  send({ t: "ready", dataplane: dataplaneChoice() });
}
