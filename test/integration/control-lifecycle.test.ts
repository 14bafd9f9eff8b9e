/**
 * Member lifecycle decided by the control plane, on fake time with real sockets: slow start
 * (starts at the first ONLINE with a monitor, at once without, only for members added to a
 * pool that had members, never twice), and a member whose address changes on reload.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock, FakeTimers } from "../../src/clock.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { freePort, nameServer, waitFor, type TestServer } from "../helpers/net.js";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function servers(n: number): Promise<TestServer[]> {
  const out = await Promise.all(Array.from({ length: n }, (_, i) => nameServer(`s${i}`)));
  for (const s of out) cleanup.push(() => s.close());
  return out;
}

async function boot(pool: Record<string, unknown>, members: Array<{ id: string; port: number }>) {
  const clock = new FakeClock(1_000_000);
  const timers = new FakeTimers(clock);
  const config = (ms: Array<{ id: string; port: number }>): ConfigInput => ({
    log: { level: "silent" },
    loadbalancers: [
      {
        id: "lb",
        vip_address: "127.0.0.1",
        listeners: [{ id: "l", protocol: "TCP", protocol_port: port, default_pool_id: "p" }],
        pools: [{ id: "p", protocol: "TCP", lb_algorithm: "ROUND_ROBIN", ...pool, members: ms.map((m) => ({ id: m.id, address: "127.0.0.1", protocol_port: m.port })) }],
      },
    ],
  });
  const port = await freePort();
  const h: LoadBalancerHandle = await startLoadBalancer(config(members), { clock, timers, random: () => 0, tuning: { tickMs: 100 } });
  cleanup.push(() => h.close({ graceMs: 0 }));
  const weight = (id: string) => h.engine.pool("p")!.members.get(id)!.effectiveWeight;
  return { h, clock, timers, weight, config };
}

describe("slow start through the control plane", () => {
  it("without a monitor: a member added to a populated pool ramps from near 0 at once; members present at start do not", async () => {
    const [a, b] = await servers(2);
    const { h, timers, weight } = await boot({ slow_start: { enable: true, duration: 100 } }, [{ id: "a", port: a!.port }]);
    expect(weight("a")).toBe(1);
    await h.addMember("p", { id: "b", address: "127.0.0.1", protocol_port: b!.port });
    expect(weight("b")).toBeCloseTo(0.01, 5);
    await timers.advance(50_000);
    expect(weight("b")).toBeCloseTo(0.5, 2);
    await timers.advance(50_100);
    expect(weight("b")).toBe(1);
  });

  it("with a monitor: the ramp starts at the first ONLINE and a flap later does not restart it", async () => {
    const [a, b] = await servers(2);
    const monitor = { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 };
    const { h, timers, weight } = await boot({ slow_start: { enable: true, duration: 100 }, healthmonitor: monitor }, [{ id: "a", port: a!.port }]);
    await timers.advance(0);
    await waitFor(() => weight("a") === 1, 3000, "a ONLINE");
    await h.addMember("p", { id: "b", address: "127.0.0.1", protocol_port: b!.port });
    expect(weight("b")).toBe(0); // OFFLINE until its first check
    await timers.advance(0);
    await waitFor(() => h.engine.memberHealth("p", "b") === "ONLINE", 3000, "b ONLINE");
    expect(weight("b")).toBeCloseTo(0.01, 5);
    await timers.advance(40_000);
    await waitFor(() => weight("b") > 0.35, 3000, "ramp at 40%");
    expect(weight("b")).toBeCloseTo(0.4, 1);
    // Flap: b stops listening, goes OFFLINE, comes back; the ramp keeps its start.
    const bPort = b!.port;
    await b!.close();
    await timers.advance(1000);
    await waitFor(() => h.engine.memberHealth("p", "b") === "OFFLINE", 3000, "b OFFLINE");
    expect(weight("b")).toBe(0);
    const b2 = await nameServer("s1", "127.0.0.1", bPort);
    cleanup.push(() => b2.close());
    await timers.advance(1000);
    await waitFor(() => h.engine.memberHealth("p", "b") === "ONLINE", 3000, "b ONLINE again");
    await timers.advance(100);
    expect(weight("b")).toBeGreaterThan(0.4);
    expect(weight("b")).toBeLessThan(0.5);
  });
});

describe("a member whose address changes on reload", () => {
  it("is unchecked at its new address: OFFLINE, not the old address's ONLINE", async () => {
    const [a] = await servers(1);
    const dead = await freePort();
    const monitor = { type: "TCP", delay: 50, timeout: 1, max_retries: 1, max_retries_down: 1 };
    const { h, timers, weight, config } = await boot({ healthmonitor: monitor }, [{ id: "a", port: a!.port }]);
    await timers.advance(0);
    await waitFor(() => weight("a") === 1, 3000, "a ONLINE");
    const r = config([{ id: "a", port: dead }]);
    (r.loadbalancers![0]!.pools![0] as { healthmonitor: unknown }).healthmonitor = monitor;
    await h.reload(r);
    expect(h.engine.memberHealth("p", "a")).toBe("UNCHECKED");
    expect(h.engine.pool("p")!.members.get("a")!.status).toBe("OFFLINE");
    expect(weight("a")).toBe(0);
  });
});
