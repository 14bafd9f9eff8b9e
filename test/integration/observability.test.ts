/** SPEC §9: metrics after known traffic, the access-log line, and levels that switch it off. */
import { Writable } from "node:stream";
import net from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { createMetrics } from "../../src/metrics/registry.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { customServer, freePort, request, waitFor, type TestServer } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close({ graceMs: 100 });
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function memoryLogger(level: string): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

async function setup(level: string) {
  // The member reads the 5-byte request and answers 11 bytes.
  const backend = await customServer((s) => s.once("data", () => s.end("hello world")));
  servers.push(backend);
  const port = await freePort();
  const config: ConfigInput = {
    loadbalancers: [
      {
        id: "lb-m",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-m", protocol: "TCP", protocol_port: port, default_pool_id: "p", ipgroup: { type: "black", ip_list: ["127.0.0.66"] } }],
        pools: [{ id: "p", protocol: "TCP", members: [{ id: "m-1", address: "127.0.0.1", protocol_port: backend.port, weight: 7 }] }],
      },
    ],
  };
  const { logger, lines } = memoryLogger(level);
  const h = await startLoadBalancer(config, { logger, tuning: { tickMs: 100 } });
  handles.push(h);
  return { h, port, lines };
}

function value(text: string, metric: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{") && line !== metric && !line.startsWith(metric + " ")) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.split(" ").at(-1));
  }
  return undefined;
}

describe("metrics", () => {
  it("a scrape after known traffic shows exact connection, byte and refusal counts", async () => {
    const { h, port } = await setup("silent");
    for (let i = 0; i < 3; i++) expect(await request(port, { send: "ping!" })).toBe("hello world");
    // Two refused clients: one by the black list, one with no eligible member.
    const refused = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.66" });
    refused.on("error", () => undefined);
    await new Promise((r) => refused.on("close", r));
    await h.updateMember("p", "m-1", { weight: 0 });
    expect(await request(port)).toBe("");
    await waitFor(() => h.activeConnections() === 0, 3000, "connections to end");

    const { body, contentType } = await createMetrics(h.engine, { processMetrics: false }).scrape();
    expect(contentType).toContain("text/plain");
    const l = { lb: "lb-m", listener: "ls-m" };
    expect(value(body, "lb4_connections_total", l)).toBe(3);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "in" })).toBe(15);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "out" })).toBe(33);
    expect(value(body, "lb4_refused_total", { ...l, reason: "acl" })).toBe(1);
    expect(value(body, "lb4_refused_total", { ...l, reason: "no_member" })).toBe(1);
    expect(value(body, "lb4_connections_active", l)).toBe(0);
    expect(value(body, "lb4_member_weight", { member: "m-1" })).toBe(0);
    expect(value(body, "lb4_member_effective_weight", { member: "m-1" })).toBe(0);
    expect(value(body, "lb4_member_up", { member: "m-1" })).toBe(1);
    expect(value(body, "lb4_log_lines_dropped_total", {})).toBe(0);
  });
});

describe("access log", () => {
  it("writes one line per connection with the right fields and byte counts", async () => {
    const { port, lines } = await setup("info");
    expect(await request(port, { send: "ping!" })).toBe("hello world");
    await waitFor(() => lines.some((l) => l.ev === "tcp_conn"), 3000, "the access-log line");
    const access = lines.filter((l) => l.ev === "tcp_conn");
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ lb: "lb-m", listener: "ls-m", member_id: "m-1", bytes_in: 5, bytes_out: 11, end: "closed" });
    expect(access[0]!.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(typeof access[0]!.duration_ms).toBe("number");
  });

  it("with level warn there is no access-log line, but refusals are still logged (rate-limited)", async () => {
    const { port, lines } = await setup("warn");
    expect(await request(port, { send: "ping!" })).toBe("hello world");
    for (let i = 0; i < 20; i++) {
      const s = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.66" });
      s.on("error", () => undefined);
      await new Promise((r) => s.on("close", r));
    }
    expect(lines.filter((l) => l.ev === "tcp_conn")).toHaveLength(0);
    const refusals = lines.filter((l) => l.ev === "refused");
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals.length).toBeLessThan(5); // 20 refusals within a second → one line, the rest suppressed
    expect(refusals[0]).toMatchObject({ reason: "acl", listener: "ls-m" });
  });
});
