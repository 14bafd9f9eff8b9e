/**
 * One address, one spelling: the schema stores canonical text (src/ip.ts), and duplicates,
 * member keys, Maglev tables and the reverse lookup all compare that text.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findMemberships } from "../../../src/admin/views.js";
import { validateConfig, parseConfig } from "../../../src/config/validate.js";
import { canonicalIp, canonicalRange, ipToBigInt, parseRange } from "../../../src/ip.js";
import { MemberRuntime } from "../../../src/model/member.js";
import { buildMaglevTable, MaglevScheduler } from "../../../src/scheduling/maglev.js";

describe("canonicalIp", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["fd00::5", "fd00::5"],
    ["FD00:0:0::5", "fd00::5"],
    ["fd00:0000:0000:0000:0000:0000:0000:0005", "fd00::5"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of two equal zero runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group is not "::"
    ["2001:DB8::0001", "2001:db8::1"],
    ["0::1", "::1"],
    ["::", "::"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["::ffff:10.0.0.1", "10.0.0.1"], // IPv4-mapped: the IPv4 address
    ["::FFFF:a00:1", "10.0.0.1"],
    ["0:0:0:0:0:ffff:0a00:0001", "10.0.0.1"],
    ["::1.2.3.4", "::102:304"], // IPv4-compatible (deprecated) stays IPv6
  ])("%s → %s", (input, out) => {
    expect(canonicalIp(input)).toBe(out);
    expect(canonicalIp(out)).toBe(out); // idempotent
  });

  it.each(["", "10.0.0.256", "010.0.0.1", "10.0.0", "10.0.0.0/8", "fe80::1%eth0", "fd00::5/64", " 10.0.0.1", "g::1", "1:2:3:4:5:6:7", "localhost"])("%j is not an address", (s) => {
    expect(canonicalIp(s)).toBeUndefined();
  });

  it("agrees with the WHATWG IPv6 serializer (RFC 5952) on generated addresses; mapped ones become IPv4", () => {
    fc.assert(
      fc.property(fc.ipV6(), (s) => {
        const whatwg = new URL(`http://[${s}]/`).hostname.slice(1, -1);
        const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(whatwg);
        const v4 = mapped ? ((parseInt(mapped[1]!, 16) << 16) | parseInt(mapped[2]!, 16)) >>> 0 : undefined;
        const expected = v4 === undefined ? whatwg : [24, 16, 8, 0].map((b) => (v4 >>> b) & 255).join(".");
        expect(canonicalIp(s)).toBe(expected);
        expect(ipToBigInt(canonicalIp(s)!)).toEqual(ipToBigInt(s));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("canonicalRange", () => {
  it.each([
    ["10.0.0.0/16", "10.0.0.0/16"],
    ["10.0.0.5/16", "10.0.0.0/16"],
    ["10.0.0.1/32", "10.0.0.1/32"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["FD00:0::/64", "fd00::/64"],
    ["fd00::1:2/112", "fd00::1:0/112"],
    ["::/0", "::/0"],
    ["::ffff:10.0.0.0/104", "10.0.0.0/8"],
    ["::ffff:0:0/96", "0.0.0.0/0"],
    [" 10.0.0.1 ", "10.0.0.1"],
    ["::FFFF:10.0.0.1", "10.0.0.1"],
  ])("%j → %s", (input, out) => {
    expect(canonicalRange(input)).toBe(out);
    const a = parseRange(input)!;
    const b = parseRange(out)!;
    expect([b.family, b.start, b.end]).toEqual([a.family, a.start, a.end]);
  });

  it.each(["10.0.0.0/33", "10.0.0.0/016", "fd00::/129", "10.0.0.0/", "/8", "10.0.0.0/8/8", "fd00::/-1"])("%j is refused", (s) => {
    expect(canonicalRange(s)).toBeUndefined();
    expect(parseRange(s)).toBeUndefined();
  });
});

function config(members: Array<{ id: string; address: string; protocol_port: number }>, vip = "127.0.0.1"): any {
  return {
    vpcs: [{ id: "vpc-a", cidrs: ["FD00:0::/64", "10.0.0.5/16"], subnets: [{ id: "sn-1", cidr: "10.0.10.9/24" }] }],
    loadbalancers: [
      {
        id: "lb-1",
        vpc_id: "vpc-a",
        vip_address: vip,
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: 8080, default_pool_id: "pool-1", ipgroup: { type: "white", ip_list: ["::FFFF:10.1.0.0/112", "FD00:0::1"] } }],
        pools: [{ id: "pool-1", protocol: "TCP", lb_algorithm: "SOURCE_IP", members }],
      },
    ],
  };
}

describe("the schema stores canonical addresses", () => {
  it("member address, vip_address, VPC and subnet CIDRs, ipgroup entries", () => {
    const c = parseConfig(config([{ id: "m-1", address: "FD00:0:0::5", protocol_port: 80 }, { id: "m-2", address: "::ffff:10.0.0.7", protocol_port: 80 }], "0:0::1"));
    const lb = c.loadbalancers[0]!;
    expect(lb.vip_address).toBe("::1");
    expect(lb.pools[0]!.members.map((m) => m.address)).toEqual(["fd00::5", "10.0.0.7"]);
    expect(c.vpcs[0]!.cidrs).toEqual(["fd00::/64", "10.0.0.0/16"]);
    expect(c.vpcs[0]!.subnets[0]!.cidr).toBe("10.0.10.0/24");
    expect(lb.listeners[0]!.ipgroup!.ip_list).toEqual(["10.1.0.0/16", "fd00::1"]);
    // Validating the result again changes nothing (the engine re-validates running configs).
    expect(parseConfig(c)).toEqual(c);
  });

  it("keeps the old messages for what is not an address", () => {
    const r = validateConfig(config([{ id: "m-1", address: "fd00::5%eth0", protocol_port: 80 }]));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([expect.objectContaining({ path: "loadbalancers[0].pools[0].members[0].address", message: "must be an IPv4 or IPv6 address (no prefix length)" })]);
  });
});

describe("one endpoint, whatever its spelling", () => {
  it.each([
    ["fd00::5", "fd00:0:0::5"],
    ["fd00::5", "FD00::0005"],
    ["10.0.0.7", "::ffff:10.0.0.7"],
    ["10.0.0.7", "::ffff:a00:7"],
  ])("%s and %s on one port are one backend (LB4.DUPLICATE_MEMBER)", (a, b) => {
    const r = validateConfig(config([{ id: "m-1", address: a, protocol_port: 80 }, { id: "m-2", address: b, protocol_port: 80 }]));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([expect.objectContaining({ path: "loadbalancers[0].pools[0].members[1].address", code: "LB4.DUPLICATE_MEMBER" })]);
    // On another port they are two members.
    expect(validateConfig(config([{ id: "m-1", address: a, protocol_port: 80 }, { id: "m-2", address: b, protocol_port: 81 }])).ok).toBe(true);
  });

  it("two load balancers on one VIP spelt two ways share its ports", () => {
    const c = config([]);
    c.loadbalancers[0].vip_address = "fd00::1";
    c.loadbalancers.push({ ...structuredClone(c.loadbalancers[0]), id: "lb-2", vip_address: "FD00:0::1", listeners: [{ id: "ls-2", protocol: "TCP", protocol_port: 8080, default_pool_id: "pool-2" }], pools: [{ id: "pool-2", protocol: "TCP" }] });
    const r = validateConfig(c);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toEqual(["loadbalancers[1].listeners[0].protocol_port"]);
  });

  it("reverse lookup finds a member by another spelling and shows the canonical one", () => {
    const c = parseConfig(config([{ id: "m-1", address: "fd00:0:0::15", protocol_port: 80 }, { id: "m-2", address: "::ffff:10.0.1.15", protocol_port: 80 }]));
    for (const q of ["fd00::15", "FD00::0:15", "fd00:0:0:0:0:0:0:15"]) {
      expect(findMemberships(c, { address: q }).map((m) => [m.member_id, m.address])).toEqual([["m-1", "fd00::15"]]);
    }
    for (const q of ["10.0.1.15", "::ffff:10.0.1.15", "::ffff:a00:10f"]) {
      expect(findMemberships(c, { address: q }).map((m) => [m.member_id, m.address])).toEqual([["m-2", "10.0.1.15"]]);
    }
    expect(findMemberships(c, { address: "not-an-ip" })).toEqual([]);
  });

  it("two configs that spell the same members differently build the same Maglev table and pick the same member", () => {
    const spellings = [
      ["fd00::5", "10.0.0.7", "fd00::1:0:0:1", "fd00::a"],
      ["FD00:0:0::5", "::ffff:10.0.0.7", "FD00:0:0:0:1::1", "fd00:0000::000a"],
    ];
    const runtimes = spellings.map((addrs) => {
      const c = parseConfig(config(addrs.map((address, i) => ({ id: `m-${i}`, address, protocol_port: 80 }))));
      return c.loadbalancers[0]!.pools[0]!.members.map((m) => Object.assign(new MemberRuntime(m, false), { effectiveWeight: 1 }));
    });
    const [a, b] = runtimes as [MemberRuntime[], MemberRuntime[]];
    expect(b.map((m) => m.key)).toEqual(a.map((m) => m.key));
    expect(a.map((m) => m.key)).toEqual(["[fd00::5]:80", "10.0.0.7:80", "[fd00::1:0:0:1]:80", "[fd00::a]:80"]);
    const sorted = (ms: MemberRuntime[]) => ms.map((m) => m.key).sort();
    expect(Buffer.from(buildMaglevTable(sorted(b)).buffer).equals(Buffer.from(buildMaglevTable(sorted(a)).buffer))).toBe(true);
    const sa = new MaglevScheduler<MemberRuntime>();
    const sb = new MaglevScheduler<MemberRuntime>();
    sa.update(a);
    sb.update(b);
    for (let i = 0; i < 1000; i++) {
      const ip = `198.51.${i >> 8}.${i & 255}`;
      expect(sb.pick({ ip, port: 40000 })!.id).toBe(sa.pick({ ip, port: 40000 })!.id);
    }
  });
});
