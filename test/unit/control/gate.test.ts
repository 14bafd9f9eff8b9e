/**
 * The gate for one member change says exactly what the whole-config gate says about the same
 * candidate (one home per rule), while sharing every untouched object with the running config.
 */
import { describe, expect, it } from "vitest";
import { gate, gateMemberChange } from "../../../src/control/gate.js";
import type { Config } from "../../../src/config/schema.js";
import { ConfigError } from "../../../src/errors.js";
import { emptyState } from "../../../src/state/store.js";

const running: Config = gate({
  vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "sn", cidr: "127.0.10.0/24", used_ips: 40 }] }],
  loadbalancers: [
    {
      id: "lb-1",
      vpc_id: "vpc-a",
      vip_address: "127.0.0.1",
      listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: 8080, default_pool_id: "p-0" }],
      pools: [
        { id: "p-0", protocol: "TCP", members: [{ id: "m-0", address: "127.0.0.10", protocol_port: 80 }] },
        { id: "p-1", protocol: "UDP", members: [{ id: "m-1", address: "127.0.0.11", protocol_port: 53 }] },
      ],
    },
  ],
});

type Outcome = { ok: true; config: Config } | { ok: false; codes: string[]; paths: string[] };
function outcome(fn: () => Config): Outcome {
  try {
    return { ok: true, config: fn() };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { ok: false, codes: err.problems.map((p) => p.code ?? ""), paths: err.problems.map((p) => p.path) };
  }
}

const cases: Array<{ name: string; pool: number; edit: (ms: unknown[]) => number; ok: boolean }> = [
  { name: "add a valid member", pool: 0, ok: true, edit: (ms) => ms.push({ id: "m-2", address: "127.0.0.12", protocol_port: 80 }) - 1 },
  { name: "add with a weight out of range", pool: 0, ok: false, edit: (ms) => ms.push({ id: "m-2", address: "127.0.0.12", protocol_port: 80, weight: 101 }) - 1 },
  { name: "add with an unknown field", pool: 0, ok: false, edit: (ms) => ms.push({ id: "m-2", address: "127.0.0.12", protocol_port: 80, wieght: 1 }) - 1 },
  { name: "add an id used in another pool", pool: 0, ok: false, edit: (ms) => ms.push({ id: "m-1", address: "127.0.0.12", protocol_port: 80 }) - 1 },
  { name: "add the same endpoint twice", pool: 0, ok: false, edit: (ms) => ms.push({ id: "m-2", address: "127.0.0.10", protocol_port: 80 }) - 1 },
  { name: "add a cross-VPC member without ip_target_enable", pool: 0, ok: false, edit: (ms) => ms.push({ id: "m-2", address: "10.1.0.5", protocol_port: 80 }) - 1 },
  { name: "a cross-VPC member in a UDP pool", pool: 1, ok: false, edit: (ms) => ms.push({ id: "m-2", address: "10.1.0.5", protocol_port: 53 }) - 1 },
  { name: "change a weight", pool: 0, ok: true, edit: (ms) => ((ms[0] = { ...(ms[0] as object), weight: 7 }), 0) },
  { name: "remove a member", pool: 0, ok: true, edit: (ms) => (ms.splice(0, 1), -1) },
];

describe("gateMemberChange", () => {
  it.each(cases)("$name: the same verdict and problems as the whole-config gate", ({ pool, edit, ok }) => {
    const members = running.loadbalancers[0]!.pools[pool]!.members.slice() as unknown[];
    const changed = edit(members);
    const whole = structuredClone(running) as unknown as { loadbalancers: Array<{ pools: Array<{ members: unknown[] }> }> };
    whole.loadbalancers[0]!.pools[pool]!.members = structuredClone(members);
    const full = outcome(() => gate(whole));
    const fast = outcome(() => gateMemberChange(running, { lbIndex: 0, poolIndex: pool, members, changed }, { state: emptyState() }));
    expect(fast.ok).toBe(ok);
    if (full.ok && fast.ok) expect(fast.config).toEqual(full.config);
    else expect(fast).toEqual(full);
  });

  it("shares every untouched object with the running config", () => {
    const members = [...running.loadbalancers[0]!.pools[0]!.members, { id: "m-2", address: "127.0.0.12", protocol_port: 80 }];
    const next = gateMemberChange(running, { lbIndex: 0, poolIndex: 0, members, changed: 1 });
    expect(next.loadbalancers[0]!.pools[1]).toBe(running.loadbalancers[0]!.pools[1]);
    expect(next.loadbalancers[0]!.listeners).toBe(running.loadbalancers[0]!.listeners);
    expect(next.loadbalancers[0]!.pools[0]!.members[0]).toBe(running.loadbalancers[0]!.pools[0]!.members[0]);
    expect(next.loadbalancers[0]!.pools[0]!.members[1]).toEqual({ id: "m-2", address: "127.0.0.12", protocol_port: 80, weight: 1, admin_state_up: true });
    expect(next.vpcs).toBe(running.vpcs);
  });
});
