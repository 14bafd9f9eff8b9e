/**
 * Slowloris on the admin API: many connections that send half a request and then trickle a
 * byte now and then. Other admin requests (reads and a write) are still answered meanwhile,
 * and lb4 closes the half-sent ones itself (its headers timeout), so they cannot pile up.
 */
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitFor } from "../helpers/net.js";
import { envInt } from "./helpers/env.js";
import { figure, percentile } from "./helpers/figures.js";
import { adminBase, TOKEN, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";

const SLOW = envInt("LB4_SLOWLORIS_CONNECTIONS", 1000);
/** How long lb4 may take to close them: Node's headers timeout is checked on an interval, so allow both and margin. */
const CLOSE_BOUND_MS = 90_000;

describe("slowloris on the admin API", () => {
  let dir: string;
  const sockets: net.Socket[] = [];
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-slow-"));
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await killAllLb4();
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${SLOW} half-sent requests: other requests are answered, lb4 closes the half-sent ones (headers timeout)`, async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const lb = await Lb4Proc.start({
      config: {
        ...adminBase(adminPort, path.join(dir, "state")),
        loadbalancers: [
          {
            id: "lb-s",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-s", protocol: "TCP", protocol_port: port, default_pool_id: "pool-s" }],
            pools: [{ id: "pool-s", protocol: "TCP", members: [{ id: "m1", address: "127.0.0.1", protocol_port: 9 }] }],
          },
        ],
      },
      file: path.join(dir, "lb4.yaml"),
      adminUrl: `http://127.0.0.1:${adminPort}`,
    });

    // Open them in batches so the test's own connects are not what fails.
    const closedAt = new Map<net.Socket, number>();
    const firstBytes = new Map<net.Socket, string>();
    const openedAt = Date.now();
    for (let i = 0; i < SLOW; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, SLOW - i) }, () => {
          const s = net.connect({ host: "127.0.0.1", port: adminPort });
          sockets.push(s);
          s.on("error", () => undefined);
          s.on("data", (c: Buffer) => {
            if (!firstBytes.has(s)) firstBytes.set(s, c.toString("latin1").split("\r\n")[0]!);
          });
          s.on("close", () => closedAt.set(s, Date.now()));
          return new Promise<void>((resolve) => {
            s.once("connect", () => {
              s.write(`GET /v3/elb/pools HTTP/1.1\r\nHost: 127.0.0.1:${adminPort}\r\nX-Auth-Token: ${TOKEN}\r\nX-Slow: a`);
              resolve();
            });
            s.once("close", () => resolve());
          });
        }),
      );
    }
    const openOk = sockets.filter((s) => !closedAt.has(s)).length;
    // Trickle one header byte per connection per second, as slowloris does, until lb4 closes them (bounded).
    const trickle = setInterval(() => {
      for (const s of sockets) if (!closedAt.has(s) && s.writable) s.write("a");
    }, 1000);

    try {
      const latencies: number[] = [];
      const statuses: Record<string, number> = {};
      for (let i = 0; i < 100; i++) {
        const t0 = performance.now();
        const r = await lb.api("GET", i % 2 ? "/healthz" : "/v3/elb/pools", { timeoutMs: 10_000 }).catch((e: Error) => ({ status: e.message }));
        latencies.push(performance.now() - t0);
        statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
      }
      const write = await lb.api("POST", "/v3/elb/pools/pool-s/members", { body: { member: { id: "m-during", address: "127.0.0.1", protocol_port: 10 } } }).catch((e: Error) => ({ status: e.message }));
      const stillOpen = sockets.filter((s) => !closedAt.has(s)).length;

      // lb4 must close every half-sent request by itself.
      await waitFor(() => closedAt.size === sockets.length, CLOSE_BOUND_MS, "lb4 to close every half-sent request").catch(() => undefined);
      const closedByLb4 = closedAt.size;
      const times = [...closedAt.values()].map((t) => t - openedAt);
      const answered408 = [...firstBytes.values()].filter((l) => l.includes(" 408")).length;
      const after = await lb.api("GET", "/healthz").then((r) => r.status);

      figure(
        "admin: slowloris",
        `${openOk}/${SLOW} half-sent requests held, ${stillOpen} still open during 100 other requests: ${JSON.stringify(statuses)}, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; a write → ${write.status}; lb4 closed ${closedByLb4}/${sockets.length} (${answered408} with 408) ${(percentile(times, 0) / 1000).toFixed(0)}–${(Math.max(...times) / 1000).toFixed(0)} s after opening`,
        "other admin requests answered; every half-sent request closed by lb4 (headers timeout)",
      );
      expect(openOk, "half-sent requests the test could hold open").toBeGreaterThan(SLOW / 2);
      expect(stillOpen, "half-sent requests still open while the others were measured").toBeGreaterThan(SLOW / 2);
      expect(statuses).toEqual({ "200": 100 });
      expect(write.status).toBe(201);
      expect(closedByLb4, `half-sent requests lb4 closed within ${CLOSE_BOUND_MS / 1000} s`).toBe(sockets.length);
      expect(after).toBe(200);
      expect(lb.alive()).toBe(true);
    } finally {
      clearInterval(trickle);
    }
  });
});
