/**
 * `lb4 status` and `lb4 reload`: a readable picture of a running lb4 (load balancers,
 * listeners, pools, members with health and weights; cross-VPC CIDRs and source
 * addresses), and a config reload, both through the admin API.
 */
import type { Command } from "commander";
import type { LoadBalancerView, MemberView } from "../admin/views.js";
import { seg, type AdminClient } from "./admin-client.js";
import { adminOptions, clientFor, printJson, table, type AdminOptions } from "./format.js";
import { hostPort, membersTable } from "./members.js";
import type { ReloadChanges } from "../control/changes.js";
import type { CountersEvent } from "../admin/dashboard/state.js";
import { SseParser, type SseMessage } from "../admin/sse.js";

interface ListenerJson {
  id: string;
  protocol: string;
  protocol_port: number;
  vip_address: string;
  default_pool_id: string;
  loadbalancer_id: string;
  active_connections: number | null;
  total_connections: number | null;
}

interface PoolJson {
  id: string;
  protocol: string;
  lb_algorithm: string;
  loadbalancer_id: string;
  listeners: Array<{ id: string }>;
  healthmonitor_id: string | null;
  connection_drain: { enable: boolean; timeout: number };
  slow_start: { enable: boolean; duration: number };
}

type PoolStatus = Omit<PoolJson, "members"> & { members: MemberView[] };
type LoadBalancerStatus = Omit<LoadBalancerView, "listeners" | "pools"> & { listeners: ListenerJson[]; pools: PoolStatus[] };

/** The load balancers with their listeners, pools and members as full objects (`lb4 status --json`). */
export interface StatusSnapshot {
  /** The TCP data plane lb4 runs (`handles` or `net`, from /healthz); absent from an lb4 that does not say. */
  dataplane?: string;
  /** Worker processes (SPEC §10); absent when lb4 runs as one process or does not say. */
  workers?: WorkersJson;
  /** The etcd store and the live instances (SPEC §11); absent when standalone. */
  cluster?: { store: string; revision: number; instances: InstanceJson[] };
  loadbalancers: LoadBalancerStatus[];
}

interface InstanceJson {
  instance_id: string;
  advertise: string;
  version: string;
  revision: number;
  self?: boolean;
}

interface WorkersJson {
  workers: Array<{ index: number; pid: number; ready: boolean; active_connections: number; uptime_s: number; dataplane?: string }>;
  restarts: number;
}

export async function fetchStatus(client: AdminClient): Promise<StatusSnapshot> {
  const [lbs, listeners, pools, health, workers] = await Promise.all([
    client.get<{ loadbalancers: LoadBalancerView[] }>("/v3/elb/loadbalancers"),
    client.get<{ listeners: ListenerJson[] }>("/v3/elb/listeners"),
    client.get<{ pools: PoolJson[] }>("/v3/elb/pools"),
    client.get<{ dataplane?: unknown; store?: unknown; revision?: unknown }>("/healthz"),
    // An lb4 from before workers has no such path.
    client.get<WorkersJson>("/v3/elb/workers").catch(() => undefined),
  ]);
  // Standalone (404), or etcd down (503): no list, the store state says why.
  const instances = typeof health?.store === "string" ? await client.get<{ instances: InstanceJson[] }>("/v3/elb/instances").catch(() => undefined) : undefined;
  const members = await Promise.all(pools.pools.map((p) => client.get<{ members: MemberView[] }>(`/v3/elb/pools/${seg(p.id)}/members`)));
  const poolsWithMembers: PoolStatus[] = pools.pools.map((p, i) => ({ ...p, members: members[i]!.members }));
  return {
    ...(typeof health?.dataplane === "string" ? { dataplane: health.dataplane } : {}),
    ...(workers && workers.workers.length > 0 ? { workers } : {}),
    ...(typeof health?.store === "string" ? { cluster: { store: health.store, revision: Number(health.revision ?? 0), instances: instances?.instances ?? [] } } : {}),
    loadbalancers: lbs.loadbalancers.map((lb) => ({
      ...lb,
      listeners: listeners.listeners.filter((l) => l.loadbalancer_id === lb.id),
      pools: poolsWithMembers.filter((p) => p.loadbalancer_id === lb.id),
    })),
  };
}

function renderCluster(c: NonNullable<StatusSnapshot["cluster"]>): string {
  const rows = c.instances.map((i) => [`${i.instance_id}${i.self ? " (this one)" : ""}`, i.advertise || "-", i.version, i.revision]);
  const list = rows.length ? table(["INSTANCE", "ADVERTISE", "VERSION", "REVISION"], rows, "  ") : "  (no instance list: etcd does not answer)";
  return `Cluster: store ${c.store}, revision ${c.revision}, ${c.instances.length} instance(s)\n${list}`;
}

function renderWorkers(w: WorkersJson): string {
  const rows = w.workers.map((x) => [x.index, x.pid, x.ready ? "ready" : "starting", x.active_connections, `${x.uptime_s}s`, x.dataplane ?? "-"]);
  return `Workers: ${w.workers.length} (restarts ${w.restarts})\n${table(["WORKER", "PID", "STATE", "CONNECTIONS", "UPTIME", "DATA PLANE"], rows, "  ")}`;
}

export function renderStatus(s: StatusSnapshot): string {
  const out: string[] = [];
  const dataplane = (s.dataplane ? `\nTCP data plane: ${s.dataplane}` : "") + (s.workers ? `\n${renderWorkers(s.workers)}` : "") + (s.cluster ? `\n${renderCluster(s.cluster)}` : "");
  if (!s.loadbalancers.length) return `no load balancers configured${dataplane}`;
  for (const lb of s.loadbalancers) {
    out.push(`Load balancer ${lb.id}${lb.name ? ` (${lb.name})` : ""}  vip ${lb.vip_address}${lb.vpc_id ? `  vpc ${lb.vpc_id}` : ""}`);
    if (lb.ip_target_enable) {
      out.push("  cross-VPC backends: on");
      out.push(`    backend subnet CIDRs (cross-VPC members' security groups must allow them): ${(lb.backend_subnet_cidrs ?? []).join(", ") || "-"}`);
      out.push(`    source addresses towards cross-VPC members: ${(lb.source_addresses ?? []).join(", ") || "-"}`);
    }
    out.push("  Listeners:");
    out.push(
      lb.listeners.length
        ? table(
            ["ID", "PROTOCOL", "ADDRESS", "POOL", "ACTIVE", "TOTAL"],
            lb.listeners.map((l) => [
              l.id,
              l.protocol,
              hostPort(l.vip_address, l.protocol_port),
              l.default_pool_id,
              l.active_connections,
              l.total_connections,
            ]),
            "    ",
          )
        : "    (none)",
    );
    for (const p of lb.pools) {
      const extras = [
        p.protocol,
        p.lb_algorithm,
        p.healthmonitor_id ? `health monitor ${p.healthmonitor_id}` : "no health monitor",
        ...(p.connection_drain.enable ? [`drain ${p.connection_drain.timeout}s`] : []),
        ...(p.slow_start.enable ? [`slow start ${p.slow_start.duration}s`] : []),
      ];
      const ls = p.listeners.map((l) => l.id).join(", ");
      out.push(`  Pool ${p.id} (${extras.join(", ")})${ls ? `  listeners: ${ls}` : ""}`);
      out.push(p.members.length ? membersTable(p.members, "    ") : "    (no members)");
    }
    out.push("");
  }
  return `${out.join("\n").trimEnd()}${dataplane}`;
}

/** How often `status --watch` redraws on counters alone (a control event redraws at once). */
export const WATCH_REDRAW_MS = 2000;

/** The live numbers of a `counters` event, folded into a status snapshot. */
export function applyCounters(s: StatusSnapshot, c: CountersEvent): void {
  for (const lb of s.loadbalancers) {
    for (const l of lb.listeners) {
      const x = c.listeners[l.id];
      if (x) Object.assign(l, { active_connections: x.active, total_connections: x.total });
    }
    for (const p of lb.pools) {
      const byId = c.members[p.id];
      if (!byId) continue;
      for (const m of p.members) {
        const x = byId[m.id];
        if (x) Object.assign(m, { active_connections: x.active, effective_weight: x.effective_weight, operating_status: x.operating_status, health: x.health });
      }
    }
  }
}

export interface WatchOptions {
  json: boolean;
  /** Clear the screen before each redraw (a terminal). */
  tty: boolean;
  signal: AbortSignal;
  out: (text: string) => void;
  err: (text: string) => void;
}

/**
 * `lb4 status --watch`: read the admin API's event stream; redraw the status on each control
 * event (health, member change, reload) and, on counters, every WATCH_REDRAW_MS. With --json,
 * print every event as one JSON line instead ({"type": …, …}). A dropped stream is resumed
 * after the last event seen; the first connection failing is an error (exit 1).
 */
export async function watchStatus(client: AdminClient, opts: WatchOptions): Promise<void> {
  let since: number | undefined;
  let snapshot: StatusSnapshot | undefined;
  let lastDraw = 0;
  let connected = false;
  const draw = () => {
    if (!snapshot) return;
    lastDraw = Date.now();
    const head = `lb4 status --watch  ${client.url}  ${new Date().toLocaleTimeString("en-GB", { hour12: false })}  (Ctrl-C to stop)`;
    opts.out(`${opts.tty ? "\x1b[H\x1b[2J" : "\n"}${head}\n\n${renderStatus(snapshot)}\n`);
  };
  const onMessage = async (m: SseMessage) => {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(m.data) as Record<string, unknown>;
    } catch {
      return;
    }
    if (opts.json) {
      opts.out(`${JSON.stringify({ type: m.event, ...data })}\n`);
      return;
    }
    if (m.event === "counters") {
      if (snapshot) applyCounters(snapshot, data as unknown as CountersEvent);
      if (Date.now() - lastDraw >= WATCH_REDRAW_MS) draw();
    } else if (m.event !== "hello") {
      snapshot = await fetchStatus(client);
      draw();
    }
  };
  while (!opts.signal.aborted) {
    try {
      const res = await client.stream(`/v3/elb/events${since !== undefined ? `?since=${since}` : ""}`, opts.signal);
      if (connected) opts.err("lb4 status --watch: event stream resumed\n");
      connected = true;
      if (!opts.json) {
        snapshot = await fetchStatus(client);
        draw();
      }
      const parser = new SseParser();
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const m of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (m.id !== undefined && /^\d+$/.test(m.id)) since = Number(m.id);
          if (since === undefined && m.event === "hello") since = Number((JSON.parse(m.data) as { last_seq: number }).last_seq);
          await onMessage(m);
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      if (!connected) throw err;
    }
    if (opts.signal.aborted) return;
    opts.err("lb4 status --watch: lost the event stream; reconnecting in 1 s\n");
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function registerStatus(program: Command): void {
  adminOptions(
    program
      .command("status")
      .description(
        "Show a running lb4: load balancers, listeners, pools and members with operating status, weight, effective weight and open connections; " +
          "for load balancers with cross-VPC backends, the backend subnet CIDRs and source addresses.",
      )
      .addHelpText(
        "after",
        `
Examples:
  lb4 status
  lb4 status --admin http://10.0.0.5:9870 --token "$LB4_ADMIN_TOKEN"
  lb4 status --json
  lb4 status --watch          (redraws on every health change, member change or reload, and every 2 s)
  lb4 status --watch --json   (the event stream as JSON lines: health, member_added, member_updated,
                               member_removed, reload, counters every second, hello first)

Columns: EFFECTIVE is the weight the scheduler uses now (slow start, health, drain and admin
state applied); STATUS is ONLINE, OFFLINE or NO_MONITOR, and OFFLINE (UNCHECKED) for a member whose first health check has not run yet; ACTIVE counts open connections.`,
      ),
  )
    .option("-w, --watch", "keep running and redraw from the admin API's event stream (GET /v3/elb/events) until Ctrl-C; with --json, print the events as JSON lines")
    .action(async (opts: AdminOptions & { watch?: boolean }) => {
      if (opts.watch) return watchCommand(opts);
      const s = await fetchStatus(clientFor(opts));
      if (opts.json) return printJson(s);
      console.log(renderStatus(s));
    });
}

/** `status --watch` until Ctrl-C (or SIGTERM), which ends it with exit 0. */
async function watchCommand(opts: AdminOptions): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await watchStatus(clientFor(opts), {
      json: !!opts.json,
      tty: !!process.stdout.isTTY && !opts.json,
      signal: abort.signal,
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
    });
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

export function registerReload(program: Command): void {
  adminOptions(
    program
      .command("reload")
      .description(
        "Make a running lb4 re-read its config file (same as SIGHUP): new listeners start, removed ones stop accepting, members are reconciled, " +
          "open connections are untouched. An invalid file is refused whole (exit 1, every problem listed) and the running config stays.",
      )
      .addHelpText("after", "\nExamples:\n  lb4 reload\n  lb4 reload --admin http://127.0.0.1:9870 --token \"$LB4_ADMIN_TOKEN\""),
  ).action(async (opts: AdminOptions) => {
    const r = await clientFor(opts).post<{ reload: { loadbalancers: number; listeners: number; pools: number; members: number; changes?: ReloadChanges } }>("/v3/elb/reload");
    if (opts.json) return printJson(r);
    const c = r.reload;
    console.log(`reloaded: ${c.loadbalancers} load balancer(s), ${c.listeners} listener(s), ${c.pools} pool(s), ${c.members} member(s)`);
    if (c.changes) for (const line of changeLines(c.changes)) console.log(line);
  });
}

/** What a reload changed, one line per kind; "no change" when nothing did. */
export function changeLines(c: ReloadChanges): string[] {
  const out: string[] = [];
  if (c.listeners_bound.length) out.push(`  listeners bound: ${c.listeners_bound.join(", ")}`);
  if (c.listeners_retired.length) out.push(`  listeners retired: ${c.listeners_retired.join(", ")}`);
  if (c.members_added.length) out.push(`  members added: ${c.members_added.join(", ")}`);
  if (c.members_removed.length) out.push(`  members removed: ${c.members_removed.join(", ")}`);
  for (const w of c.members_reweighted) out.push(`  re-weighted: ${w.pool_id}/${w.member_id} ${w.from} -> ${w.to}`);
  if (c.members_changed.length) out.push(`  members changed: ${c.members_changed.join(", ")}`);
  return out.length ? out : ["  no change"];
}
