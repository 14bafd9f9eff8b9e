/**
 * A data plane built from a snapshot that went through JSON (what a worker process receives)
 * serves traffic, and a later snapshot changes it as a plan says (issue 13).
 */
import { afterEach, describe, expect, it } from "vitest";
import { systemClock, systemTimers } from "../../src/clock.js";
import { gate } from "../../src/control/gate.js";
import { SnapshotBuilder, type MemberFacts } from "../../src/control/snapshot-builder.js";
import { DataPlane } from "../../src/dataplane/dataplane.js";
import { silentLogger } from "../../src/log.js";
import type { Snapshot } from "../../src/model/snapshot.js";
import { freePort, nameServer, request, waitFor, type TestServer } from "../helpers/net.js";

const facts: MemberFacts = { status: () => "NO_MONITOR", ramp: () => null, crossVpc: () => false, snat: () => [] };
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function backends(...names: string[]): Promise<TestServer[]> {
  const out = await Promise.all(names.map((n) => nameServer(n)));
  for (const s of out) cleanup.push(() => s.close());
  return out;
}

describe("data plane from a serialised snapshot", () => {
  it("serves from a JSON round-tripped snapshot, then follows a weight change and a new listener", async () => {
    const [a, b] = await backends("a", "b");
    const [port, port2] = [await freePort(), await freePort()];
    const config = (weightB: number, second: boolean) =>
      gate({
        loadbalancers: [
          {
            id: "lb",
            vip_address: "127.0.0.1",
            listeners: [
              { id: "l1", protocol: "TCP", protocol_port: port, default_pool_id: "p" },
              ...(second ? [{ id: "l2", protocol: "TCP" as const, protocol_port: port2, default_pool_id: "p" }] : []),
            ],
            pools: [
              {
                id: "p",
                protocol: "TCP",
                members: [
                  { id: "ma", address: "127.0.0.1", protocol_port: a!.port, weight: 1 },
                  { id: "mb", address: "127.0.0.1", protocol_port: b!.port, weight: weightB },
                ],
              },
            ],
          },
        ],
      });
    const builder = new SnapshotBuilder();
    const wire = (s: Snapshot) => JSON.parse(JSON.stringify(s)) as Snapshot;
    const dp = new DataPlane({ logger: silentLogger(), clock: systemClock, timers: systemTimers, tuning: { connectTimeoutMs: 1000, tickMs: 100 } });
    cleanup.push(() => dp.close());
    cleanup.push(() => dp.destroyAll());
    cleanup.push(() => dp.stopAccepting());

    await dp.apply(wire(builder.build(config(1, false), facts)));
    const served: string[] = [];
    for (let i = 0; i < 4; i++) served.push(await request(port));
    expect(served).toEqual(["a", "b", "a", "b"]);

    // Weight 0 for b, and a second listener: from another JSON copy.
    await dp.apply(wire(builder.build(config(0, true), facts)));
    const after: string[] = [];
    for (let i = 0; i < 3; i++) after.push(await request(port));
    expect(after).toEqual(["a", "a", "a"]);
    expect(await request(port2)).toBe("a");
    await waitFor(() => dp.activeConnections === 0, 3000, "connections back to 0");
    expect(dp.pool("p")!.members.get("mb")!.effectiveWeight).toBe(0);
  });
});
