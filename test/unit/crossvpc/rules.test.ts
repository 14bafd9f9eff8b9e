/** SPEC §6: every cross-VPC rule, table-driven, through the one validation gate. */
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/validate.js";
import { allocateSnatAddresses, CROSSVPC_CODES, isCrossVpc, subnetFreeIps, vpcView } from "../../../src/crossvpc/rules.js";
import { parseRange } from "../../../src/ip.js";

function config(opts: { enable?: boolean; subnet?: string; used?: number; members?: Array<Record<string, unknown>>; protocol?: "TCP" | "UDP" } = {}): any {
  return {
    vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "sn", cidr: opts.subnet ?? "127.0.10.0/24", used_ips: opts.used ?? 40 }] }],
    loadbalancers: [
      {
        id: "lb-x",
        vpc_id: "vpc-a",
        vip_address: "127.0.0.1",
        elb_virsubnet_ids: ["sn"],
        ip_target_enable: opts.enable ?? true,
        listeners: [],
        pools: [{ id: "p", protocol: opts.protocol ?? "TCP", members: opts.members ?? [] }],
      },
    ],
  };
}

const cross = (n: number, start = 0) =>
  Array.from({ length: n }, (_, i) => ({ id: `x-${start + i}`, address: `10.${Math.floor((start + i) / 250)}.${(start + i) % 250}.1`, protocol_port: 80 }));

function codes(c: unknown, ctx = {}): string[] {
  const r = validateConfig(c, ctx);
  return r.ok ? [] : r.problems.map((p) => `${p.code ?? "-"} ${p.path}`);
}

describe("cross-VPC classification", () => {
  it.each([
    ["127.0.5.5", false],
    ["127.1.0.1", true],
    ["10.0.0.1", true],
    ["::1", true],
  ])("%s cross-VPC=%s against 127.0.0.0/16", (address, crossVpc) => {
    expect(isCrossVpc(vpcView(config(), "vpc-a"), address)).toBe(crossVpc);
  });
  it("an LB without a VPC has only same-VPC members", () => expect(isCrossVpc(undefined, "10.0.0.1")).toBe(false));
});

describe("cross-VPC rules", () => {
  it("accepts 492 cross-VPC members across pools", () => {
    const c = config({ members: cross(300) });
    c.loadbalancers[0].pools.push({ id: "p2", protocol: "TCP", members: cross(192, 300) });
    expect(codes(c)).toEqual([]);
  });

  it.each<[string, any, string[], object?]>([
    ["rule 1: needs ip_target_enable", config({ enable: false, members: cross(1) }), [`${CROSSVPC_CODES.notEnabled} loadbalancers[0].pools[0].members[0].address`]],
    ["rule 2: IPv4 only", config({ members: [{ id: "v6", address: "fd00::5", protocol_port: 80 }] }), [`${CROSSVPC_CODES.ipv4Only} loadbalancers[0].pools[0].members[0].address`]],
    ["rule 3: TCP pools only", config({ protocol: "UDP", members: cross(1) }), [`${CROSSVPC_CODES.tcpOnly} loadbalancers[0].pools[0].members[0].address`]],
    ["rule 4: the 493rd member", config({ members: cross(493) }), [`${CROSSVPC_CODES.tooMany} loadbalancers[0].pools[0].members[492].address`]],
    // /27 = 32 addresses − 5 reserved − 12 used = 15 free
    ["rule 5: 15 free IPs", config({ subnet: "127.0.10.0/27", used: 12 }), [`${CROSSVPC_CODES.subnetCapacity} loadbalancers[0].ip_target_enable`]],
    ["rule 6: disabling after enable", config({ enable: false }), [`${CROSSVPC_CODES.cannotDisable} loadbalancers[0].ip_target_enable`], { everEnabled: new Set(["lb-x"]) }],
  ])("%s", (_name, c, expected, ctx) => {
    expect(codes(c, ctx)).toEqual(expected);
  });

  it("16 free IPs are enough, and the message shows the free count when not", () => {
    expect(codes(config({ subnet: "127.0.10.0/27", used: 11 }))).toEqual([]);
    const r = validateConfig(config({ subnet: "127.0.10.0/27", used: 12 }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]!.message).toContain("they have 15 free");
  });

  it("free = size − 5 reserved − used", () => {
    expect(subnetFreeIps(parseRange("10.0.0.0/24")!, 40)).toBe(211);
    expect(subnetFreeIps(parseRange("10.0.0.0/29")!, 0)).toBe(3);
    expect(subnetFreeIps(parseRange("10.0.0.0/30")!, 10)).toBe(0);
  });

  it("allocates 4 source addresses after the network, gateway and used ones", () => {
    const c = validateConfig(config());
    if (!c.ok) throw new Error("invalid");
    const lb = c.config.loadbalancers[0]!;
    expect(allocateSnatAddresses(lb, vpcView(c.config, "vpc-a"))).toEqual(["127.0.10.42", "127.0.10.43", "127.0.10.44", "127.0.10.45"]);
  });

  it("spills into the next backend subnet when one is nearly full", () => {
    const raw = config({ subnet: "127.0.10.0/28", used: 9 }); // .0 network, .1 gateway, .2-.10 used, .13-.15 reserved: .11 and .12 left
    raw.vpcs[0].subnets.push({ id: "sn2", cidr: "127.0.20.0/24", used_ips: 0 });
    raw.loadbalancers[0].elb_virsubnet_ids.push("sn2");
    const c = validateConfig(raw);
    if (!c.ok) throw new Error(JSON.stringify(c.problems));
    expect(allocateSnatAddresses(c.config.loadbalancers[0]!, vpcView(c.config, "vpc-a"))).toEqual(["127.0.10.11", "127.0.10.12", "127.0.20.2", "127.0.20.3"]);
  });
});
