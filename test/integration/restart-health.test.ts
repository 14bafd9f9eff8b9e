/**
 * Health across a restart, in process on fake time (SPEC §4): a new member is OFFLINE with
 * health UNCHECKED until its first check; after a restart a known member keeps its last
 * health and is checked within 1 s, whatever `delay` and the random first moment say.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FakeClock, FakeTimers } from "../../src/clock.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { engineRuntime } from "../../src/admin/routes.js";
import { memberView } from "../../src/admin/views.js";
import { freePort, nameServer, request, waitFor, type TestServer } from "../helpers/net.js";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function boot(stateDir: string, port: number, backend: TestServer): Promise<{ h: LoadBalancerHandle; timers: FakeTimers }> {
  const clock = new FakeClock(10_000);
  const timers = new FakeTimers(clock);
  const config: ConfigInput = {
    state_dir: stateDir,
    log: { level: "silent" },
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
        pools: [
          {
            id: "pool-1",
            protocol: "TCP",
            healthmonitor: { type: "TCP", delay: 50, timeout: 3, max_retries: 3, max_retries_down: 3 },
            members: [{ id: "m-1", address: "127.0.0.1", protocol_port: backend.port }],
          },
        ],
      },
    ],
  };
  // random 0.99: a new member's first check lands at 49.5 s of the 50 s delay.
  const h = await startLoadBalancer(config, { clock, timers, random: () => 0.99, persistState: true });
  cleanup.push(() => h.close({ graceMs: 0 }));
  return { h, timers };
}

function view(h: LoadBalancerHandle) {
  const lb = h.config.loadbalancers[0]!;
  const pool = lb.pools[0]!;
  return memberView(h.config, lb, pool, pool.members[0]!, engineRuntime(h.engine));
}

describe("health across a restart", () => {
  it("new: OFFLINE + UNCHECKED until the first check; restarted: keeps ONLINE and is checked within 1 s", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "lb4-restart-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const backend = await nameServer("b1");
    cleanup.push(() => backend.close());
    const port = await freePort();

    const first = await boot(dir, port, backend);
    expect(view(first.h)).toMatchObject({ operating_status: "OFFLINE", health: "UNCHECKED" });
    await first.timers.advance(49_400);
    expect(backend.accepted).toBe(0);
    expect(view(first.h).health).toBe("UNCHECKED");
    await first.timers.advance(100);
    await waitFor(() => view(first.h).health === "ONLINE", 3000, "the first check to pass");
    expect(view(first.h)).toMatchObject({ operating_status: "ONLINE", health: "ONLINE" });
    await first.h.close({ graceMs: 0 });

    const second = await boot(dir, port, backend);
    const checksBefore = backend.accepted;
    // Served at once: no check has run since the restart.
    expect(view(second.h)).toMatchObject({ operating_status: "ONLINE", health: "ONLINE" });
    expect(await request(port)).toBe("b1");
    expect(backend.accepted).toBe(checksBefore + 1);
    await second.timers.advance(1000);
    await waitFor(() => backend.accepted === checksBefore + 2, 3000, "the first check after the restart");
  });
});
