/**
 * The wire form of a snapshot for a worker: unchanged parts go as references and come back
 * as the worker's own objects, so its plan() skips them by identity (issue 14).
 */
import { describe, expect, it } from "vitest";
import { plan, isEmptyPlan } from "../../../src/model/plan.js";
import { EMPTY_SNAPSHOT, type LbSpec, type MemberSpec, type PoolSpec, type Snapshot } from "../../../src/model/snapshot.js";
import { fromWire, toWire } from "../../../src/workers/snapshot-wire.js";

const member = (id: string, port: number): MemberSpec =>
  ({ config: { id, name: id, address: "127.0.0.1", protocol_port: port, weight: 1, admin_state_up: true, instance_id: null }, status: "NO_MONITOR", crossVpc: false, ramp: null }) as unknown as MemberSpec;
const pool = (id: string, members: MemberSpec[]): PoolSpec => ({ settings: { id, protocol: "TCP", lb_algorithm: "ROUND_ROBIN" } as unknown as PoolSpec["settings"], members });
const lb = (id: string, pools: PoolSpec[]): LbSpec => ({ id, vip: "127.0.0.1", snat: [], listeners: [], pools });

/** What a worker holds after receiving `next` over JSON, having run `had` (also received over JSON). */
const receive = (workerHad: Snapshot, primaryHad: Snapshot, next: Snapshot): Snapshot => fromWire(workerHad, JSON.parse(JSON.stringify(toWire(primaryHad, next))));

describe("snapshot wire form", () => {
  const m1 = member("m1", 1);
  const m2 = member("m2", 2);
  const p1 = pool("p1", [m1, m2]);
  const p2 = pool("p2", [member("m3", 3)]);
  const s1: Snapshot = { version: 1, lbs: [lb("lb1", [p1, p2]), lb("lb2", [pool("p9", [])])] };

  it("a first snapshot goes whole and arrives equal", () => {
    const w = toWire(EMPTY_SNAPSHOT, s1);
    expect(JSON.stringify(w)).not.toContain('"same"');
    expect(receive(EMPTY_SNAPSHOT, EMPTY_SNAPSHOT, s1)).toEqual(s1);
  });

  it.each([
    ["nothing changed but the version", (s: Snapshot): Snapshot => ({ version: 2, lbs: s.lbs }), ['{"same":"lb1"}', '{"same":"lb2"}'], 0],
    ["one member changed", (s: Snapshot): Snapshot => ({ version: 2, lbs: [lb("lb1", [pool("p1", [m1, member("m2", 22)]), p2]), s.lbs[1]!] }), ['{"same":"m1"}', '{"same":"p2"}', '{"same":"lb2"}'], 1],
    ["a pool added", (s: Snapshot): Snapshot => ({ version: 2, lbs: [lb("lb1", [p1, p2, pool("p3", [])]), s.lbs[1]!] }), ['{"same":"p1"}', '{"same":"p2"}'], 1],
  ])("%s: unchanged parts are references and keep their identity", (_name, change, refs, poolsPlanned) => {
    const worker1 = receive(EMPTY_SNAPSHOT, EMPTY_SNAPSHOT, s1);
    const s2 = change(s1);
    const wire = JSON.stringify(toWire(s1, s2));
    for (const r of refs) expect(wire).toContain(r);
    const worker2 = receive(worker1, s1, s2);
    expect(worker2).toEqual(s2);
    // What did not change is the very object the worker had: plan() skips it.
    const p = plan(worker1, worker2);
    expect(p.pools.update.length + p.pools.add.length).toBe(poolsPlanned);
    if (poolsPlanned === 0) expect(isEmptyPlan(p)).toBe(true);
    expect(worker2.lbs[1]).toBe(worker1.lbs[1]);
  });

  it("a reference the worker cannot resolve is an error that names it", () => {
    expect(() => fromWire(EMPTY_SNAPSHOT, { version: 3, lbs: [{ same: "lb1" }] })).toThrow(/load balancer "lb1"/);
  });
});
