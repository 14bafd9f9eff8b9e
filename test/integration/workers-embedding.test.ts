/**
 * Embedding with workers (SPEC §10, issue 14): startLoadBalancer stays in this process unless
 * it is given `workers`; with workers: 2 this process is the primary and two workers serve TCP.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { freePort, nameServer, request, waitFor, type TestServer } from "../helpers/net.js";
import { alive } from "../helpers/workers.js";

const servers: TestServer[] = [];
let lb: LoadBalancerHandle | undefined;
afterEach(async () => {
  await lb?.close({ graceMs: 0 });
  lb = undefined;
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function config(port: number, a: number, b: number) {
  return {
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP" as const, protocol_port: port, default_pool_id: "pool-1" }],
        pools: [
          {
            id: "pool-1",
            protocol: "TCP" as const,
            members: [
              { id: "m-a", address: "127.0.0.1", protocol_port: a, weight: 3 },
              { id: "m-b", address: "127.0.0.1", protocol_port: b, weight: 1 },
            ],
          },
        ],
      },
    ],
  };
}

describe("embedding and workers", () => {
  it("without workers everything runs in this process", async () => {
    const [a, b] = [await nameServer("a"), await nameServer("b")];
    servers.push(a, b);
    const port = await freePort();
    lb = await startLoadBalancer(config(port, a.port, b.port));
    expect(lb.engine.workers()).toEqual([]);
    expect(await request(port)).toBe("a");
  });

  it("workers: 2 forks two workers that serve by weight, report instance totals, and exit on close", async () => {
    const [a, b] = [await nameServer("a"), await nameServer("b")];
    servers.push(a, b);
    const port = await freePort();
    lb = await startLoadBalancer(config(port, a.port, b.port), { workers: 2 });
    const workers = lb.engine.workers();
    expect(workers).toHaveLength(2);
    expect(workers.every((w) => w.ready && w.pid !== process.pid && alive(w.pid))).toBe(true);

    const got = { a: 0, b: 0 } as Record<string, number>;
    for (let i = 0; i < 80; i++) got[await request(port)]! += 1;
    // Each worker runs 3:1 over its share: within one per worker of 60:20.
    expect(got.a! + got.b!).toBe(80);
    expect(Math.abs(got.a! - 60)).toBeLessThanOrEqual(1);

    await lb.engine.refreshCounters();
    expect(lb.engine.listener("ls-1")!.stats.total).toBe(80);
    expect(lb.engine.pool("pool-1")!.members.get("m-a")!.total).toBe(got.a);

    const pids = workers.map((w) => w.pid);
    await lb.close({ graceMs: 0 });
    lb = undefined;
    await waitFor(() => pids.every((p) => !alive(p)), 5000, "the workers to exit");
  });
});
