/**
 * SPEC §9 counters are live: a connection or flow counts in `total` when it is handed to a
 * member, and the bytes of open connections/flows show at scrape time, without counting
 * anything twice when they end. Also the process metrics' names (no doubled prefix).
 */
import dgram from "node:dgram";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { createMetrics } from "../../src/metrics/registry.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { closed, connect, echoServer, freePort, waitFor, type TestServer } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const servers: TestServer[] = [];
const udp: dgram.Socket[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) {
    await waitFor(() => h.activeConnections() === 0, 5000, "active connections back to 0");
    await h.close({ graceMs: 100 });
  }
  for (const s of udp.splice(0)) s.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function value(text: string, metric: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{") && !line.startsWith(metric + " ")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").at(-1));
  }
  return undefined;
}

async function lb(protocol: "TCP" | "UDP", memberPort: number): Promise<{ h: LoadBalancerHandle; port: number }> {
  const port = await freePort();
  const config: ConfigInput = {
    log: { level: "silent" },
    loadbalancers: [
      {
        id: "lb-c",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-c", protocol, protocol_port: port, default_pool_id: "p" }],
        pools: [{ id: "p", protocol, members: [{ id: "m-1", address: "127.0.0.1", protocol_port: memberPort }] }],
      },
    ],
  };
  const h = await startLoadBalancer(config, { tuning: { tickMs: 100 } });
  handles.push(h);
  return { h, port };
}

const MiB = 1024 * 1024;

describe("live counters", () => {
  it("TCP: an open connection is in total, and its bytes show before it ends, once", async () => {
    const backend = await echoServer();
    servers.push(backend);
    const { h, port } = await lb("TCP", backend.port);
    const metrics = createMetrics(h.engine, { processMetrics: false });
    const l = { lb: "lb-c", listener: "ls-c" };

    const c = await connect(port);
    let echoed = 0;
    c.on("data", (d: Buffer) => (echoed += d.length));
    c.write(Buffer.alloc(MiB, 0x61));
    await waitFor(() => echoed === MiB, 10_000, "1 MiB echoed back through lb4");

    let body = (await metrics.scrape()).body;
    expect(value(body, "lb4_connections_active", l)).toBe(1);
    expect(value(body, "lb4_connections_total", l)).toBe(1);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "in" })).toBe(MiB);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "out" })).toBe(MiB);
    expect(value(body, "lb4_member_connections_started", { member: "m-1" })).toBe(1);
    // The read model behind `lb4 status` and the listener view (ACTIVE / TOTAL).
    const listener = h.engine.lbs.get("lb-c")!.listeners.get("ls-c")!;
    expect([listener.stats.active, listener.stats.total]).toEqual([1, 1]);

    c.end();
    await closed(c);
    await waitFor(() => h.activeConnections() === 0, 5000, "the connection to end in lb4");
    body = (await metrics.scrape()).body;
    expect(value(body, "lb4_connections_active", l)).toBe(0);
    expect(value(body, "lb4_connections_total", l)).toBe(1);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "in" })).toBe(MiB);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "out" })).toBe(MiB);
  });

  it("TCP: a client refused for want of a member is not in total", async () => {
    const backend = await echoServer();
    servers.push(backend);
    const { h, port } = await lb("TCP", backend.port);
    await h.updateMember("p", "m-1", { weight: 0 });
    const c = net.connect({ port, host: "127.0.0.1" });
    c.on("error", () => undefined);
    await closed(c);
    const body = (await createMetrics(h.engine, { processMetrics: false }).scrape()).body;
    expect(value(body, "lb4_refused_total", { reason: "no_member" })).toBe(1);
    expect(value(body, "lb4_connections_total", { listener: "ls-c" }) ?? 0).toBe(0);
  });

  it("UDP: an open flow is in total, and its datagrams and bytes show before it ends, once", async () => {
    const member = dgram.createSocket("udp4");
    udp.push(member);
    member.on("message", (msg, r) => member.send(msg, r.port, r.address));
    await new Promise<void>((r) => member.bind(0, "127.0.0.1", () => r()));
    const { h, port } = await lb("UDP", member.address().port);
    const metrics = createMetrics(h.engine, { processMetrics: false });
    const l = { lb: "lb-c", listener: "ls-c" };

    const c = dgram.createSocket("udp4");
    udp.push(c);
    let replies = 0;
    c.on("message", () => replies++);
    await new Promise<void>((r) => c.bind(0, "127.0.0.1", () => r()));
    // One at a time: loopback UDP may drop a burst, and the counts below are exact.
    for (let i = 0; i < 10; i++) {
      c.send(Buffer.alloc(100, 0x62), port, "127.0.0.1");
      await waitFor(() => replies === i + 1, 5000, `reply ${i + 1}`);
    }

    let body = (await metrics.scrape()).body;
    expect(value(body, "lb4_connections_active", l)).toBe(1);
    expect(value(body, "lb4_connections_total", l)).toBe(1);
    expect(value(body, "lb4_datagrams_total", { ...l, direction: "in" })).toBe(10);
    expect(value(body, "lb4_datagrams_total", { ...l, direction: "out" })).toBe(10);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "in" })).toBe(1000);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "out" })).toBe(1000);

    h.engine.lbs.get("lb-c")!.listeners.get("ls-c")!.destroyAll(); // ends the flow
    body = (await metrics.scrape()).body;
    expect(value(body, "lb4_connections_active", l)).toBe(0);
    expect(value(body, "lb4_connections_total", l)).toBe(1);
    expect(value(body, "lb4_datagrams_total", { ...l, direction: "in" })).toBe(10);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "in" })).toBe(1000);
    expect(value(body, "lb4_bytes_total", { ...l, direction: "out" })).toBe(1000);
  });

  it("process metrics are named lb4_process_* and lb4_nodejs_*, without a doubled prefix", async () => {
    const backend = await echoServer();
    servers.push(backend);
    const { h } = await lb("TCP", backend.port);
    const body = (await createMetrics(h.engine).scrape()).body;
    expect(body).not.toContain("lb4_process_process_");
    expect(body).not.toContain("lb4_process_nodejs_");
    expect(body).toMatch(/^lb4_process_cpu_user_seconds_total /m);
    expect(body).toMatch(/^lb4_nodejs_eventloop_lag_seconds /m);
  });
});
