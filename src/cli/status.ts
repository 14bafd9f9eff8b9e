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
  loadbalancers: LoadBalancerStatus[];
}

export async function fetchStatus(client: AdminClient): Promise<StatusSnapshot> {
  const [lbs, listeners, pools] = await Promise.all([
    client.get<{ loadbalancers: LoadBalancerView[] }>("/v3/elb/loadbalancers"),
    client.get<{ listeners: ListenerJson[] }>("/v3/elb/listeners"),
    client.get<{ pools: PoolJson[] }>("/v3/elb/pools"),
  ]);
  const members = await Promise.all(pools.pools.map((p) => client.get<{ members: MemberView[] }>(`/v3/elb/pools/${seg(p.id)}/members`)));
  const poolsWithMembers: PoolStatus[] = pools.pools.map((p, i) => ({ ...p, members: members[i]!.members }));
  return {
    loadbalancers: lbs.loadbalancers.map((lb) => ({
      ...lb,
      listeners: listeners.listeners.filter((l) => l.loadbalancer_id === lb.id),
      pools: poolsWithMembers.filter((p) => p.loadbalancer_id === lb.id),
    })),
  };
}

export function renderStatus(s: StatusSnapshot): string {
  const out: string[] = [];
  if (!s.loadbalancers.length) return "no load balancers configured";
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
  return out.join("\n").trimEnd();
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

Columns: EFFECTIVE is the weight the scheduler uses now (slow start, health, drain and admin
state applied); STATUS is ONLINE, OFFLINE or NO_MONITOR, and OFFLINE (UNCHECKED) for a member whose first health check has not run yet; ACTIVE counts open connections.`,
      ),
  ).action(async (opts: AdminOptions) => {
    const s = await fetchStatus(clientFor(opts));
    if (opts.json) return printJson(s);
    console.log(renderStatus(s));
  });
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
