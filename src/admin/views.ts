/**
 * The JSON views of the admin API (ELB v3 shapes, snake_case), built by pure functions from
 * a running config plus an optional runtime view (health, effective weight, connections).
 * The reverse lookup lives here once and serves both `GET /v3/elb/members?address=…` and
 * the offline `lb4 members find --config FILE` (which passes no runtime).
 */
import type { Config, HealthMonitorConfig, ListenerConfig, LoadBalancerConfig, MemberConfig, PoolConfig } from "../config/schema.js";
import { allocateSnatAddresses, backendSubnets, isCrossVpc, vpcView } from "../crossvpc/rules.js";
import { canonicalIp } from "../ip.js";

export type OperatingStatus = "ONLINE" | "OFFLINE" | "NO_MONITOR";
/** UNKNOWN: offline lookups (from a file) cannot know the result of health checks. */
export type ViewStatus = OperatingStatus | "UNKNOWN";

/** What the running engine knows about a member beyond its config. */
export interface MemberRuntimeView {
  status: OperatingStatus;
  /** The health-check state; undefined without a monitor. */
  health?: "UNCHECKED" | "ONLINE" | "OFFLINE" | undefined;
  effectiveWeight: number;
  active: number;
  total: number;
}

export interface ListenerRuntimeView {
  active: number;
  total: number;
}

/** Live facts of a running instance; absent for offline views built from a file. */
export interface RuntimeView {
  member(poolId: string, memberId: string): MemberRuntimeView | undefined;
  listener(listenerId: string): ListenerRuntimeView | undefined;
}

// ---------------------------------------------------------------- lookups by id

export interface PoolRef {
  lb: LoadBalancerConfig;
  pool: PoolConfig;
}

export function findLoadBalancer(config: Config, id: string): LoadBalancerConfig | undefined {
  return config.loadbalancers.find((lb) => lb.id === id);
}

export function findListener(config: Config, id: string): { lb: LoadBalancerConfig; listener: ListenerConfig } | undefined {
  for (const lb of config.loadbalancers) {
    const listener = lb.listeners.find((l) => l.id === id);
    if (listener) return { lb, listener };
  }
  return undefined;
}

export function findPool(config: Config, id: string): PoolRef | undefined {
  for (const lb of config.loadbalancers) {
    const pool = lb.pools.find((p) => p.id === id);
    if (pool) return { lb, pool };
  }
  return undefined;
}

export function findMember(config: Config, poolId: string, memberId: string): (PoolRef & { member: MemberConfig }) | undefined {
  const ref = findPool(config, poolId);
  const member = ref?.pool.members.find((m) => m.id === memberId);
  return ref && member ? { ...ref, member } : undefined;
}

/** Every member id in the config (ids are unique per kind across the whole config). */
export function memberIds(config: Config): Set<string> {
  return new Set(config.loadbalancers.flatMap((lb) => lb.pools.flatMap((p) => p.members.map((m) => m.id))));
}

/** A health monitor's id: its configured id, or `<pool_id>-hm`. */
export function healthMonitorId(pool: PoolConfig): string | undefined {
  const hm = pool.healthmonitor;
  if (!hm) return undefined;
  return hm.id ?? `${pool.id}-hm`;
}

export function findHealthMonitor(config: Config, id: string): (PoolRef & { hm: HealthMonitorConfig }) | undefined {
  for (const lb of config.loadbalancers) {
    for (const pool of lb.pools) {
      if (pool.healthmonitor && healthMonitorId(pool) === id) return { lb, pool, hm: pool.healthmonitor };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- address matching

/** Same IP address, whatever its spelling (fd00::5 = FD00:0::5; ::ffff:1.2.3.4 = 1.2.3.4); never for a non-address. */
export function sameAddress(a: string, b: string): boolean {
  const x = canonicalIp(a);
  return x !== undefined && x === canonicalIp(b);
}

// ---------------------------------------------------------------- objects

/** Listeners of a load balancer that send new connections to a pool (default_pool_id). */
export function listenerIdsOfPool(lb: LoadBalancerConfig, poolId: string): string[] {
  return lb.listeners.filter((l) => l.default_pool_id === poolId).map((l) => l.id);
}

/**
 * A member's operating status. Running: the health result (ONLINE | OFFLINE), NO_MONITOR
 * without an active monitor; a member with admin_state_up false is OFFLINE (it gets no
 * traffic). Offline (no runtime): NO_MONITOR or OFFLINE when the config alone decides it,
 * otherwise UNKNOWN.
 */
export function operatingStatus(pool: PoolConfig, member: MemberConfig, rt: MemberRuntimeView | undefined): ViewStatus {
  if (!member.admin_state_up) return "OFFLINE";
  if (rt) return rt.status;
  const hm = pool.healthmonitor;
  return hm && hm.admin_state_up ? "UNKNOWN" : "NO_MONITOR";
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

export interface MemberView {
  id: string;
  name: string;
  address: string;
  protocol_port: number;
  weight: number;
  admin_state_up: boolean;
  instance_id: string;
  operating_status: ViewStatus;
  /**
   * lb4: what the health checks say: UNCHECKED (no result yet: not a failure), ONLINE, OFFLINE;
   * NO_MONITOR without a monitor; UNKNOWN offline (from a file).
   */
  health: "UNCHECKED" | "ONLINE" | "OFFLINE" | "NO_MONITOR" | "UNKNOWN";
  pool_id: string;
  loadbalancer_id: string;
  ip_version: 4 | 6;
  /** "ip" for a cross-VPC member (an IP-as-backend), "instance" otherwise (ELB v3 member_type). */
  member_type: "ip" | "instance";
  /** lb4: the weight the scheduler uses now (slow start, health, drain, admin state); null offline. */
  effective_weight: number | null;
  /** lb4: connections/flows open to this member now; null offline. */
  active_connections: number | null;
}

export function memberView(config: Config, lb: LoadBalancerConfig, pool: PoolConfig, m: MemberConfig, runtime?: RuntimeView): MemberView {
  const rt = runtime?.member(pool.id, m.id);
  return {
    id: m.id,
    name: m.name ?? "",
    address: m.address,
    protocol_port: m.protocol_port,
    weight: m.weight,
    admin_state_up: m.admin_state_up,
    instance_id: m.instance_id ?? "",
    operating_status: operatingStatus(pool, m, rt),
    health: rt ? (rt.health ?? "NO_MONITOR") : pool.healthmonitor?.admin_state_up ? "UNKNOWN" : "NO_MONITOR",
    pool_id: pool.id,
    loadbalancer_id: lb.id,
    ip_version: m.address.includes(":") ? 6 : 4,
    member_type: isCrossVpc(vpcView(config, lb.vpc_id), m.address) ? "ip" : "instance",
    effective_weight: rt ? round2(rt.effectiveWeight) : null,
    active_connections: rt ? rt.active : null,
  };
}

export function membersView(config: Config, ref: PoolRef, runtime?: RuntimeView): MemberView[] {
  return ref.pool.members.map((m) => memberView(config, ref.lb, ref.pool, m, runtime));
}

export interface LoadBalancerView {
  id: string;
  name: string;
  vpc_id: string | null;
  vip_address: string;
  elb_virsubnet_ids: string[];
  ip_target_enable: boolean;
  listeners: Array<{ id: string }>;
  pools: Array<{ id: string }>;
  provisioning_status: "ACTIVE";
  operating_status: "ONLINE";
  /** Cross-VPC on only (SPEC §6 rule 7): CIDRs the cross-VPC members' security groups must allow. */
  backend_subnet_cidrs?: string[];
  /** Cross-VPC on only: the LB's source addresses towards cross-VPC members (SPEC §6 rule 5). */
  source_addresses?: string[];
}

export function loadBalancerView(config: Config, lb: LoadBalancerConfig): LoadBalancerView {
  const view: LoadBalancerView = {
    id: lb.id,
    name: lb.name ?? "",
    vpc_id: lb.vpc_id,
    vip_address: lb.vip_address,
    elb_virsubnet_ids: [...lb.elb_virsubnet_ids],
    ip_target_enable: lb.ip_target_enable,
    listeners: lb.listeners.map((l) => ({ id: l.id })),
    pools: lb.pools.map((p) => ({ id: p.id })),
    provisioning_status: "ACTIVE",
    operating_status: "ONLINE",
  };
  if (lb.ip_target_enable) {
    const vpc = vpcView(config, lb.vpc_id);
    view.backend_subnet_cidrs = backendSubnets(lb, vpc).map((s) => s.subnet.cidr.text);
    view.source_addresses = allocateSnatAddresses(lb, vpc);
  }
  return view;
}

export function listenerView(lb: LoadBalancerConfig, l: ListenerConfig, runtime?: RuntimeView) {
  const rt = runtime?.listener(l.id);
  return {
    id: l.id,
    name: l.name ?? "",
    protocol: l.protocol,
    protocol_port: l.protocol_port,
    default_pool_id: l.default_pool_id,
    loadbalancers: [{ id: lb.id }],
    loadbalancer_id: lb.id,
    vip_address: lb.vip_address,
    keepalive_timeout: l.keepalive_timeout,
    connection_limit: l.connection_limit,
    admin_state_up: l.admin_state_up,
    ipgroup: l.ipgroup ? { type: l.ipgroup.type, ip_list: [...l.ipgroup.ip_list], enable_ipgroup: true } : null,
    provisioning_status: "ACTIVE" as const,
    operating_status: "ONLINE" as const,
    active_connections: rt ? rt.active : null,
    total_connections: rt ? rt.total : null,
  };
}

export function poolView(lb: LoadBalancerConfig, p: PoolConfig) {
  const listenerIds = listenerIdsOfPool(lb, p.id);
  return {
    id: p.id,
    name: p.name ?? "",
    protocol: p.protocol,
    lb_algorithm: p.lb_algorithm,
    loadbalancers: [{ id: lb.id }],
    loadbalancer_id: lb.id,
    listeners: listenerIds.map((id) => ({ id })),
    listener_id: listenerIds[0] ?? null,
    members: p.members.map((m) => ({ id: m.id, address: m.address, protocol_port: m.protocol_port })),
    healthmonitor_id: healthMonitorId(p) ?? null,
    session_persistence: p.session_persistence,
    slow_start: { ...p.slow_start },
    connection_drain: { ...p.connection_drain },
    pool_health: { ...p.pool_health },
    client_ip: p.client_ip,
    admin_state_up: true,
    provisioning_status: "ACTIVE" as const,
    operating_status: "ONLINE" as const,
  };
}

export function healthMonitorView(pool: PoolConfig, hm: HealthMonitorConfig) {
  return {
    id: healthMonitorId(pool)!,
    name: "",
    type: hm.type,
    delay: hm.delay,
    timeout: hm.timeout,
    max_retries: hm.max_retries,
    max_retries_down: hm.max_retries_down,
    monitor_port: hm.monitor_port,
    url_path: hm.url_path,
    expected_codes: hm.expected_codes,
    http_method: hm.http_method,
    domain_name: hm.domain_name,
    admin_state_up: hm.admin_state_up,
    pools: [{ id: pool.id }],
    pool_id: pool.id,
  };
}

export const listLoadBalancers = (config: Config) => config.loadbalancers.map((lb) => loadBalancerView(config, lb));
export const listListeners = (config: Config, runtime?: RuntimeView) =>
  config.loadbalancers.flatMap((lb) => lb.listeners.map((l) => listenerView(lb, l, runtime)));
export const listPools = (config: Config) => config.loadbalancers.flatMap((lb) => lb.pools.map((p) => poolView(lb, p)));
export const listHealthMonitors = (config: Config) =>
  config.loadbalancers.flatMap((lb) => lb.pools.flatMap((p) => (p.healthmonitor ? [healthMonitorView(p, p.healthmonitor)] : [])));

// ---------------------------------------------------------------- reverse lookup

/** What to look a backend up by; every given field must match (AND). */
export interface MembershipFilter {
  address?: string;
  instance_id?: string;
  pool_id?: string;
  loadbalancer_id?: string;
}

/** One membership of a backend: which LB, pool and listeners it serves, and how it is doing. */
export interface Membership extends MemberView {
  member_id: string;
  listener_ids: string[];
}

/**
 * Reverse lookup (SPEC §8): every membership of a backend, by address and/or instance_id,
 * across all load balancers and pools, in config order. Pure; `runtime` adds live status.
 */
export function findMemberships(config: Config, filter: MembershipFilter, runtime?: RuntimeView): Membership[] {
  const out: Membership[] = [];
  // Config addresses are canonical; so is the query once converted (an invalid one matches nothing).
  const address = filter.address === undefined ? undefined : (canonicalIp(filter.address) ?? null);
  for (const lb of config.loadbalancers) {
    if (filter.loadbalancer_id !== undefined && lb.id !== filter.loadbalancer_id) continue;
    for (const pool of lb.pools) {
      if (filter.pool_id !== undefined && pool.id !== filter.pool_id) continue;
      for (const m of pool.members) {
        if (address !== undefined && m.address !== address) continue;
        if (filter.instance_id !== undefined && m.instance_id !== filter.instance_id) continue;
        out.push({ ...memberView(config, lb, pool, m, runtime), member_id: m.id, listener_ids: listenerIdsOfPool(lb, pool.id) });
      }
    }
  }
  return out;
}

/** The load balancers a backend is bound to (`?member_address=` / `?member_device_id=`). */
export function loadBalancersOfMember(config: Config, filter: { address?: string; instance_id?: string }): LoadBalancerView[] {
  const ids = new Set(findMemberships(config, filter).map((m) => m.loadbalancer_id));
  return config.loadbalancers.filter((lb) => ids.has(lb.id)).map((lb) => loadBalancerView(config, lb));
}
