/**
 * The data plane: listeners, connections and flows, run from snapshots. apply(snapshot)
 * plans against the snapshot it runs and does only what changed; counters and finished
 * connections go out through the read accessors and the access log. It never imports the
 * control plane (test/unit/architecture.test.ts), so it runs the same in one process or in
 * a worker that receives snapshots as JSON.
 */
import type { Logger } from "pino";
import { compileAccessList } from "../acl/ipgroup.js";
import type { Clock, Timers } from "../clock.js";
import { encodeHeader } from "../clientip/codec.js";
import type { ListenerConfig } from "../config/schema.js";
import { Lb4Error } from "../errors.js";
import { memberKey, MemberRuntime } from "../model/member.js";
import { plan, type Plan } from "../model/plan.js";
import { PoolRuntime } from "../model/pool.js";
import { EMPTY_SNAPSHOT, headerModeOf, type LbSpec, type MemberSpec, type PoolSpec, type Snapshot } from "../model/snapshot.js";
import type { Ramp } from "../scheduling/weights.js";
import { AccessLog } from "./access-log.js";
import type { Listener } from "./listener.js";
import { RateLimitedLog } from "./ratelimit.js";
import { TcpListener, type TcpListenerDeps, type TcpTuning } from "./tcp.js";
import type { TcpConn } from "./tcp-conn.js";
import { HandleTcpListener } from "./tcp-handles.js";
import { dataplanePath, type DataplanePath } from "../platform/dataplane-path.js";
import { UdpListener } from "./udp.js";
import { MirrorListener } from "./mirror-listener.js";
import type { SharedAdmission } from "./shared-admission.js";

/**
 * What this process serves (SPEC §10): everything (one process); the TCP listeners (a
 * worker: UDP stays with the primary, persistence and limits are asked of it); or the UDP
 * listeners with TCP ones mirrored from the workers' reports (the primary).
 */
export type DataPlaneRole = "single" | "worker" | "primary";

export interface DataPlaneOptions {
  logger: Logger;
  clock: Clock;
  timers: Timers;
  tuning: TcpTuning & { tickMs: number };
  role?: DataPlaneRole;
  /** A worker's line to the primary for instance-wide limits and persistence. */
  shared?: SharedAdmission;
}

export interface LbRuntime {
  spec: LbSpec;
  pools: Map<string, PoolRuntime>;
  listeners: Map<string, Listener>;
  /** SNAT addresses present on this host, used round-robin as local addresses (SPEC §6 rule 5). */
  snat: { usable: string[]; next: number };
}

/** The header a member gets (SPEC §7), from its pool's settings. */
export function headerMode(pool: PoolRuntime, member: MemberRuntime): "toa" | "proxy_v1" | "proxy_v2" | undefined {
  return headerModeOf(pool.config.client_ip, member.crossVpc);
}

/** A worker process as the read model shows it (SPEC §10: `lb4 status`). */
export interface WorkerView {
  index: number;
  pid: number;
  ready: boolean;
  /** Open TCP connections, as last reported. */
  connections: number;
  /** The TCP data plane the worker runs (its start-up choice: handles, or net and why). */
  dataplane: string;
  dataplanePath: DataplanePath | undefined;
  uptimeMs: number;
}

/**
 * What the control plane needs of a data plane: this process's DataPlane, or the primary's
 * view of N workers (workers/primary.ts).
 */
export interface DataPlanePort {
  readonly snapshot: Snapshot;
  readonly lbs: ReadonlyMap<string, LbRuntime>;
  readonly activeConnections: number;
  apply(next: Snapshot): Promise<Plan>;
  pool(poolId: string): PoolRuntime | undefined;
  listener(listenerId: string): Listener | undefined;
  stopAccepting(): Promise<void>;
  destroyAll(): void;
  close(): void | Promise<void>;
  /** Bring counters up to date before a read (workers report on their own only now and then). */
  refresh?(): Promise<void>;
  workers?(): WorkerView[];
  /** Workers started again after one died (lb4_worker_restarts_total). */
  readonly restarts?: number;
  /** Snapshots sent to workers: how many, and the time until every worker ran one (sum, slowest). */
  readonly fanout?: { count: number; sumMs: number; maxMs: number };
}

export class DataPlane implements DataPlanePort {
  readonly lbs = new Map<string, LbRuntime>();
  private current: Snapshot = EMPTY_SNAPSHOT;
  /** Listeners removed by a snapshot whose connections are still open: swept until they end. */
  private readonly retired = new Set<Listener>();
  private readonly refusalLog: RateLimitedLog;
  private readonly accessLog: AccessLog;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly tuning: DataPlaneOptions["tuning"];
  readonly role: DataPlaneRole;
  private readonly shared: SharedAdmission | undefined;
  /** Every running pool by id, rebuilt when a snapshot is applied. */
  private readonly poolsById = new Map<string, PoolRuntime>();
  private ticker: unknown;
  private closed = false;

  constructor(opts: DataPlaneOptions) {
    this.logger = opts.logger;
    this.clock = opts.clock;
    this.timers = opts.timers;
    this.tuning = opts.tuning;
    this.role = opts.role ?? "single";
    this.shared = opts.shared;
    this.refusalLog = new RateLimitedLog(this.logger, () => this.clock.now());
    this.accessLog = new AccessLog(this.logger, () => this.clock.now());
    this.armTick();
  }

  /** The snapshot running now. */
  get snapshot(): Snapshot {
    return this.current;
  }

  /**
   * Run `next`. New listeners are bound first; if one cannot be bound, those just bound are
   * closed and nothing else changes (LB4.LISTEN_FAILED). From the commit on nothing fails.
   */
  async apply(next: Snapshot): Promise<Plan> {
    if (this.closed) throw new Lb4Error("LB4.CLOSED", "the load balancer is closed");
    const p = plan(this.current, next);
    const now = this.clock.now();

    // Pools that new listeners point at must exist before they bind; build them aside.
    const newPools = new Map<string, PoolRuntime>();
    const poolFor = (lbId: string, id: string): PoolRuntime | undefined => this.lbs.get(lbId)?.pools.get(id) ?? newPools.get(id);
    for (const { lbId, pool } of p.pools.add) newPools.set(pool.settings.id, new PoolRuntime(lbId, { ...pool.settings, members: [] }, () => this.clock.now(), { persistence: this.role !== "worker" }));

    const bound: Array<{ lbId: string; listener: Listener }> = [];
    // In a worker, TCP only: the primary serves UDP.
    const binds = this.role === "worker" ? p.bind.filter((b) => b.listener.protocol !== "UDP") : p.bind;
    try {
      for (const step of binds) {
        const pool = poolFor(step.lbId, step.listener.default_pool_id)!;
        const l = this.createListener(step.lbId, step.vip, step.listener, pool);
        await l.listen();
        bound.push({ lbId: step.lbId, listener: l });
      }
    } catch (err) {
      await Promise.all(bound.map((b) => b.listener.stopAccepting()));
      const e = err as NodeJS.ErrnoException;
      const failed = binds[bound.length]!;
      throw new Lb4Error(
        "LB4.LISTEN_FAILED",
        `cannot listen on ${failed.listener.protocol} ${memberKey(failed.vip, failed.listener.protocol_port)} for listener "${failed.listener.id}" (${e.code ?? e.message}); ` +
          "free the port or pick another protocol_port" + (this.current === EMPTY_SNAPSHOT ? "" : "; the running configuration is unchanged"),
      );
    }

    // Commit.
    for (const id of p.retire) {
      for (const lb of this.lbs.values()) {
        const l = lb.listeners.get(id);
        if (l && !bound.some((b) => b.listener === l)) {
          this.retire(l);
          lb.listeners.delete(id);
        }
      }
    }
    for (const { lbId, poolId } of p.pools.remove) {
      const pools = this.lbs.get(lbId)?.pools;
      const pool = pools?.get(poolId);
      if (!pool) continue;
      for (const id of [...pool.members.keys()]) pool.remove(id, now);
      pools!.delete(poolId);
    }
    for (const id of p.lbs.remove) {
      const lb = this.lbs.get(id);
      if (!lb) continue;
      for (const l of lb.listeners.values()) this.retire(l);
      this.lbs.delete(id);
    }
    for (const spec of p.lbs.upsert) {
      const usable = [...spec.snat];
      const lb = this.lbs.get(spec.id);
      if (!lb) this.lbs.set(spec.id, { spec, pools: new Map(), listeners: new Map(), snat: { usable, next: 0 } });
      else if (usable.join() !== lb.snat.usable.join()) lb.snat = { usable, next: 0 };
    }
    for (const spec of next.lbs) this.lbs.get(spec.id)!.spec = spec;
    for (const { lbId, pool } of p.pools.add) {
      const rt = newPools.get(pool.settings.id)!;
      this.lbs.get(lbId)!.pools.set(rt.id, rt);
      this.reconcile(rt, pool, now);
    }
    for (const { lbId, pool } of p.pools.update) {
      const rt = this.lbs.get(lbId)!.pools.get(pool.settings.id)!;
      this.reconcile(rt, pool, now);
    }
    for (const { lbId, listener } of bound) this.lbs.get(lbId)!.listeners.set(listener.config.id, listener);
    for (const step of [...p.update, ...p.bind]) this.configure(this.lbs.get(step.lbId)!, step.listener);
    // A pool replaced under a kept listener (a pool moved, or default_pool_id pointed elsewhere).
    for (const lb of this.lbs.values()) for (const l of lb.listeners.values()) l.pool = lb.pools.get(l.config.default_pool_id) ?? l.pool;
    this.poolsById.clear();
    for (const lb of this.lbs.values()) for (const [id, pool] of lb.pools) this.poolsById.set(id, pool);
    this.current = next;
    return p;
  }

  /** Settings of a running listener, swapped in place (new connections see them). */
  private configure(lb: LbRuntime, cfg: ListenerConfig): void {
    const l = lb.listeners.get(cfg.id);
    if (!l) return;
    l.config = cfg;
    l.pool = lb.pools.get(cfg.default_pool_id)!;
    l.acl = compileAccessList(cfg.ipgroup);
    l.accessLog = this.logger.isLevelEnabled("info");
  }

  /** Make a pool's runtime match its spec; members whose spec object is unchanged are not touched. */
  private reconcile(pool: PoolRuntime, spec: PoolSpec, now: number): void {
    pool.setConfig({ ...spec.settings, members: [] });
    const wanted = new Map<string, MemberSpec>();
    for (const m of spec.members) wanted.set(m.config.id, m);
    for (const [id, m] of pool.members) {
      const w = wanted.get(id);
      if (!w || w.config.address !== m.config.address || w.config.protocol_port !== m.config.protocol_port) pool.remove(id, now);
    }
    for (const ms of spec.members) {
      let m = pool.members.get(ms.config.id);
      if (m && m.spec === ms) continue;
      if (!m) {
        m = new MemberRuntime(ms.config, ms.status !== "NO_MONITOR");
        pool.members.set(ms.config.id, m);
      }
      m.spec = ms;
      m.config = ms.config;
      m.status = ms.status;
      m.crossVpc = ms.crossVpc;
      m.ramp = rampOf(ms, m.ramp);
    }
    pool.refresh(now);
  }

  private createListener(lbId: string, vip: string, cfg: ListenerConfig, pool: PoolRuntime): Listener {
    const shared = { lbId, vip, logger: this.logger, refusalLog: this.refusalLog, clock: () => this.clock.now() };
    const acl = compileAccessList(cfg.ipgroup);
    if (cfg.protocol === "TCP" && this.role === "primary") return new MirrorListener(cfg, pool, acl);
    if (cfg.protocol === "UDP") {
      const l: UdpListener = new UdpListener(cfg, pool, acl, {
        ...shared,
        accessLog: this.accessLog,
        onFlowEnd: (client, member) => l.pool.touch(client.ip, member),
        headerFor: (client, member) =>
          headerMode(l.pool, member) === "proxy_v2"
            ? encodeHeader("proxy_v2", { source: { address: client.ip, port: client.port }, destination: { address: vip, port: l.config.protocol_port }, transport: "UDP" })
            : undefined,
      });
      return l;
    }
    const deps: TcpListenerDeps = {
      ...shared,
      accessLog: this.accessLog,
      tuning: this.tuning,
      onSessionEnd: this.shared ? onSharedTcpSessionEnd : onTcpSessionEnd,
      ...(this.shared ? { shared: this.shared } : {}),
      ...(this.role === "worker" ? { exclusive: false } : {}),
      headerFor: tcpHeaderFor,
      localAddressFor: (member) => {
        if (!member.crossVpc) return undefined;
        const snat = this.lbs.get(lbId)?.snat;
        if (!snat || snat.usable.length === 0) return undefined;
        return snat.usable[snat.next++ % snat.usable.length];
      },
    };
    return dataplanePath() === "handles" ? new HandleTcpListener(cfg, pool, acl, deps) : new TcpListener(cfg, pool, acl, deps);
  }

  /** Stop a listener taking new connections; its open ones keep being swept until they end. */
  private retire(l: Listener): void {
    void l.stopAccepting();
    if (l.stats.active > 0) this.retired.add(l);
  }

  /** Pool ids are unique across load balancers (the config gate): one lookup, also per connection in the primary. */
  pool(poolId: string): PoolRuntime | undefined {
    return this.poolsById.get(poolId);
  }

  listener(listenerId: string): Listener | undefined {
    for (const lb of this.lbs.values()) {
      const l = lb.listeners.get(listenerId);
      if (l) return l;
    }
    return undefined;
  }

  /** Running listeners, then retired ones (removed by a snapshot, connections still open). */
  allListeners(): Listener[] {
    const out: Listener[] = [];
    for (const lb of this.lbs.values()) for (const l of lb.listeners.values()) out.push(l);
    for (const l of this.retired) out.push(l);
    return out;
  }

  /** Open connections/flows across all listeners, retired ones included. */
  get activeConnections(): number {
    let n = 0;
    for (const l of this.allListeners()) n += l.stats.active;
    return n;
  }

  /** The sweep: idle, connect and drain deadlines, slow-start refresh, persistence expiry. */
  tick(now = this.clock.now()): void {
    for (const lb of this.lbs.values()) {
      for (const p of lb.pools.values()) {
        if (p.ramping) p.refresh(now);
        p.forgetIdleLeavers();
        p.persistence?.expire(now);
      }
      for (const l of lb.listeners.values()) l.sweep(now);
    }
    for (const l of this.retired) {
      l.sweep(now);
      if (l.stats.active === 0) this.retired.delete(l);
    }
  }

  private armTick(): void {
    this.ticker = this.timers.set(() => {
      this.ticker = undefined;
      if (this.closed) return;
      this.tick();
      this.armTick();
    }, this.tuning.tickMs);
  }

  /** Stop accepting everywhere; open connections continue. */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.allListeners().map((l) => l.stopAccepting()));
  }

  /** Close every open connection now (logged `end: "shutdown"`). */
  destroyAll(): void {
    for (const l of this.allListeners()) l.destroyAll();
  }

  /** Stop the sweep and release the access log; call after the connections are gone. */
  close(): void {
    this.closed = true;
    if (this.ticker !== undefined) this.timers.clear(this.ticker);
    this.ticker = undefined;
    this.accessLog.close();
  }
}

/** A member's ramp from its spec; a running ramp object is kept while its spec is the same. */
function rampOf(ms: MemberSpec, had: Ramp | undefined): Ramp | undefined {
  const r = ms.ramp;
  if (!r) return undefined;
  const startedAt = r.startedAt ?? undefined;
  if (had && had.durationMs === r.durationMs && had.startedAt === startedAt) return had;
  return startedAt === undefined ? { durationMs: r.durationMs, ended: false } : { durationMs: r.durationMs, startedAt, ended: false };
}

// Shared by every TCP listener (`sess.listener` finds the rest): no closures per listener.
// The client's persistence entry idles from the end of its connection: in this process's
// table, or in a worker, in the primary's.
function onTcpSessionEnd(sess: TcpConn): void {
  if (sess.member) sess.listener.pool.touch(sess.ip, sess.member);
}
function onSharedTcpSessionEnd(sess: TcpConn): void {
  const pool = sess.listener.pool;
  if (sess.member && pool.config.session_persistence) sess.listener.deps.shared!.touch(pool.id, sess.ip, sess.member.id);
}

function tcpHeaderFor(sess: TcpConn, member: MemberRuntime): Buffer | undefined {
  const mode = headerMode(sess.listener.pool, member);
  if (!mode) return undefined;
  return encodeHeader(mode, {
    source: { address: sess.ip, port: sess.port },
    destination: { address: sess.localAddress ?? sess.listener.deps.vip, port: sess.localPort ?? sess.listener.config.protocol_port },
    transport: "TCP",
  });
}
