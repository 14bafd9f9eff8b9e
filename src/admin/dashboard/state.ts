/**
 * What the dashboard reads (SPEC §12): the whole picture once (`GET /v3/elb/dashboard`), then
 * small `counters` events on the event stream. Built from the admin API's own views
 * (views.ts), plus what only the dashboard shows: the last health check's result and reason,
 * slow-start progress, bytes, the charts' recent rates, and with `cluster` the instances. The
 * views are pure; `engineFacts`, `engineCluster` and `trafficReading` are the only places that
 * read the engine.
 */
import type { Config, LoadBalancerConfig, PoolConfig } from "../../config/schema.js";
import type { Engine } from "../../engine.js";
import type { RatePoint, TrafficHistory, TrafficReading } from "../history.js";
import { healthMonitorView, listenerView, loadBalancerView, memberView, poolView, type MemberView, type RuntimeView } from "../views.js";

/** The result of a member's last health check. */
export interface LastCheck {
  result: "PASS" | "FAIL";
  /** The prober's words: "connected", "connect ECONNREFUSED", "HTTP 503 not in 200-299"… */
  reason: string;
  /** Wall-clock time of the result, ms since the epoch. */
  checked_at: number;
}

/** A slow-start ramp in progress; `progress` null while it waits for the member's first ONLINE. */
export interface SlowStartProgress {
  progress: number | null;
  remaining_s: number | null;
  duration_s: number;
}

/** This instance's side of the cluster (SPEC §11), as `Engine.clusterStatus()` gives it. */
export type ClusterStatus = NonNullable<ReturnType<Engine["clusterStatus"]>>;

/** The live facts the dashboard needs beyond the API's runtime view. */
export interface DashboardFacts extends RuntimeView {
  /** With `cluster`: whether etcd answers and the revision this instance runs; undefined standalone. */
  cluster?(): ClusterStatus | undefined;
  /** Bytes forwarded through a listener so far, open connections included. */
  bytes(listenerId: string): { bytes_in: number; bytes_out: number } | undefined;
  lastCheck(poolId: string, memberId: string): LastCheck | undefined;
  slowStart(poolId: string, memberId: string): SlowStartProgress | undefined;
}

export interface DashboardMember extends MemberView {
  total_connections: number | null;
  /** Share of the pool's new connections over the chart window; null when the pool took none. */
  share: number | null;
  last_check: LastCheck | null;
  slow_start: SlowStartProgress | null;
}

export type DashboardListener = ReturnType<typeof listenerView> & {
  bytes_in: number | null;
  bytes_out: number | null;
  /** New connections/s and bytes/s, oldest first. */
  history: readonly RatePoint[];
};

export type DashboardPool = Omit<ReturnType<typeof poolView>, "members"> & {
  healthmonitor: ReturnType<typeof healthMonitorView> | null;
  members: DashboardMember[];
};

export type DashboardLoadBalancer = Omit<ReturnType<typeof loadBalancerView>, "listeners" | "pools"> & {
  listeners: DashboardListener[];
  pools: DashboardPool[];
};

/** A cluster member instance (SPEC §11), as `GET /v3/elb/instances` lists it. */
export interface InstanceInfo {
  instance_id: string;
  advertise: string;
  version: string;
  revision: number | string;
  [k: string]: unknown;
}

/** An instance of the cluster, as its record in etcd says. */
export interface DashboardInstance {
  instance_id: string;
  /** How it is reached (its admin API), "" when it did not say. */
  advertise: string;
  version: string;
  /** The store revision its running tables came from. */
  revision: number;
  started_at: string;
  /** The instance serving this page. */
  self: boolean;
}

/** With `cluster` (SPEC §11): the store, the revision this instance runs, the live instances. */
export interface DashboardCluster extends ClusterStatus {
  /** By instance id; empty when the store does not answer (`store` then says "unreachable"). */
  instances: DashboardInstance[];
}

export interface DashboardState {
  /** Wall-clock ms. */
  time: number;
  /** The event stream's last seq: resume from here (`?since=`) and nothing is missed. */
  last_event_seq: number;
  /** How the charts are sampled: one point every interval_s, `samples` points at most. */
  history: { interval_s: number; samples: number };
  /** Live instances with `cluster`; null when standalone. Superseded by `cluster.instances`. */
  instances: InstanceInfo[] | null;
  /** With `cluster` only: absent when standalone. */
  cluster?: DashboardCluster;
  loadbalancers: DashboardLoadBalancer[];
}

/** Member facts that change every second, for the `counters` event. */
export interface MemberCounters {
  active: number | null;
  total: number | null;
  effective_weight: number | null;
  operating_status: MemberView["operating_status"];
  health: MemberView["health"];
  share: number | null;
  slow_start: SlowStartProgress | null;
  last_check: LastCheck | null;
}

export interface ListenerCounters {
  active: number | null;
  total: number | null;
  bytes_in: number | null;
  bytes_out: number | null;
  /** Over the last counters interval. */
  conn_rate: number | null;
  bytes_rate: number | null;
  /** The chart's newest point (a new one every history interval). */
  point: RatePoint | null;
}

export interface CountersEvent {
  time: number;
  /** With `cluster`: the store's state and this instance's revision (the list comes with the state). */
  cluster?: Pick<ClusterStatus, "store" | "revision">;
  listeners: Record<string, ListenerCounters>;
  /** By pool id, then member id. */
  members: Record<string, Record<string, MemberCounters>>;
}

function memberTotals(pool: PoolConfig, facts: RuntimeView): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of pool.members) out.set(m.id, facts.member(pool.id, m.id)?.total ?? 0);
  return out;
}

function dashboardMembers(config: Config, lb: LoadBalancerConfig, pool: PoolConfig, facts: DashboardFacts, history: TrafficHistory): DashboardMember[] {
  const shares = history.shares(pool.id, memberTotals(pool, facts));
  // Object.assign onto the fresh view, not a spread: this runs for every member every second.
  return pool.members.map((m) =>
    Object.assign(memberView(config, lb, pool, m, facts), {
      total_connections: facts.member(pool.id, m.id)?.total ?? null,
      share: shares.get(m.id) ?? null,
      last_check: facts.lastCheck(pool.id, m.id) ?? null,
      slow_start: facts.slowStart(pool.id, m.id) ?? null,
    }),
  );
}

export function dashboardView(
  config: Config,
  facts: DashboardFacts,
  history: TrafficHistory,
  opts: { time: number; lastEventSeq: number; intervalMs: number; instances?: InstanceInfo[] | null },
): DashboardState {
  return {
    time: opts.time,
    last_event_seq: opts.lastEventSeq,
    history: { interval_s: opts.intervalMs / 1000, samples: history.capacity },
    instances: opts.instances ?? null,
    loadbalancers: config.loadbalancers.map((lb) => {
      const { listeners: _l, pools: _p, ...rest } = loadBalancerView(config, lb);
      return {
        ...rest,
        listeners: lb.listeners.map((l) => {
          const b = facts.bytes(l.id);
          return { ...listenerView(lb, l, facts), bytes_in: b?.bytes_in ?? null, bytes_out: b?.bytes_out ?? null, history: history.points(l.id) };
        }),
        pools: lb.pools.map((p) => {
          const { members: _m, ...pv } = poolView(lb, p);
          return { ...pv, healthmonitor: p.healthmonitor ? healthMonitorView(p, p.healthmonitor) : null, members: dashboardMembers(config, lb, p, facts, history) };
        }),
      };
    }),
  };
}

/**
 * The `counters` event: `rates` holds one point per listener over the last counters interval,
 * `history` the charts' samples.
 */
export function countersView(config: Config, facts: DashboardFacts, history: TrafficHistory, rates: TrafficHistory, time: number): CountersEvent {
  const listeners: CountersEvent["listeners"] = {};
  const members: CountersEvent["members"] = {};
  for (const lb of config.loadbalancers) {
    for (const l of lb.listeners) {
      const rt = facts.listener(l.id);
      const b = facts.bytes(l.id);
      const r = rates.latest(l.id);
      listeners[l.id] = {
        active: rt?.active ?? null,
        total: rt?.total ?? null,
        bytes_in: b?.bytes_in ?? null,
        bytes_out: b?.bytes_out ?? null,
        conn_rate: r?.conn_rate ?? null,
        bytes_rate: r?.bytes_rate ?? null,
        point: history.latest(l.id) ?? null,
      };
    }
    for (const p of lb.pools) {
      const byId: Record<string, MemberCounters> = {};
      for (const m of dashboardMembers(config, lb, p, facts, history)) {
        byId[m.id] = {
          active: m.active_connections,
          total: m.total_connections,
          effective_weight: m.effective_weight,
          operating_status: m.operating_status,
          health: m.health,
          share: m.share,
          slow_start: m.slow_start,
          last_check: m.last_check,
        };
      }
      members[p.id] = byId;
    }
  }
  const c = facts.cluster?.();
  return c ? { time, cluster: { store: c.store, revision: c.revision }, listeners, members } : { time, listeners, members };
}

/**
 * The cluster part of the state. `list` undefined: the store did not answer the list, which
 * the page shows as unreachable whatever the watch said last.
 */
export function clusterView(status: ClusterStatus, list: readonly InstanceRecordLike[] | undefined): DashboardCluster {
  const instances = (list ?? []).map((i) => ({
    instance_id: String(i.instance_id),
    advertise: typeof i.advertise === "string" ? i.advertise : "",
    version: typeof i.version === "string" ? i.version : "",
    revision: Number(i.revision) || 0,
    started_at: typeof i.started_at === "string" ? i.started_at : "",
    self: i.instance_id === status.instance_id,
  }));
  instances.sort((a, b) => a.instance_id.localeCompare(b.instance_id));
  return { ...status, store: list ? status.store : "unreachable", instances };
}

/** A record as etcd holds it: written by any instance (any version), so read defensively. */
type InstanceRecordLike = { instance_id: string; advertise?: unknown; version?: unknown; revision?: unknown; started_at?: unknown };

// ---------------------------------------------------------------- reading the engine

/** The engine's live facts for the dashboard views, over the API's runtime view of it (routes.ts engineRuntime). */
export function engineFacts(engine: Engine, rt: RuntimeView): DashboardFacts {
  // The health checker and ramps run on the engine's monotonic clock; the page wants wall time.
  const toWall = (t: number) => Date.now() - (engine.clock.now() - t);
  return {
    member: rt.member,
    listener: rt.listener,
    cluster: () => engine.clusterStatus(),
    bytes(listenerId) {
      const l = engine.listener(listenerId);
      if (!l) return undefined;
      const t = l.traffic();
      return { bytes_in: t.bytesIn, bytes_out: t.bytesOut };
    },
    lastCheck(poolId, memberId) {
      const s = engine.health.status(`${poolId}/${memberId}`);
      if (!s || s.lastResult === null || s.checkedAt === null) return undefined;
      return { result: s.lastResult ? "PASS" : "FAIL", reason: s.lastDetail ?? "", checked_at: Math.round(toWall(s.checkedAt)) };
    },
    slowStart(poolId, memberId) {
      const ramp = engine.pool(poolId)?.members.get(memberId)?.ramp;
      if (!ramp || ramp.ended) return undefined;
      const duration_s = ramp.durationMs / 1000;
      if (ramp.startedAt === undefined) return { progress: null, remaining_s: null, duration_s };
      const elapsed = engine.clock.now() - ramp.startedAt;
      if (elapsed >= ramp.durationMs) return undefined;
      return { progress: Math.round((elapsed / ramp.durationMs) * 1000) / 1000, remaining_s: Math.ceil((ramp.durationMs - elapsed) / 1000), duration_s };
    },
  };
}

/** The page reads the state on every control event: a store that hangs must not hold it longer than this. */
export const CLUSTER_LIST_WAIT_MS = 1000;

/** The cluster part of the dashboard state; undefined standalone. The list is not read while the store is known down. */
export async function engineCluster(engine: Pick<Engine, "clusterStatus" | "instances">, waitMs = CLUSTER_LIST_WAIT_MS): Promise<DashboardCluster | undefined> {
  const status = engine.clusterStatus();
  if (!status) return undefined;
  if (status.store !== "ok") return clusterView(status, undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // race() handles a late rejection of the list too: nothing is left unhandled.
    const list = await Promise.race([engine.instances(), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), waitMs)))]);
    return clusterView(status, list);
  } catch {
    return clusterView(status, undefined);
  } finally {
    clearTimeout(timer);
  }
}

/** Listener and member counters, as the charts' sampler reads them. */
export function trafficReading(engine: Engine): TrafficReading {
  const listeners = new Map<string, { total: number; bytes: number }>();
  const members = new Map<string, Map<string, number>>();
  for (const lb of engine.lbs.values()) {
    for (const [id, l] of lb.listeners) {
      const t = l.traffic();
      listeners.set(id, { total: l.stats.total, bytes: t.bytesIn + t.bytesOut });
    }
    for (const [id, p] of lb.pools) {
      const m = new Map<string, number>();
      for (const [mid, mr] of p.members) m.set(mid, mr.total);
      members.set(id, m);
    }
  }
  return { listeners, members };
}
