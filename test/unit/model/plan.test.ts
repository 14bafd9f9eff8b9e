/** plan(current, next): table-driven over the changes a reload or member change makes. */
import { describe, expect, it } from "vitest";
import type { ListenerConfig } from "../../../src/config/schema.js";
import { isEmptyPlan, plan, type Plan } from "../../../src/model/plan.js";
import { EMPTY_SNAPSHOT, type LbSpec, type PoolSpec, type Snapshot } from "../../../src/model/snapshot.js";

const listener = (id: string, port: number, o: Partial<ListenerConfig> = {}): ListenerConfig => ({
  id,
  protocol: "TCP",
  protocol_port: port,
  default_pool_id: "p1",
  keepalive_timeout: 300,
  connection_limit: 0,
  admin_state_up: true,
  ipgroup: null,
  ...o,
});
const pool = (id: string, weights: number[] = [1]): PoolSpec => ({
  settings: {
    id,
    protocol: "TCP",
    lb_algorithm: "ROUND_ROBIN",
    session_persistence: null,
    slow_start: { enable: false, duration: 30 },
    connection_drain: { enable: false, timeout: 300 },
    pool_health: { minimum_healthy_member_count: 0 },
    client_ip: "auto",
    healthmonitor: null,
  },
  members: weights.map((weight, i) => ({
    config: { id: `${id}-m${i}`, address: "127.0.0.1", protocol_port: 9000 + i, weight, admin_state_up: true },
    status: "NO_MONITOR",
    crossVpc: false,
    ramp: null,
  })),
});
const lb = (o: Partial<LbSpec> = {}): LbSpec => ({ id: "lb", vip: "127.0.0.1", snat: [], listeners: [listener("l1", 80)], pools: [pool("p1")], ...o });
const snap = (...lbs: LbSpec[]): Snapshot => ({ version: 1, lbs });

/** The plan in short: "bind l1", "retire l1", "update l1", "add p1", "update p1", "remove p1", "lb+ lb", "lb- lb". */
function summary(p: Plan): string[] {
  return [
    ...p.lbs.upsert.map((l) => `lb+ ${l.id}`),
    ...p.lbs.remove.map((id) => `lb- ${id}`),
    ...p.retire.map((id) => `retire ${id}`),
    ...p.bind.map((s) => `bind ${s.listener.id}`),
    ...p.update.map((s) => `update ${s.listener.id}`),
    ...p.pools.add.map((s) => `add ${s.pool.settings.id}`),
    ...p.pools.update.map((s) => `update ${s.pool.settings.id}`),
    ...p.pools.remove.map((s) => `remove ${s.poolId}`),
  ];
}

const base = lb();
const p2 = pool("p2");
const cases: Array<{ name: string; from: Snapshot; to: Snapshot; want: string[] }> = [
  { name: "start from nothing", from: EMPTY_SNAPSHOT, to: snap(base), want: ["lb+ lb", "bind l1", "add p1"] },
  { name: "the same snapshot", from: snap(base), to: snap(base), want: [] },
  { name: "equal content, new objects (a reload of the same file)", from: snap(base), to: snap(lb()), want: ["update p1"] },
  { name: "a member's weight in one pool", from: snap(base), to: snap({ ...base, pools: [pool("p1", [5])] }), want: ["update p1"] },
  { name: "one of two pools changes; the other is shared", from: snap({ ...base, pools: [base.pools[0]!, p2] }), to: snap({ ...base, pools: [pool("p1", [2]), p2] }), want: ["update p1"] },
  { name: "a listener's limit (kept bound)", from: snap(base), to: snap({ ...base, listeners: [listener("l1", 80, { connection_limit: 10 })] }), want: ["update l1"] },
  { name: "a listener's port (bound anew)", from: snap(base), to: snap({ ...base, listeners: [listener("l1", 81)] }), want: ["retire l1", "bind l1"] },
  { name: "a listener's protocol (bound anew)", from: snap(base), to: snap({ ...base, listeners: [listener("l1", 80, { protocol: "UDP" })] }), want: ["retire l1", "bind l1"] },
  { name: "the load balancer's address (every listener bound anew)", from: snap(base), to: snap({ ...base, vip: "127.0.0.2" }), want: ["lb+ lb", "retire l1", "bind l1"] },
  { name: "a listener added", from: snap(base), to: snap({ ...base, listeners: [...base.listeners, listener("l2", 81)] }), want: ["bind l2"] },
  { name: "a listener removed", from: snap({ ...base, listeners: [...base.listeners, listener("l2", 81)] }), to: snap(base), want: ["retire l2"] },
  { name: "a pool added and one removed", from: snap(base), to: snap({ ...base, pools: [pool("p9")] }), want: ["add p9", "remove p1"] },
  { name: "SNAT addresses change", from: snap(base), to: snap({ ...base, snat: ["127.0.10.1"] }), want: ["lb+ lb"] },
  { name: "a load balancer removed", from: snap(base), to: snap(), want: ["retire l1", "remove p1", "lb- lb"] },
  {
    name: "a pool moves to another load balancer",
    from: snap(base, lb({ id: "lb2", listeners: [], pools: [] })),
    to: snap({ ...base, pools: [] }, lb({ id: "lb2", listeners: [], pools: [base.pools[0]!] })),
    want: ["remove p1", "add p1"],
  },
];

describe("plan", () => {
  it.each(cases)("$name", ({ from, to, want }) => {
    expect(summary(plan(from, to)).sort()).toEqual([...want].sort());
  });

  it("is empty exactly when nothing is to do", () => {
    expect(isEmptyPlan(plan(snap(base), snap(base)))).toBe(true);
    expect(isEmptyPlan(plan(snap(base), snap({ ...base, pools: [pool("p1", [5])] })))).toBe(false);
  });

  it("a snapshot that went through JSON plans as a whole new one against the old, and as nothing against itself", () => {
    const s = snap(base);
    const copy = JSON.parse(JSON.stringify(s)) as Snapshot;
    expect(copy).toEqual(s);
    expect(summary(plan(EMPTY_SNAPSHOT, copy)).sort()).toEqual(["add p1", "bind l1", "lb+ lb"]);
    expect(summary(plan(copy, copy))).toEqual([]);
  });
});
