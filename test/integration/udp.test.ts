/** UDP data plane on real loopback sockets (SPEC §3 UDP listener, §4 drain/health, §7 proxy_v2, §9). */
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { decodeDatagram } from "../../src/clientip/index.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { FakeClock, FakeTimers } from "../../src/clock.js";
import { startLoadBalancer, type EngineOptions, type LoadBalancerHandle } from "../../src/engine.js";
import type { UdpListener } from "../../src/dataplane/udp.js";
import { freePort, waitFor } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const sockets: dgram.Socket[] = [];

afterEach(async () => {
  for (const h of handles.splice(0)) {
    await h.close({ graceMs: 100 });
    expect(h.activeConnections()).toBe(0);
  }
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => {
    try {
      s.close(() => r());
    } catch {
      r(); // already closed
    }
  })));
});

function udpSocket(type: "udp4" | "udp6" = "udp4"): dgram.Socket {
  const s = dgram.createSocket(type);
  s.on("error", () => undefined);
  sockets.push(s);
  return s;
}

function bind(s: dgram.Socket, address: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.bind(port, address, () => {
      s.off("error", reject);
      resolve(s.address().port);
    });
  });
}

interface Backend {
  port: number;
  /** Datagrams received, as given (header included). */
  received: Buffer[];
  /** Source ports seen (one per upstream socket of lb4). */
  peers: Set<number>;
}

/** Replies "<name>|<payload>" (name "" = plain echo) to every datagram. */
async function backend(name: string, host = "127.0.0.1"): Promise<Backend> {
  const s = udpSocket(host.includes(":") ? "udp6" : "udp4");
  const b: Backend = { port: 0, received: [], peers: new Set() };
  s.on("message", (msg, rinfo) => {
    b.received.push(msg);
    b.peers.add(rinfo.port);
    s.send(name ? Buffer.concat([Buffer.from(`${name}|`), msg]) : msg, rinfo.port, rinfo.address);
  });
  b.port = await bind(s, host);
  return b;
}

/** A client: one socket, one source port; collects replies with where they came from. */
async function client(host = "127.0.0.1", localAddress = host): Promise<{ s: dgram.Socket; replies: Array<{ msg: Buffer; address: string; port: number }> }> {
  const s = udpSocket(host.includes(":") ? "udp6" : "udp4");
  const replies: Array<{ msg: Buffer; address: string; port: number }> = [];
  s.on("message", (msg, rinfo) => replies.push({ msg, address: rinfo.address, port: rinfo.port }));
  await bind(s, localAddress);
  return { s, replies };
}

function send(s: dgram.Socket, msg: Buffer | string, port: number, host = "127.0.0.1"): Promise<void> {
  return new Promise((resolve, reject) => s.send(typeof msg === "string" ? Buffer.from(msg) : msg, port, host, (err) => (err ? reject(err) : resolve())));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LbOptions {
  listener?: Record<string, unknown>;
  pool?: Record<string, unknown>;
  vip?: string;
  engine?: EngineOptions;
}

async function lb(members: Array<{ port: number; weight?: number; id?: string; address?: string }>, o: LbOptions = {}): Promise<{ h: LoadBalancerHandle; port: number; l: UdpListener }> {
  const vip = o.vip ?? "127.0.0.1";
  const port = await freePort(vip);
  const config: ConfigInput = {
    log: { level: "silent" },
    loadbalancers: [
      {
        id: "lb-u",
        vip_address: vip,
        listeners: [{ id: "ls-u", protocol: "UDP", protocol_port: port, default_pool_id: "pool-u", ...o.listener }],
        pools: [
          {
            id: "pool-u",
            protocol: "UDP",
            ...o.pool,
            members: members.map((m, i) => ({ id: m.id ?? `m-${i}`, address: m.address ?? "127.0.0.1", protocol_port: m.port, weight: m.weight ?? 1 })),
          },
        ],
      },
    ],
  };
  const h = await startLoadBalancer(config, { tuning: { tickMs: 100 }, ...o.engine });
  handles.push(h);
  return { h, port, l: h.engine.listener("ls-u") as UdpListener };
}

describe("UDP forwarding", () => {
  it("splits 40 clients 20:10:10 over weights 2:1:1; every reply comes from the listener address", async () => {
    const bs = await Promise.all(["a", "b", "c"].map((n) => backend(n)));
    const { port } = await lb(bs.map((b, i) => ({ port: b.port, weight: i === 0 ? 2 : 1 })));
    const clients = await Promise.all(Array.from({ length: 40 }, () => client()));
    expect(new Set(clients.map((c) => c.s.address().port)).size).toBe(40);
    await Promise.all(clients.map((c, i) => send(c.s, `hi-${i}`, port)));
    await waitFor(() => clients.every((c) => c.replies.length === 1), 5000, "40 replies");
    const counts: Record<string, number> = {};
    clients.forEach((c, i) => {
      const r = c.replies[0]!;
      expect(r.address).toBe("127.0.0.1");
      expect(r.port).toBe(port);
      const [name, payload] = r.msg.toString().split("|");
      expect(payload).toBe(`hi-${i}`);
      counts[name!] = (counts[name!] ?? 0) + 1;
    });
    expect(counts).toEqual({ a: 20, b: 10, c: 10 });
  });

  it("keeps order per flow and loses nothing at a modest rate (10 flows x 200 datagrams)", async () => {
    const bs = await Promise.all(["a", "b"].map((n) => backend(n)));
    const { port, l } = await lb(bs.map((b) => ({ port: b.port })));
    const clients = await Promise.all(Array.from({ length: 10 }, () => client()));
    // Bursts of 5 datagrams per flow (50 in flight), the next burst once they are answered.
    for (let burst = 0; burst < 40; burst++) {
      for (const c of clients) for (let k = 0; k < 5; k++) c.s.send(String(burst * 5 + k), port, "127.0.0.1");
      await waitFor(() => clients.every((c) => c.replies.length === (burst + 1) * 5), 3000, `burst ${burst} answered`);
    }
    for (const c of clients) {
      const names = new Set(c.replies.map((r) => r.msg.toString().split("|")[0]));
      expect(names.size).toBe(1);
      expect(c.replies.map((r) => Number(r.msg.toString().split("|")[1]))).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(c.replies.every((r) => r.address === "127.0.0.1" && r.port === port)).toBe(true);
    }
    expect(l.flows.size).toBe(10);
    expect(l.stats.active).toBe(10);
  });

  it("a flow keeps its member across 100 datagrams", async () => {
    const bs = await Promise.all(["a", "b", "c"].map((n) => backend(n)));
    const { port, l } = await lb(bs.map((b) => ({ port: b.port })));
    const c = await client();
    for (let i = 0; i < 100; i++) {
      await send(c.s, `n${i}`, port);
      await waitFor(() => c.replies.length === i + 1, 2000, `reply ${i}`);
    }
    expect(new Set(c.replies.map((r) => r.msg.toString().split("|")[0])).size).toBe(1);
    expect(bs.reduce((n, b) => n + b.peers.size, 0)).toBe(1); // one upstream socket for the flow
    expect(l.flows.size).toBe(1);
  });

  it("expires an idle flow after keepalive_timeout, closes its upstream socket, logs it, and a new datagram opens a new flow", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const b = await backend("a");
    // Fake time: the engine's tick and clock; datagrams and sockets stay real.
    const clock = new FakeClock(1_000);
    const timers = new FakeTimers(clock);
    const { h, port, l } = await lb([{ port: b.port, id: "m-a" }], { listener: { keepalive_timeout: 10 }, engine: { logger, clock, timers } });
    const c = await client();
    await send(c.s, "one", port);
    await waitFor(() => c.replies.length === 1, 2000, "first reply");
    expect(h.activeConnections()).toBe(1);
    const upstreamPort = [...b.peers][0]!;
    const t0 = clock.now();
    await timers.advance(8000);
    expect(l.flows.size).toBe(1); // not early
    for (let i = 0; i < 50 && l.flows.size > 0; i++) await timers.advance(100);
    expect(l.flows.size).toBe(0);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(10_000);
    expect(h.activeConnections()).toBe(0);
    expect(l.stats.idleClosed).toBe(1);
    // The upstream socket is closed: its port can be bound again.
    const probe = udpSocket();
    await expect(bind(probe, "127.0.0.1", upstreamPort)).resolves.toBe(upstreamPort);
    const log = lines.find((x) => x.ev === "udp_flow");
    expect(log).toMatchObject({
      ev: "udp_flow",
      lb: "lb-u",
      listener: "ls-u",
      client: `127.0.0.1:${c.s.address().port}`,
      member: `127.0.0.1:${b.port}`,
      member_id: "m-a",
      datagrams_in: 1,
      datagrams_out: 1,
      bytes_in: 3,
      bytes_out: 5,
      end: "idle_timeout",
    });
    expect(l.stats).toMatchObject({ datagramsIn: 1, datagramsOut: 1, bytesIn: 3, bytesOut: 5, total: 1 });
    await send(c.s, "two", port);
    await waitFor(() => c.replies.length === 2, 2000, "reply on a new flow");
    expect(l.flows.size).toBe(1);
    expect(b.peers.size).toBe(2); // a new upstream socket
  });

  it("caps flows at connection_limit: of 1,000 new source ports exactly 90 get flows (100 in all), the other 910 are dropped and counted, existing flows still answered", async () => {
    const bs = await Promise.all(["a", "b"].map((n) => backend(n)));
    const { port, l } = await lb(bs.map((b) => ({ port: b.port })), { listener: { connection_limit: 100 } });
    const old = await Promise.all(Array.from({ length: 10 }, () => client()));
    await Promise.all(old.map((c) => send(c.s, "x", port)));
    await waitFor(() => old.every((c) => c.replies.length === 1), 3000, "replies to existing flows");
    const flood = await Promise.all(Array.from({ length: 1000 }, () => client()));
    // Each flood datagram is either admitted (a new flow) or refused (counted); nothing else.
    const handled = () => l.stats.refusedLimit + l.flows.size - old.length;
    // Batches of 50 one-byte datagrams fit the listener's receive buffer, so none is lost
    // to the kernel; each batch is handled before the next is sent.
    for (let i = 0; i < flood.length; i += 50) {
      await Promise.all(flood.slice(i, i + 50).map((c) => send(c.s, "f", port)));
      await waitFor(() => handled() === i + 50, 3000, `flood datagrams ${i}..${i + 49} handled`);
    }
    expect(l.flows.size).toBe(100);
    expect(l.stats.active).toBe(100);
    expect(l.stats.refusedLimit).toBe(910);
    const admitted = flood.filter((c) => l.flows.get("127.0.0.1", c.s.address().port) !== undefined);
    const dropped = flood.filter((c) => !admitted.includes(c));
    expect(admitted.length).toBe(90);
    await waitFor(() => admitted.every((c) => c.replies.length === 1), 3000, "replies to the 90 flows admitted");
    await Promise.all(old.map((c) => send(c.s, "y", port)));
    await waitFor(() => old.every((c) => c.replies.length === 2), 3000, "existing flows still answered");
    // A refused datagram never reached a member: 10 + 90 first datagrams, then the 10 "y".
    const received = bs.flatMap((b) => b.received.map(String)).sort();
    expect(received).toEqual([...Array<string>(90).fill("f"), ...Array<string>(10).fill("x"), ...Array<string>(10).fill("y")]);
    expect(dropped.filter((c) => c.replies.length > 0)).toEqual([]);
  });

  it("carries a 1,400-byte and a 1-byte datagram intact, and an empty one without error", async () => {
    const echo = await backend("");
    const { port, l } = await lb([{ port: echo.port }]);
    const c = await client();
    const big = randomBytes(1400);
    const one = randomBytes(1);
    await send(c.s, big, port);
    await waitFor(() => c.replies.length === 1, 2000, "big reply");
    await send(c.s, one, port);
    await waitFor(() => c.replies.length === 2, 2000, "1-byte reply");
    await send(c.s, Buffer.alloc(0), port);
    await waitFor(() => c.replies.length === 3, 2000, "empty reply");
    expect(c.replies[0]!.msg.equals(big)).toBe(true);
    expect(c.replies[1]!.msg.equals(one)).toBe(true);
    expect(c.replies[2]!.msg.length).toBe(0);
    expect(echo.received.map((m) => m.length)).toEqual([1400, 1, 0]);
    const f = l.flows.get("127.0.0.1", c.s.address().port)!;
    expect(f.datagramsIn).toBe(3);
    expect(f.bytesIn).toBe(1401);
  });

  it("drops and counts a datagram from a client the access list refuses", async () => {
    const b = await backend("a");
    const { port, l } = await lb([{ port: b.port }], { listener: { ipgroup: { type: "black", ip_list: ["127.0.0.1"] } } });
    const refused = await client();
    await send(refused.s, "no", port);
    await send(refused.s, "no", port);
    const ok = await client("127.0.0.1", "127.0.0.2");
    await send(ok.s, "yes", port);
    await waitFor(() => ok.replies.length === 1, 2000, "reply to an allowed client");
    await sleep(200);
    expect(refused.replies.length).toBe(0);
    expect(l.stats.refusedAcl).toBe(2);
    expect(b.received.map(String)).toEqual(["yes"]);
    expect(ok.replies[0]!.msg.toString()).toBe("a|yes");
  });

  it("an ICMP port unreachable from a member ends the flow; the next datagram picks again", async () => {
    const dead = await freePort(); // nothing listens: the kernel answers port unreachable
    const live = await backend("live");
    const { port, l } = await lb([{ port: dead, id: "dead" }, { port: live.port, id: "live" }]);
    const c = await client();
    await send(c.s, "1", port); // first pick of a 1:1 round robin: "dead"
    await waitFor(() => l.stats.connectErrors === 1, 3000, "member_unreachable");
    expect(l.flows.size).toBe(0);
    expect(l.stats.active).toBe(0);
    await send(c.s, "2", port);
    await waitFor(() => c.replies.length === 1, 2000, "reply from the live member");
    expect(c.replies[0]!.msg.toString()).toBe("live|2");
    expect(l.flows.get("127.0.0.1", c.s.address().port)!.member.id).toBe("live");
  });

  it("closes the flows of a member whose drain deadline passed", async () => {
    const b = await backend("a");
    const { h, port, l } = await lb([{ port: b.port, id: "m-a" }]);
    const c = await client();
    await send(c.s, "x", port);
    await waitFor(() => c.replies.length === 1, 2000, "reply");
    h.engine.pool("pool-u")!.members.get("m-a")!.drainDeadline = 0;
    await waitFor(() => l.flows.size === 0, 2000, "drained flow closed");
    expect(l.stats.drainClosed).toBe(1);
    expect(h.activeConnections()).toBe(0);
  });

  it("prefixes every upstream datagram with a PROXY v2 UDP header for a proxy_v2 pool", async () => {
    const echo = await backend("");
    const { port } = await lb([{ port: echo.port }], { pool: { client_ip: "proxy_v2" } });
    const c = await client();
    await send(c.s, "p1", port);
    await send(c.s, "p2", port);
    await waitFor(() => echo.received.length === 2, 2000, "2 datagrams at the backend");
    for (const [i, d] of echo.received.entries()) {
      const { info, payload } = decodeDatagram("proxy_v2", d);
      expect(info.transport).toBe("UDP");
      expect(info.source).toMatchObject({ address: "127.0.0.1", port: c.s.address().port });
      expect(info.destination).toMatchObject({ address: "127.0.0.1", port });
      expect(Buffer.from(payload).toString()).toBe(`p${i + 1}`);
    }
  });

  it("a UDP pool with a UDP_CONNECT health monitor: the live member goes ONLINE and takes the traffic", async () => {
    const dead = await freePort();
    const live = await backend("live");
    const { h, port, l } = await lb([{ port: dead, id: "dead" }, { port: live.port, id: "live" }], {
      pool: { healthmonitor: { type: "UDP_CONNECT", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 } },
      engine: { random: () => 0 },
    });
    const pool = h.engine.pool("pool-u")!;
    await waitFor(() => pool.members.get("live")!.status === "ONLINE", 5000, "live member ONLINE");
    expect(pool.members.get("dead")!.status).toBe("OFFLINE");
    const clients = await Promise.all(Array.from({ length: 6 }, () => client()));
    await Promise.all(clients.map((c) => send(c.s, "hc", port)));
    await waitFor(() => clients.every((c) => c.replies.length === 1), 3000, "6 replies");
    expect(clients.map((c) => c.replies[0]!.msg.toString())).toEqual(Array(6).fill("live|hc"));
    expect(l.stats.connectErrors).toBe(0);
  });

  it("shares a port number with a TCP listener", async () => {
    const b = await backend("a");
    const port = await freePort();
    const h = await startLoadBalancer(
      {
        log: { level: "silent" },
        loadbalancers: [
          {
            id: "lb-2",
            vip_address: "127.0.0.1",
            listeners: [
              { id: "t", protocol: "TCP", protocol_port: port, default_pool_id: "pt" },
              { id: "u", protocol: "UDP", protocol_port: port, default_pool_id: "pu" },
            ],
            pools: [
              { id: "pt", protocol: "TCP", members: [{ id: "t1", address: "127.0.0.1", protocol_port: 9 }] },
              { id: "pu", protocol: "UDP", members: [{ id: "u1", address: "127.0.0.1", protocol_port: b.port }] },
            ],
          },
        ],
      },
      { tuning: { tickMs: 100 } },
    );
    handles.push(h);
    const c = await client();
    await send(c.s, "same-port", port);
    await waitFor(() => c.replies.length === 1, 2000, "reply");
    expect(c.replies[0]!.msg.toString()).toBe("a|same-port");
  });

  it("refuses to start when the UDP port is taken, naming the listener and the error", async () => {
    const taken = udpSocket();
    const port = await bind(taken, "127.0.0.1");
    const err = await startLoadBalancer(
      {
        log: { level: "silent" },
        loadbalancers: [
          {
            id: "lb-3",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-busy", protocol: "UDP", protocol_port: port, default_pool_id: "pu" }],
            pools: [{ id: "pu", protocol: "UDP", members: [{ id: "u1", address: "127.0.0.1", protocol_port: 9 }] }],
          },
        ],
      },
      { tuning: { tickMs: 100 } },
    ).then(
      (h) => {
        handles.push(h);
        return undefined;
      },
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe("LB4.LISTEN_FAILED");
    expect(err?.message).toContain(`UDP 127.0.0.1:${port}`);
    expect(err?.message).toContain("EADDRINUSE");
  });

  it("ends every flow on close and leaves nothing bound", async () => {
    const b = await backend("a");
    const { h, port, l } = await lb([{ port: b.port }]);
    const clients = await Promise.all(Array.from({ length: 5 }, () => client()));
    await Promise.all(clients.map((c) => send(c.s, "x", port)));
    await waitFor(() => clients.every((c) => c.replies.length === 1), 2000, "replies");
    expect(h.activeConnections()).toBe(5);
    handles.splice(handles.indexOf(h), 1);
    await h.close({ graceMs: 100 });
    expect(h.activeConnections()).toBe(0);
    expect(l.flows.size).toBe(0);
    expect(l.socket).toBeUndefined();
    const again = udpSocket();
    await expect(bind(again, "127.0.0.1", port)).resolves.toBe(port);
  });
});

const ipv6 = await (async () => {
  const s = dgram.createSocket("udp6");
  const ok = await new Promise<boolean>((r) => {
    s.once("error", () => r(false));
    s.bind(0, "::1", () => r(true));
  });
  await new Promise<void>((r) => s.close(() => r()));
  return ok;
})();
if (!ipv6) console.warn("udp.test.ts: skipping the IPv6 test: cannot bind a UDP socket on ::1 here");

describe.skipIf(!ipv6)("UDP over IPv6 (skipped when ::1 is unavailable)", () => {
  it("serves a listener on ::1 with IPv6 members, and logs each flow's client and member bracketed", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const bs = await Promise.all(["a", "b"].map((n) => backend(n, "::1")));
    const { h, port, l } = await lb(bs.map((b, i) => ({ port: b.port, address: "::1", id: `m-${"ab"[i]}` })), { vip: "::1", engine: { logger } });
    const clients = await Promise.all(Array.from({ length: 4 }, () => client("::1")));
    await Promise.all(clients.map((c) => send(c.s, "v6", port, "::1")));
    await waitFor(() => clients.every((c) => c.replies.length === 1), 3000, "4 replies over IPv6");
    const names = clients.map((c) => c.replies[0]!.msg.toString());
    expect(names.filter((n) => n === "a|v6").length).toBe(2);
    expect(names.filter((n) => n === "b|v6").length).toBe(2);
    expect(clients.every((c) => c.replies[0]!.address === "::1" && c.replies[0]!.port === port)).toBe(true);
    expect(l.flows.size).toBe(4);
    await h.close({ graceMs: 100 }); // ends every flow ("shutdown"), one line each
    const flows = lines.filter((x) => x.ev === "udp_flow");
    const byClient = new Map(flows.map((x) => [x.client, x]));
    for (const c of clients) {
      const name = c.replies[0]!.msg.toString().split("|")[0]!;
      const b = bs[name === "a" ? 0 : 1]!;
      expect(byClient.get(`[::1]:${c.s.address().port}`)).toMatchObject({ member: `[::1]:${b.port}`, member_id: `m-${name}`, end: "shutdown" });
    }
    expect(flows).toHaveLength(4);
  });
});
