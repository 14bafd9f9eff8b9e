/**
 * Cross-VPC backends (SPEC §6), pure. Classification of members, the six rules, backend
 * subnet capacity and the 4 source addresses the LB takes from its backend subnets.
 * Config validation, reload and the member API all reach these rules through
 * validateConfig(), so each rule has exactly one home.
 */
import type { Problem } from "../errors.js";
import { bigIntToIpv4, ipToBigInt, parseRange, rangeContains, type IpRange } from "../ip.js";
import type { Config, LoadBalancerConfig } from "../config/schema.js";

export const MAX_CROSS_VPC_MEMBERS = 492;
export const MIN_FREE_SUBNET_IPS = 16;
/** Network address, gateway (.1) and the last three (system, DHCP, broadcast). */
export const RESERVED_PER_SUBNET = 5;
export const SNAT_ADDRESS_COUNT = 4;

export const CROSSVPC_CODES = {
  notEnabled: "LB4.CROSSVPC_NOT_ENABLED",
  ipv4Only: "LB4.CROSSVPC_IPV4_ONLY",
  tcpOnly: "LB4.CROSSVPC_TCP_ONLY",
  tooMany: "LB4.CROSSVPC_TOO_MANY_MEMBERS",
  subnetCapacity: "LB4.CROSSVPC_SUBNET_CAPACITY",
  cannotDisable: "LB4.CROSSVPC_CANNOT_DISABLE",
  noVpc: "LB4.CROSSVPC_NO_VPC",
} as const;

export interface VpcView {
  cidrs: IpRange[];
  subnets: Map<string, { cidr: IpRange; usedIps: number }>;
}

export function vpcView(config: Pick<Config, "vpcs">, vpcId: string | null): VpcView | undefined {
  const vpc = vpcId === null ? undefined : config.vpcs.find((v) => v.id === vpcId);
  if (!vpc) return undefined;
  const subnets = new Map<string, { cidr: IpRange; usedIps: number }>();
  for (const s of vpc.subnets) {
    const r = parseRange(s.cidr);
    if (r) subnets.set(s.id, { cidr: r, usedIps: s.used_ips });
  }
  return { cidrs: vpc.cidrs.map((c) => parseRange(c)).filter((r): r is IpRange => !!r), subnets };
}

/**
 * A member is cross-VPC when its address lies outside every CIDR of its LB's VPC.
 * A load balancer without a VPC has no network model: all its members are same-VPC.
 */
export function isCrossVpc(vpc: VpcView | undefined, address: string): boolean {
  if (!vpc) return false;
  const a = ipToBigInt(address);
  if (!a) return false;
  return !vpc.cidrs.some((c) => rangeContains(c, a.family, a.value));
}

/** Free addresses in one subnet: size − 5 reserved − used (never below 0). */
export function subnetFreeIps(cidr: IpRange, usedIps: number): number {
  const size = Number(cidr.end - cidr.start + 1n);
  return Math.max(0, size - RESERVED_PER_SUBNET - usedIps);
}

export function backendSubnets(lb: LoadBalancerConfig, vpc: VpcView | undefined) {
  return lb.elb_virsubnet_ids
    .map((id) => ({ id, subnet: vpc?.subnets.get(id) }))
    .filter((s): s is { id: string; subnet: { cidr: IpRange; usedIps: number } } => !!s.subnet);
}

/**
 * The LB's 4 source addresses for cross-VPC connections: the first free addresses of its
 * backend subnets, after the network address, the gateway and the `used_ips` in use
 * (assumed to be the lowest ones), never the last three reserved ones. IPv4 subnets only.
 */
export function allocateSnatAddresses(lb: LoadBalancerConfig, vpc: VpcView | undefined): string[] {
  const out: string[] = [];
  for (const { subnet } of backendSubnets(lb, vpc)) {
    if (subnet.cidr.family !== 4) continue;
    const first = subnet.cidr.start + 2n + BigInt(subnet.usedIps);
    const last = subnet.cidr.end - 3n;
    for (let a = first; a <= last && out.length < SNAT_ADDRESS_COUNT; a++) out.push(bigIntToIpv4(a));
    if (out.length === SNAT_ADDRESS_COUNT) break;
  }
  return out;
}

export interface CrossVpcContext {
  /** Load balancers whose cross-VPC switch was ever turned on (persisted under state_dir). */
  everEnabled?: ReadonlySet<string>;
}

/** Every SPEC §6 rule, for every load balancer of a parsed config. */
export function checkCrossVpc(config: Config, ctx: CrossVpcContext = {}): Problem[] {
  const problems: Problem[] = [];
  config.loadbalancers.forEach((lb, li) => {
    const at = `loadbalancers[${li}]`;
    const vpc = vpcView(config, lb.vpc_id);
    // Rule 6: once on, never off, also across restarts.
    if (!lb.ip_target_enable && ctx.everEnabled?.has(lb.id)) {
      problems.push({
        path: `${at}.ip_target_enable`,
        code: CROSSVPC_CODES.cannotDisable,
        message: `cross-VPC backends were enabled for load balancer "${lb.id}" and can never be disabled; set ip_target_enable: true`,
      });
    }
    if (lb.ip_target_enable) {
      if (!vpc) {
        problems.push({
          path: `${at}.vpc_id`,
          code: CROSSVPC_CODES.noVpc,
          message: "ip_target_enable needs the load balancer's VPC (vpc_id naming an entry of vpcs)",
        });
      }
      // Rule 5: the backend subnets must have at least 16 free addresses together.
      const subnets = backendSubnets(lb, vpc);
      const free = subnets.reduce((n, s) => n + subnetFreeIps(s.subnet.cidr, s.subnet.usedIps), 0);
      if (free < MIN_FREE_SUBNET_IPS) {
        problems.push({
          path: `${at}.ip_target_enable`,
          code: CROSSVPC_CODES.subnetCapacity,
          message:
            `enabling cross-VPC backends needs at least ${MIN_FREE_SUBNET_IPS} free IP addresses in the backend subnets ` +
            `(elb_virsubnet_ids), but they have ${free} free (size − ${RESERVED_PER_SUBNET} reserved − used_ips per subnet); ` +
            `add a backend subnet or free addresses`,
        });
      }
    }
    let crossCount = 0;
    lb.pools.forEach((pool, pi) => {
      pool.members.forEach((m, mi) => {
        if (!isCrossVpc(vpc, m.address)) return;
        crossCount++;
        const mp = `${at}.pools[${pi}].members[${mi}].address`;
        // Rule 1.
        if (!lb.ip_target_enable) {
          problems.push({
            path: mp,
            code: CROSSVPC_CODES.notEnabled,
            message: `${m.address} is outside the VPC of load balancer "${lb.id}"; cross-VPC members need ip_target_enable: true on the load balancer`,
          });
          return;
        }
        // Rule 2.
        if (m.address.includes(":")) {
          problems.push({ path: mp, code: CROSSVPC_CODES.ipv4Only, message: "cross-VPC members must be IPv4" });
        }
        // Rule 3.
        if (pool.protocol !== "TCP") {
          problems.push({
            path: mp,
            code: CROSSVPC_CODES.tcpOnly,
            message: `cross-VPC members are allowed in TCP pools only; pool "${pool.id}" is ${pool.protocol}`,
          });
        }
        // Rule 4.
        if (crossCount === MAX_CROSS_VPC_MEMBERS + 1) {
          problems.push({
            path: mp,
            code: CROSSVPC_CODES.tooMany,
            message: `load balancer "${lb.id}" may hold at most ${MAX_CROSS_VPC_MEMBERS} cross-VPC members in all its pools; this is number ${crossCount}`,
          });
        }
      });
    });
  });
  return problems;
}
