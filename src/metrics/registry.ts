/**
 * Prometheus metrics (SPEC §9) with prom-client. Nothing here runs on the connection path:
 * the data plane bumps plain counters (dataplane/stats.ts) and every metric is filled from
 * them in `collect()` at scrape time. Health-check results and reloads are counted from
 * engine hooks, which fire a few times a second at most.
 */
import client from "prom-client";
import { pinoStream } from "../platform/node-internals.js";
import { dataplanePath } from "../platform/dataplane-path.js";
import { LineBatcher } from "../log.js";
import type { Engine } from "../engine.js";
import type { ListenerStats } from "../dataplane/stats.js";
import type { Listener } from "../dataplane/listener.js";
import { sharedFdBudget } from "../dataplane/fd-budget.js";

export interface Metrics {
  registry: client.Registry;
  /** Prometheus text exposition. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

type ListenerRow = { labels: { lb: string; listener: string; protocol: string }; stats: ListenerStats; listener: Listener };

export function createMetrics(engine: Engine, opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new client.Registry();
  // prom-client's names already start with process_ / nodejs_: lb4_process_cpu_…, lb4_nodejs_….
  if (opts.processMetrics ?? true) client.collectDefaultMetrics({ register: registry, prefix: "lb4_" });

  const listeners = (): ListenerRow[] => {
    const rows: ListenerRow[] = [];
    for (const lb of engine.lbs.values()) {
      for (const l of lb.listeners.values()) rows.push({ labels: { lb: lb.spec.id, listener: l.config.id, protocol: l.config.protocol }, stats: l.stats, listener: l });
    }
    return rows;
  };
  const members = () => {
    const rows = [];
    for (const lb of engine.lbs.values()) {
      for (const p of lb.pools.values()) {
        for (const m of p.members.values()) rows.push({ labels: { lb: lb.spec.id, pool: p.id, member: m.id, address: m.key }, m });
      }
    }
    return rows;
  };

  /** A counter whose value is read from the engine's plain counters at scrape time. */
  const listenerCounter = (name: string, help: string, read: (s: ListenerStats, l: Listener) => Array<[Record<string, string>, number]>) =>
    new client.Counter({
      name,
      help,
      labelNames: ["lb", "listener", "protocol", "direction", "reason"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, stats, listener } of listeners()) for (const [extra, v] of read(stats, listener)) if (v > 0) this.inc({ ...labels, ...extra }, v);
      },
    });

  listenerCounter("lb4_connections_total", "TCP connections and UDP flows handed to a member, counted when handed over", (s) => [[{}, s.total]]);
  listenerCounter("lb4_bytes_total", "Bytes forwarded (in = client to member, out = member to client), open connections/flows included", (_s, l) => {
    const t = l.traffic();
    return [
      [{ direction: "in" }, t.bytesIn],
      [{ direction: "out" }, t.bytesOut],
    ];
  });
  listenerCounter("lb4_datagrams_total", "UDP datagrams forwarded, open flows included", (_s, l) => {
    const t = l.traffic();
    return [
      [{ direction: "in" }, t.datagramsIn],
      [{ direction: "out" }, t.datagramsOut],
    ];
  });
  listenerCounter("lb4_connect_errors_total", "Member connect failures (refused or timed out)", (s) => [[{}, s.connectErrors]]);
  listenerCounter("lb4_retries_total", "Connect retries on another member", (s) => [[{}, s.retries]]);
  listenerCounter("lb4_refused_total", "Clients refused, by reason (acl, limit, no_member, fd_limit)", (s) => [
    [{ reason: "acl" }, s.refusedAcl],
    [{ reason: "limit" }, s.refusedLimit],
    [{ reason: "no_member" }, s.refusedNoMember],
    [{ reason: "fd_limit" }, s.refusedFdLimit],
  ]);
  listenerCounter("lb4_closed_total", "Connections/flows closed by lb4, by reason (idle_timeout, drained)", (s) => [
    [{ reason: "idle_timeout" }, s.idleClosed],
    [{ reason: "drained" }, s.drainClosed],
  ]);

  new client.Gauge({
    name: "lb4_connections_active",
    help: "Open TCP connections (TCP listeners) or UDP sessions (UDP listeners)",
    labelNames: ["lb", "listener", "protocol"],
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, stats } of listeners()) this.set(labels, stats.active);
    },
  });
  new client.Gauge({
    name: "lb4_udp_sessions",
    help: "Open UDP flows (sessions)",
    labelNames: ["lb", "listener"],
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, stats } of listeners()) if (labels.protocol === "UDP") this.set({ lb: labels.lb, listener: labels.listener }, stats.active);
    },
  });

  const fds = sharedFdBudget();
  new client.Gauge({
    name: "lb4_dataplane_fds",
    help: "File descriptors held by connections and flows (used), and the most they may hold (max: the open-file limit minus a reserve; absent when unknown)",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ kind: "used" }, fds.used);
      if (Number.isFinite(fds.max)) this.set({ kind: "max" }, fds.max);
    },
  });

  const memberGauge = (name: string, help: string, read: (m: ReturnType<typeof members>[number]["m"]) => number) =>
    new client.Gauge({
      name,
      help,
      labelNames: ["lb", "pool", "member", "address"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, m } of members()) this.set(labels, read(m));
      },
    });
  memberGauge("lb4_member_up", "1 when the member is ONLINE or has no monitor, 0 when OFFLINE", (m) => (m.status === "OFFLINE" ? 0 : 1));
  memberGauge("lb4_member_weight", "Configured weight", (m) => m.config.weight);
  memberGauge("lb4_member_effective_weight", "Effective weight (after health, slow start, drain, admin state)", (m) => m.effectiveWeight);
  memberGauge("lb4_member_active_connections", "Open connections/flows to the member", (m) => m.active);
  memberGauge("lb4_member_connections_started", "Connections/flows ever opened to the member (resets when the member is re-created)", (m) => m.total);

  const checks = new client.Counter({
    name: "lb4_health_checks_total",
    help: "Health-check results",
    labelNames: ["lb", "pool", "member", "result"],
    registers: [registry],
  });
  engine.healthResultHooks.push((pool, member, r) => checks.inc({ lb: pool.lbId, pool: pool.id, member: member.id, result: r.ok ? "pass" : "fail" }));

  new client.Counter({
    name: "lb4_reloads_total",
    help: "Configuration reloads, by result",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: "ok" }, engine.reloads.ok);
      this.inc({ result: "failed" }, engine.reloads.failed);
    },
  });
  new client.Counter({
    name: "lb4_log_lines_dropped_total",
    help: "Log lines dropped because stdout did not keep up (more than 8 MiB waiting)",
    registers: [registry],
    collect() {
      this.reset();
      const dest = pinoStream(engine.logger);
      if (dest instanceof LineBatcher) this.inc(dest.dropped);
    },
  });

  new client.Counter({
    name: "lb4_worker_restarts_total",
    help: "Worker processes started again after one exited (SPEC §10); 0 when lb4 runs as one process",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(engine.dataPlane.restarts ?? 0);
    },
  });
  new client.Gauge({
    name: "lb4_worker_connections_active",
    help: "Open TCP connections per worker process, as last reported",
    labelNames: ["worker", "pid"],
    registers: [registry],
    collect() {
      this.reset();
      for (const w of engine.workers()) this.set({ worker: String(w.index), pid: String(w.pid) }, w.connections);
    },
  });
  new client.Counter({
    name: "lb4_worker_snapshots_total",
    help: "Snapshots (changes) sent to the workers",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(engine.dataPlane.fanout?.count ?? 0);
    },
  });
  new client.Counter({
    name: "lb4_worker_snapshot_seconds_total",
    help: "Time from sending a snapshot until every worker ran it, summed (divide by lb4_worker_snapshots_total for the mean)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc((engine.dataPlane.fanout?.sumMs ?? 0) / 1000);
    },
  });
  new client.Gauge({
    name: "lb4_worker_snapshot_seconds_max",
    help: "The slowest time from sending a snapshot until every worker ran it, since start",
    registers: [registry],
    collect() {
      this.reset();
      this.set((engine.dataPlane.fanout?.maxMs ?? 0) / 1000);
    },
  });
  new client.Gauge({
    name: "lb4_workers",
    help: "Worker processes serving TCP, ready ones (0 when lb4 runs as one process)",
    registers: [registry],
    collect() {
      this.reset();
      this.set(engine.workers().filter((w) => w.ready).length);
    },
  });

  // SPEC §11, only with a cluster: block.
  if (engine.clusterStatus()) {
    new client.Gauge({
      name: "lb4_store_up",
      help: "1 while etcd answers (the watch is established), 0 while this instance serves what it last applied",
      registers: [registry],
      collect() {
        this.reset();
        this.set(engine.clusterStatus()?.store === "ok" ? 1 : 0);
      },
    });
    new client.Gauge({
      name: "lb4_store_revision",
      help: "The etcd revision this instance's running configuration was built from",
      registers: [registry],
      collect() {
        this.reset();
        this.set(engine.clusterStatus()?.revision ?? 0);
      },
    });
  }

  new client.Gauge({
    name: "lb4_dataplane_info",
    help: "The TCP data plane new listeners run on (handles: libuv stream handles; net: net.Socket), 1 for the one in use",
    labelNames: ["path"],
    registers: [registry],
    collect() {
      this.reset();
      // With workers, the paths they run (they probe on their own); else this process's.
      const paths = new Set(engine.workers().filter((w) => w.ready).map((w) => w.dataplanePath ?? "net"));
      if (paths.size === 0) paths.add(dataplanePath());
      for (const path of paths) this.set({ path }, 1);
    },
  });

  return {
    registry,
    scrape: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
