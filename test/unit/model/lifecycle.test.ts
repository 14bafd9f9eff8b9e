/** Member lifecycle on a fake clock: slow start, persistence, fail-open, drain deadlines. */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../../src/clock.js";
import { validateConfig } from "../../../src/config/validate.js";
import type { PoolConfig } from "../../../src/config/schema.js";
import { MemberRuntime } from "../../../src/model/member.js";
import { PoolRuntime } from "../../../src/model/pool.js";
import { PersistenceTable } from "../../../src/persistence/table.js";
import { rampForNewMember } from "../../../src/scheduling/weights.js";

function poolConfig(extra: Record<string, unknown> = {}, members: Array<{ id: string; weight?: number }> = []): PoolConfig {
  const r = validateConfig({
    loadbalancers: [
      {
        id: "lb",
        vip_address: "127.0.0.1",
        pools: [{ id: "p", protocol: "TCP", ...extra, members: members.map((m, i) => ({ address: "10.0.0.1", protocol_port: 1000 + i, weight: 10, ...m })) }],
      },
    ],
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config.loadbalancers[0]!.pools[0]!;
}

function pool(cfg: PoolConfig, clock: FakeClock, monitored = false): PoolRuntime {
  const p = new PoolRuntime("lb", cfg, () => clock.now());
  for (const mc of cfg.members) p.members.set(mc.id, new MemberRuntime(mc, monitored));
  return p;
}

function shares(p: PoolRuntime, n: number, ips?: (i: number) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const m = p.pick({ ip: ips ? ips(i) : "1.1.1.1", port: i })!;
    out.set(m.id, (out.get(m.id) ?? 0) + 1);
  }
  return out;
}

describe("slow start", () => {
  it.each([
    [{ enable: true, duration: 30 }, true, false, false, true],
    [{ enable: true, duration: 30 }, false, false, false, false], // first member of an empty pool
    [{ enable: true, duration: 30 }, true, true, false, false], // present at start-up
    [{ enable: false, duration: 30 }, true, false, false, false],
  ])("rampForNewMember(%j, hadMembers=%s, startup=%s, monitored=%s) → ramps=%s", (slowStart, poolHadMembers, startup, monitored, ramps) => {
    expect(rampForNewMember({ slowStart, poolHadMembers, startup, monitored, now: 5 }) !== undefined).toBe(ramps);
  });

  it("starts at once without a monitor, at the first ONLINE with one", () => {
    expect(rampForNewMember({ slowStart: { enable: true, duration: 100 }, poolHadMembers: true, startup: false, monitored: false, now: 7 })?.startedAt).toBe(7);
    const m = new MemberRuntime({ id: "x", address: "10.0.0.9", protocol_port: 1, weight: 10, admin_state_up: true }, true);
    m.ramp = rampForNewMember({ slowStart: { enable: true, duration: 100 }, poolHadMembers: true, startup: false, monitored: true, now: 7 });
    expect(m.ramp?.startedAt).toBeUndefined();
    m.setHealth(true, 500);
    expect(m.ramp?.startedAt).toBe(500);
  });

  it("a member added with a 100 s ramp gets a share that follows the linear ramp (±2 pp)", () => {
    const clock = new FakeClock(0);
    const cfg = poolConfig({ slow_start: { enable: true, duration: 100 } }, [{ id: "a" }, { id: "b" }]);
    const p = pool(cfg, clock);
    p.refresh(0);
    const c = new MemberRuntime({ id: "c", address: "10.0.0.2", protocol_port: 1, weight: 10, admin_state_up: true }, false);
    c.ramp = rampForNewMember({ slowStart: cfg.slow_start, poolHadMembers: true, startup: false, monitored: false, now: 0 });
    p.members.set("c", c);
    for (const t of [0, 25, 50, 75, 100]) {
      clock.set(t * 1000);
      p.refresh(clock.now());
      const s = shares(p, 10_000);
      const w = 10 * Math.max(0.01, Math.min(1, t / 100));
      const expected = w / (20 + w);
      expect(Math.abs((s.get("c") ?? 0) / 10_000 - expected), `t=${t}s`).toBeLessThanOrEqual(0.02);
    }
    expect(c.ramp?.ended).toBe(true);
  });

  it("a started ramp continues through a flap, and never restarts once ended", () => {
    const clock = new FakeClock(0);
    const cfg = poolConfig({ slow_start: { enable: true, duration: 100 } }, [{ id: "a" }]);
    const p = pool(cfg, clock, true);
    p.members.get("a")!.setHealth(true, 0);
    const c = new MemberRuntime({ id: "c", address: "10.0.0.2", protocol_port: 1, weight: 10, admin_state_up: true }, true);
    c.ramp = rampForNewMember({ slowStart: cfg.slow_start, poolHadMembers: true, startup: false, monitored: true, now: 0 });
    p.members.set("c", c);
    clock.set(10_000);
    c.setHealth(true, clock.now()); // ramp starts at t=10 s
    clock.set(40_000);
    c.setHealth(false, clock.now()); // flap
    p.refresh(clock.now());
    expect(c.effectiveWeight).toBe(0);
    clock.set(60_000);
    c.setHealth(true, clock.now());
    p.refresh(clock.now());
    expect(c.effectiveWeight).toBeCloseTo(5, 5); // (60−10)/100 of 10: the clock kept running
    clock.set(120_000);
    p.refresh(clock.now());
    expect(c.effectiveWeight).toBe(10);
    expect(c.ramp?.ended).toBe(true);
    c.setHealth(false, 130_000);
    c.setHealth(true, 140_000);
    clock.set(140_000);
    p.refresh(clock.now());
    expect(c.effectiveWeight).toBe(10); // no second ramp
  });
});

describe("session persistence", () => {
  it("keeps a client on its member for the timeout, then re-places it", () => {
    const clock = new FakeClock(0);
    const p = pool(poolConfig({ session_persistence: { type: "SOURCE_IP", persistence_timeout: 1 } }, [{ id: "a" }, { id: "b" }, { id: "c" }]), clock);
    p.refresh(0);
    const first = p.pick({ ip: "9.9.9.9", port: 1 })!;
    for (let i = 0; i < 50; i++) {
      clock.advance(1000);
      expect(p.pick({ ip: "9.9.9.9", port: i })!.id).toBe(first.id);
    }
    // Other clients still rotate.
    expect(new Set([1, 2, 3, 4, 5, 6].map((i) => p.pick({ ip: `8.8.8.${i}`, port: 1 })!.id)).size).toBe(3);
    clock.advance(61_000); // idle past 1 minute
    p.persistence!.expire(clock.now());
    expect(p.persistence!.get("9.9.9.9", clock.now())).toBeUndefined();
  });

  it("moves a client when its member goes OFFLINE", () => {
    const clock = new FakeClock(0);
    const p = pool(poolConfig({ session_persistence: { type: "SOURCE_IP" } }, [{ id: "a" }, { id: "b" }]), clock, true);
    for (const m of p.members.values()) m.setHealth(true, 0);
    p.refresh(0);
    const first = p.pick({ ip: "9.9.9.9", port: 1 })!;
    first.setHealth(false, 1);
    p.refresh(1);
    const moved = p.pick({ ip: "9.9.9.9", port: 2 })!;
    expect(moved.id).not.toBe(first.id);
    first.setHealth(true, 2);
    p.refresh(2);
    expect(p.pick({ ip: "9.9.9.9", port: 3 })!.id).toBe(moved.id); // stays on the new one
  });

  it("stays under its cap with 100,000 distinct client IPs", () => {
    const t = new PersistenceTable<string>(60_000, 10_000);
    for (let i = 0; i < 100_000; i++) t.set(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, "m", i);
    expect(t.size).toBe(10_000);
    expect(t.get("10.1.134.159", 99_999)).toBe("m"); // the newest survive
    expect(t.get("10.0.0.0", 99_999)).toBeUndefined(); // the oldest were evicted
    expect(t.expire(99_999 + 60_000 - 5_000)).toBe(5_000); // lastSeen 90,000..94,999 are idle ≥ 60 s
  });
});

describe("fail-open and drain", () => {
  it.each([
    [0, 0],
    [1, 2],
  ])("minimum_healthy_member_count %d with all members offline → %d eligible", (min, eligible) => {
    const clock = new FakeClock(0);
    const p = pool(poolConfig({ pool_health: { minimum_healthy_member_count: min } }, [{ id: "a" }, { id: "b" }, { id: "z", weight: 0 }]), clock, true);
    p.refresh(0);
    expect(p.eligible.length).toBe(eligible);
    expect(p.failOpen).toBe(min === 1);
    expect(p.pick({ ip: "1.1.1.1", port: 1 }) === undefined).toBe(eligible === 0);
  });

  it("sets a drain deadline when a member leaves (weight 0, offline, removed) and clears it when it returns", () => {
    const clock = new FakeClock(1000);
    const p = pool(poolConfig({ connection_drain: { enable: true, timeout: 10 } }, [{ id: "a" }, { id: "b" }]), clock);
    p.refresh(1000);
    const a = p.members.get("a")!;
    a.config = { ...a.config, weight: 0 };
    p.refresh(2000);
    expect(a.drainDeadline).toBe(12_000);
    a.config = { ...a.config, weight: 5 };
    p.refresh(3000);
    expect(a.drainDeadline).toBe(Infinity);
    const b = p.members.get("b")!;
    b.active = 1;
    p.remove("b", 4000);
    expect(b.drainDeadline).toBe(14_000);
    expect(p.leaving.has(b)).toBe(true);
  });

  it("without drain, leaving sets no deadline", () => {
    const clock = new FakeClock(0);
    const p = pool(poolConfig({}, [{ id: "a" }]), clock);
    p.refresh(0);
    p.remove("a", 1);
    expect(p.leaving.size).toBe(0);
  });
});
