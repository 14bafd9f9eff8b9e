import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config/validate.js";
import type { Config } from "../../../src/config/schema.js";
import {
  findHealthMonitor,
  findMemberships,
  healthMonitorId,
  listHealthMonitors,
  listListeners,
  listPools,
  loadBalancerView,
  loadBalancersOfMember,
  memberView,
  operatingStatus,
  sameAddress,
  type RuntimeView,
} from "../../../src/admin/views.js";

/**
 * One backend (10.0.1.15, instance ecs-15) in 2 load balancers and 3 pools, plus others:
 *   lb-a: pool-a1 (ls-a1, ls-a2 → pool-a1), pool-a2 (ls-a3), pool-a3 (no listener; no 10.0.1.15)
 *   lb-b: pool-b1 (ls-b1) with the backend on two ports (one by IPv6 spelling elsewhere)
 */
function config(): Config {
  return parseConfig({
    vpcs: [{ id: "vpc-a", cidrs: ["10.0.0.0/16", "fd00::/64"], subnets: [{ id: "sn-1", cidr: "10.0.10.0/24", used_ips: 40 }, { id: "sn-2", cidr: "10.0.11.0/28" }] }],
    loadbalancers: [
      {
        id: "lb-a",
        name: "alpha",
        vpc_id: "vpc-a",
        vip_address: "10.0.0.10",
        listeners: [
          { id: "ls-a1", protocol: "TCP", protocol_port: 80, default_pool_id: "pool-a1" },
          { id: "ls-a2", protocol: "TCP", protocol_port: 81, default_pool_id: "pool-a1" },
          { id: "ls-a3", protocol: "TCP", protocol_port: 82, default_pool_id: "pool-a2" },
        ],
        pools: [
          {
            id: "pool-a1",
            protocol: "TCP",
            healthmonitor: { type: "TCP" },
            members: [
              { id: "m-a1-1", address: "10.0.1.15", protocol_port: 8080, instance_id: "ecs-15", weight: 5 },
              { id: "m-a1-2", address: "10.0.1.16", protocol_port: 8080, instance_id: "ecs-16" },
            ],
          },
          {
            id: "pool-a2",
            protocol: "TCP",
            healthmonitor: { id: "hm-custom", type: "TCP", admin_state_up: false },
            members: [{ id: "m-a2-1", address: "10.0.1.15", protocol_port: 9090, instance_id: "ecs-15", admin_state_up: false }],
          },
          { id: "pool-a3", protocol: "TCP", members: [{ id: "m-a3-1", address: "10.0.1.17", protocol_port: 1 }] },
        ],
      },
      {
        id: "lb-b",
        vpc_id: "vpc-a",
        vip_address: "10.0.0.11",
        elb_virsubnet_ids: ["sn-1", "sn-2"],
        ip_target_enable: true,
        listeners: [{ id: "ls-b1", protocol: "TCP", protocol_port: 80, default_pool_id: "pool-b1" }],
        pools: [
          {
            id: "pool-b1",
            protocol: "TCP",
            members: [
              { id: "m-b1-1", address: "10.0.1.15", protocol_port: 8081, instance_id: "ecs-15" },
              { id: "m-b1-2", address: "192.168.7.7", protocol_port: 80, instance_id: "other" },
              { id: "m-b1-3", address: "fd00::15", protocol_port: 80 },
            ],
          },
        ],
      },
    ],
  });
}

const live: Record<string, ReturnType<RuntimeView["member"]>> = {
  "pool-a1/m-a1-1": { status: "ONLINE", effectiveWeight: 2.5049, active: 3, total: 10 },
  "pool-a1/m-a1-2": { status: "OFFLINE", effectiveWeight: 0, active: 0, total: 0 },
  "pool-a2/m-a2-1": { status: "NO_MONITOR", effectiveWeight: 0, active: 0, total: 0 },
  "pool-b1/m-b1-1": { status: "NO_MONITOR", effectiveWeight: 1, active: 1, total: 1 },
};
const runtime: RuntimeView = {
  member: (poolId, memberId) => live[`${poolId}/${memberId}`],
  listener: (id) => (id === "ls-a1" ? { active: 4, total: 9 } : undefined),
};

describe("reverse lookup (findMemberships)", () => {
  const c = config();
  it.each([
    ["by address", { address: "10.0.1.15" }, ["lb-a/pool-a1/m-a1-1", "lb-a/pool-a2/m-a2-1", "lb-b/pool-b1/m-b1-1"]],
    ["by instance_id", { instance_id: "ecs-15" }, ["lb-a/pool-a1/m-a1-1", "lb-a/pool-a2/m-a2-1", "lb-b/pool-b1/m-b1-1"]],
    ["address and instance_id together (AND)", { address: "10.0.1.15", instance_id: "ecs-16" }, []],
    ["narrowed to a load balancer", { address: "10.0.1.15", loadbalancer_id: "lb-b" }, ["lb-b/pool-b1/m-b1-1"]],
    ["narrowed to a pool", { instance_id: "ecs-15", pool_id: "pool-a2" }, ["lb-a/pool-a2/m-a2-1"]],
    ["IPv6 in another spelling", { address: "FD00:0:0::15" }, ["lb-b/pool-b1/m-b1-3"]],
    ["unknown address", { address: "10.9.9.9" }, []],
    ["unknown instance", { instance_id: "ecs-404" }, []],
    ["no filter: every membership", {}, ["lb-a/pool-a1/m-a1-1", "lb-a/pool-a1/m-a1-2", "lb-a/pool-a2/m-a2-1", "lb-a/pool-a3/m-a3-1", "lb-b/pool-b1/m-b1-1", "lb-b/pool-b1/m-b1-2", "lb-b/pool-b1/m-b1-3"]],
  ])("%s", (_name, filter, expected) => {
    const got = findMemberships(c, filter).map((m) => `${m.loadbalancer_id}/${m.pool_id}/${m.member_id}`);
    expect(got).toEqual(expected);
  });

  it("gives each membership its listeners, port, weight and live status", () => {
    const got = findMemberships(c, { address: "10.0.1.15" }, runtime);
    expect(got).toEqual([
      expect.objectContaining({ loadbalancer_id: "lb-a", pool_id: "pool-a1", listener_ids: ["ls-a1", "ls-a2"], member_id: "m-a1-1", id: "m-a1-1", protocol_port: 8080, weight: 5, operating_status: "ONLINE", effective_weight: 2.5, active_connections: 3, instance_id: "ecs-15", address: "10.0.1.15" }),
      expect.objectContaining({ loadbalancer_id: "lb-a", pool_id: "pool-a2", listener_ids: ["ls-a3"], protocol_port: 9090, weight: 1, operating_status: "OFFLINE", admin_state_up: false }),
      expect.objectContaining({ loadbalancer_id: "lb-b", pool_id: "pool-b1", listener_ids: ["ls-b1"], protocol_port: 8081, operating_status: "NO_MONITOR", member_type: "instance" }),
    ]);
  });

  it("offline (no runtime): status from the config alone, UNKNOWN when a monitor would decide", () => {
    const got = findMemberships(c, { instance_id: "ecs-15" });
    expect(got.map((m) => m.operating_status)).toEqual(["UNKNOWN", "OFFLINE", "NO_MONITOR"]);
    expect(got.every((m) => m.effective_weight === null && m.active_connections === null)).toBe(true);
  });

  it("lists the load balancers a backend is bound to", () => {
    expect(loadBalancersOfMember(c, { address: "10.0.1.15" }).map((l) => l.id)).toEqual(["lb-a", "lb-b"]);
    expect(loadBalancersOfMember(c, { instance_id: "ecs-16" }).map((l) => l.id)).toEqual(["lb-a"]);
    expect(loadBalancersOfMember(c, { address: "192.168.7.7" }).map((l) => l.id)).toEqual(["lb-b"]);
    expect(loadBalancersOfMember(c, { address: "1.1.1.1" })).toEqual([]);
  });
});

describe("views", () => {
  const c = config();
  it("a load balancer without cross-VPC shows no backend CIDRs", () => {
    const v = loadBalancerView(c, c.loadbalancers[0]!);
    expect(v).toMatchObject({ id: "lb-a", name: "alpha", vip_address: "10.0.0.10", ip_target_enable: false, listeners: [{ id: "ls-a1" }, { id: "ls-a2" }, { id: "ls-a3" }], pools: [{ id: "pool-a1" }, { id: "pool-a2" }, { id: "pool-a3" }] });
    expect(v).not.toHaveProperty("backend_subnet_cidrs");
    expect(v).not.toHaveProperty("source_addresses");
  });

  it("a cross-VPC load balancer shows its backend subnet CIDRs and 4 source addresses (SPEC §6 rules 5, 7)", () => {
    const v = loadBalancerView(c, c.loadbalancers[1]!);
    expect(v.backend_subnet_cidrs).toEqual(["10.0.10.0/24", "10.0.11.0/28"]);
    // network .0, gateway .1, then 40 used: the first free is .42
    expect(v.source_addresses).toEqual(["10.0.10.42", "10.0.10.43", "10.0.10.44", "10.0.10.45"]);
  });

  it("members carry the ELB fields plus effective weight and active connections", () => {
    const lb = c.loadbalancers[1]!;
    const pool = lb.pools[0]!;
    expect(memberView(c, lb, pool, pool.members[1]!, runtime)).toEqual({
      id: "m-b1-2",
      name: "",
      address: "192.168.7.7",
      protocol_port: 80,
      weight: 1,
      admin_state_up: true,
      instance_id: "other",
      operating_status: "NO_MONITOR",
      health: "NO_MONITOR",
      pool_id: "pool-b1",
      loadbalancer_id: "lb-b",
      ip_version: 4,
      member_type: "ip",
      effective_weight: null,
      active_connections: null,
    });
  });

  it("health monitors: configured id or <pool_id>-hm", () => {
    expect(listHealthMonitors(c).map((h) => [h.id, h.pool_id])).toEqual([
      ["pool-a1-hm", "pool-a1"],
      ["hm-custom", "pool-a2"],
    ]);
    expect(healthMonitorId(c.loadbalancers[0]!.pools[2]!)).toBeUndefined();
    expect(findHealthMonitor(c, "pool-a1-hm")?.pool.id).toBe("pool-a1");
    expect(findHealthMonitor(c, "hm-custom")?.pool.id).toBe("pool-a2");
    expect(findHealthMonitor(c, "pool-a2-hm")).toBeUndefined();
  });

  it("pools know their listeners; listeners their load balancer and live counters", () => {
    const pools = listPools(c);
    expect(pools.find((p) => p.id === "pool-a1")).toMatchObject({ listeners: [{ id: "ls-a1" }, { id: "ls-a2" }], healthmonitor_id: "pool-a1-hm", loadbalancers: [{ id: "lb-a" }] });
    expect(pools.find((p) => p.id === "pool-a3")).toMatchObject({ listeners: [], listener_id: null, healthmonitor_id: null });
    const ls = listListeners(c, runtime);
    expect(ls.find((l) => l.id === "ls-a1")).toMatchObject({ loadbalancer_id: "lb-a", vip_address: "10.0.0.10", active_connections: 4, total_connections: 9 });
    expect(ls.find((l) => l.id === "ls-b1")).toMatchObject({ active_connections: null });
  });

  it.each([
    [{ admin_state_up: true }, null, { status: "ONLINE" }, "ONLINE"],
    [{ admin_state_up: true }, { type: "TCP", admin_state_up: true }, undefined, "UNKNOWN"],
    [{ admin_state_up: true }, { type: "TCP", admin_state_up: false }, undefined, "NO_MONITOR"],
    [{ admin_state_up: true }, null, undefined, "NO_MONITOR"],
    [{ admin_state_up: false }, null, { status: "NO_MONITOR" }, "OFFLINE"],
    [{ admin_state_up: true }, { type: "TCP", admin_state_up: true }, { status: "OFFLINE" }, "OFFLINE"],
  ])("operatingStatus(%j, monitor %j, runtime %j) = %s", (member, hm, rt, expected) => {
    const status = operatingStatus({ healthmonitor: hm } as never, member as never, rt ? ({ ...rt, effectiveWeight: 0, active: 0, total: 0 } as never) : undefined);
    expect(status).toBe(expected);
  });

  it.each([
    ["10.0.0.1", "10.0.0.1", true],
    ["10.0.0.1", "10.0.0.2", false],
    ["fd00::5", "FD00:0:0:0:0:0:0:5", true],
    ["::ffff:10.0.0.1", "10.0.0.1", true],
    ["fd00::5", "10.0.0.5", false],
  ])("sameAddress(%s, %s) = %s", (a, b, expected) => {
    expect(sameAddress(a, b)).toBe(expected);
  });
});
