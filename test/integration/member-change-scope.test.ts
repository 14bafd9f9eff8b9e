/**
 * A runtime member change touches only what it changes (issue 12 item 6): other members'
 * health checks are not restarted, so a check in flight during an admin write still counts.
 */
import { afterEach, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { FakeClock, FakeTimers } from "../../src/clock.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { freePort, waitFor } from "../helpers/net.js";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe("member change scope", () => {
  it("a health check in flight while another member is added still brings its member ONLINE", async () => {
    const held: http.ServerResponse[] = [];
    const backend = http.createServer((_req, res) => held.push(res));
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => backend.close(r)));
    cleanup.push(async () => backend.closeAllConnections());
    const bport = (backend.address() as AddressInfo).port;

    const clock = new FakeClock(0);
    const timers = new FakeTimers(clock);
    const h: LoadBalancerHandle = await startLoadBalancer(
      {
        log: { level: "silent" },
        loadbalancers: [
          {
            id: "lb-1",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: await freePort(), default_pool_id: "p" }],
            pools: [
              {
                id: "p",
                protocol: "TCP",
                healthmonitor: { type: "HTTP", delay: 5, timeout: 10, max_retries: 1, max_retries_down: 1 },
                members: [{ id: "m-0", address: "127.0.0.1", protocol_port: bport }],
              },
            ],
          },
        ],
      },
      { clock, timers, random: () => 0 },
    );
    cleanup.push(() => h.close({ graceMs: 0 }));

    await timers.advance(0); // the first check starts and waits for the held response
    await waitFor(() => held.length === 1, 3000, "the check request to arrive");
    await h.addMember("p", { id: "m-1", address: "127.0.0.2", protocol_port: 9 });
    held[0]!.writeHead(200).end();
    await waitFor(() => h.engine.memberHealth("p", "m-0") === "ONLINE", 3000, "m-0 to come ONLINE from the check in flight");
    expect(h.engine.pool("p")!.members.get("m-0")!.status).toBe("ONLINE");
  });
});
