/** Health probers and the checker against real loopback sockets (port 0 everywhere). */
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HealthChecker } from "../../src/health/checker.js";
import { probe as httpProbe } from "../../src/health/probers/http.js";
import { probe as tcpProbe } from "../../src/health/probers/tcp.js";
import { probe as udpProbe } from "../../src/health/probers/udp.js";
import type { Transition } from "../../src/health/state-machine.js";
import type { HealthMonitorSettings } from "../../src/health/types.js";

const LOCAL_HEADER = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00]);

const settings = (o: Partial<HealthMonitorSettings> = {}): HealthMonitorSettings => ({
  type: "TCP",
  delay: 1,
  timeout: 1,
  max_retries: 2,
  max_retries_down: 2,
  monitor_port: null,
  url_path: "/",
  expected_codes: "200",
  http_method: "GET",
  domain_name: null,
  tcp_send: null,
  tcp_expect: null,
  admin_state_up: true,
  ...o,
});

// ---- resources closed after every test -------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Tcp {
  server: net.Server;
  port: number;
  close(): Promise<void>;
}

async function tcpServer(
  onConn: (s: net.Socket) => void = () => {},
  host = "127.0.0.1",
  port = 0,
  server: net.Server = net.createServer(),
): Promise<Tcp> {
  const socks = new Set<net.Socket>();
  server.on("connection", (s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => {});
    onConn(s);
  });
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(port, host, () => res());
  });
  let closed = false;
  const t: Tcp = {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  cleanups.push(t.close);
  return t;
}

/** A port that was listening a moment ago and is closed now. */
async function closedTcpPort(): Promise<number> {
  const t = await tcpServer();
  await t.close();
  return t.port;
}

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  body: string;
}

async function httpServer(host = "127.0.0.1"): Promise<Tcp & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host, body });
      const status = req.url === "/ok" || req.url === "/" ? 200 : req.url === "/created" ? 201 : 404;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(`status ${status}\n`);
    });
  });
  const t = await tcpServer(() => {}, host, 0, server);
  return Object.assign(t, { seen });
}

async function udpSocket(host = "127.0.0.1"): Promise<{ sock: dgram.Socket; port: number }> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  let closed = false;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        if (closed) return r();
        closed = true;
        sock.close(() => r());
      }),
  );
  return { sock, port: sock.address().port };
}

async function closedUdpPort(host = "127.0.0.1"): Promise<number> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  const port = sock.address().port;
  await new Promise<void>((r) => sock.close(() => r()));
  return port;
}

/** `p`, or a rejection naming `what` after `ms`. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await p;
  return [v, performance.now() - t0];
}

// ---- TCP ------------------------------------------------------------------------------

describe("TCP prober", () => {
  it("passes on a listening server", async () => {
    const s = await tcpServer();
    expect(await tcpProbe({ address: "127.0.0.1", port: s.port }, settings())).toEqual({ ok: true, detail: "connected" });
  });

  it("passes on IPv6 loopback", async () => {
    const s = await tcpServer(() => {}, "::1");
    expect((await tcpProbe({ address: "::1", port: s.port }, settings())).ok).toBe(true);
  });

  it("fails fast on a closed port with ECONNREFUSED", async () => {
    const port = await closedTcpPort();
    const [r, ms] = await timed(tcpProbe({ address: "127.0.0.1", port }, settings()));
    expect(r).toEqual({ ok: false, detail: "connect ECONNREFUSED" });
    expect(ms).toBeLessThan(500);
  });

  it("uses localAddress as the source address", async () => {
    let remote = "";
    const s = await tcpServer((c) => (remote = c.remoteAddress ?? ""));
    const accepted = new Promise((r) => s.server.once("connection", r));
    expect((await tcpProbe({ address: "127.0.0.1", port: s.port, localAddress: "127.0.0.1" }, settings())).ok).toBe(true);
    await within(2000, "connection", accepted);
    expect(remote).toBe("127.0.0.1");
  });

  it("sends the prefix (PROXY v2 LOCAL) then closes cleanly", async () => {
    const got = new Promise<{ data: Buffer; how: string }>((resolve) => {
      void tcpServer((c) => {
        const chunks: Buffer[] = [];
        c.on("data", (d: Buffer) => chunks.push(d));
        c.on("end", () => resolve({ data: Buffer.concat(chunks), how: "end" }));
        c.on("error", () => resolve({ data: Buffer.concat(chunks), how: "error" }));
      }).then((s) => tcpProbe({ address: "127.0.0.1", port: s.port }, settings(), { prefix: LOCAL_HEADER }));
    });
    const { data, how } = await within(3000, "prefix", got);
    expect(how).toBe("end");
    expect(data.equals(LOCAL_HEADER)).toBe(true);
  });

  it("an aborted probe settles at once as a failure", async () => {
    const port = await closedTcpPort();
    const ac = new AbortController();
    ac.abort();
    expect(await tcpProbe({ address: "127.0.0.1", port }, settings(), { signal: ac.signal })).toEqual({ ok: false, detail: "aborted" });
  });
});

// ---- HTTP -----------------------------------------------------------------------------

describe("HTTP prober", () => {
  const h = (o: Partial<HealthMonitorSettings>) => settings({ type: "HTTP", ...o });

  it("requests url_path with the method and checks expected_codes", async () => {
    const s = await httpServer();
    const t = { address: "127.0.0.1", port: s.port };
    const table: [Partial<HealthMonitorSettings>, boolean, string][] = [
      [{ url_path: "/ok" }, true, "HTTP 200"],
      [{ url_path: "/missing" }, false, "HTTP 404 not in 200"],
      [{ url_path: "/missing", expected_codes: "200-299" }, false, "HTTP 404 not in 200-299"],
      [{ url_path: "/created", expected_codes: "200-299" }, true, "HTTP 201"],
      [{ url_path: "/created", expected_codes: "200,202" }, false, "HTTP 201 not in 200,202"],
      [{ url_path: "/created", expected_codes: "200,201" }, true, "HTTP 201"],
      [{ url_path: "/missing", expected_codes: "404" }, true, "HTTP 404"],
      [{ url_path: "/ok", expected_codes: "400-499" }, false, "HTTP 200 not in 400-499"],
    ];
    for (const [o, ok, detail] of table) {
      expect(await httpProbe(t, h(o)), JSON.stringify(o)).toEqual({ ok, detail });
    }
    expect(s.seen.map((x) => x.url)).toEqual(table.map(([o]) => o.url_path));
  });

  it.each(["GET", "HEAD", "POST"] as const)("sends %s", async (method) => {
    const s = await httpServer();
    const r = await httpProbe({ address: "127.0.0.1", port: s.port }, h({ http_method: method, url_path: "/ok" }));
    expect(r).toEqual({ ok: true, detail: "HTTP 200" });
    expect(s.seen).toEqual([{ method, url: "/ok", host: `127.0.0.1:${s.port}`, body: "" }]);
  });

  it("sends Host: domain_name when set; the member address otherwise (IPv6 bracketed)", async () => {
    const s = await httpServer();
    await httpProbe({ address: "127.0.0.1", port: s.port }, h({ domain_name: "www.example.com" }));
    expect(s.seen[0]?.host).toBe("www.example.com");
    const s6 = await httpServer("::1");
    expect((await httpProbe({ address: "::1", port: s6.port }, h({}))).ok).toBe(true);
    expect(s6.seen[0]?.host).toBe(`[::1]:${s6.port}`);
  });

  it("fails on a closed port and on a server that never answers", async () => {
    const port = await closedTcpPort();
    expect(await httpProbe({ address: "127.0.0.1", port }, h({}))).toEqual({ ok: false, detail: "connect ECONNREFUSED" });
    const silent = await tcpServer(); // accepts, never answers
    const [r, ms] = await timed(httpProbe({ address: "127.0.0.1", port: silent.port }, h({ timeout: 1 })));
    expect(r).toEqual({ ok: false, detail: "no response within 1s" });
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(1500);
  });

  it("fails when the server closes without answering", async () => {
    const s = await tcpServer((c) => c.once("data", () => c.destroy()));
    const r = await httpProbe({ address: "127.0.0.1", port: s.port }, h({}));
    expect(r.ok).toBe(false);
    expect(r.detail).toBe("ECONNRESET");
  });

  it("writes the prefix before the request", async () => {
    const got = new Promise<Buffer>((resolve) => {
      void tcpServer((c) => {
        let buf = Buffer.alloc(0);
        c.on("data", (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (buf.includes("\r\n\r\n")) {
            c.end("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            resolve(buf);
          }
        });
      }).then((s) =>
        httpProbe({ address: "127.0.0.1", port: s.port }, h({ url_path: "/hc" }), { prefix: LOCAL_HEADER }).then((r) =>
          expect(r).toEqual({ ok: true, detail: "HTTP 200" }),
        ),
      );
    });
    const buf = await within(3000, "request", got);
    expect(buf.subarray(0, LOCAL_HEADER.length).equals(LOCAL_HEADER)).toBe(true);
    expect(buf.subarray(LOCAL_HEADER.length).toString()).toMatch(/^GET \/hc HTTP\/1\.1\r\n/);
  });

  it("an invalid expected_codes is a failed check, not a throw", async () => {
    const s = await httpServer();
    const r = await httpProbe({ address: "127.0.0.1", port: s.port }, h({ expected_codes: "2xx" }));
    expect(r.ok).toBe(false);
  });
});

// ---- UDP ------------------------------------------------------------------------------

describe("UDP_CONNECT prober", () => {
  const u = settings({ type: "UDP_CONNECT", timeout: 1 });

  it("passes on a bound socket that stays silent (no ICMP within timeout)", async () => {
    const { sock, port } = await udpSocket();
    const got = new Promise<Buffer>((r) => sock.once("message", r));
    const [r, ms] = await timed(udpProbe({ address: "127.0.0.1", port }, u));
    expect(r).toEqual({ ok: true, detail: "no ICMP port unreachable within 1s" });
    expect(ms).toBeGreaterThanOrEqual(950);
    expect((await within(1000, "datagram", got)).length).toBeGreaterThan(0);
  });

  it("passes at once when the member replies", async () => {
    const { sock, port } = await udpSocket();
    sock.on("message", (_m, ri) => sock.send("pong", ri.port, ri.address));
    const [r, ms] = await timed(udpProbe({ address: "127.0.0.1", port }, u));
    expect(r).toEqual({ ok: true, detail: "reply received" });
    expect(ms).toBeLessThan(900);
  });

  it("fails with ECONNREFUSED on a closed port (IPv4 and IPv6)", async () => {
    for (const host of ["127.0.0.1", "::1"]) {
      const port = await closedUdpPort(host);
      const [r, ms] = await timed(udpProbe({ address: host, port }, u));
      expect(r, host).toEqual({ ok: false, detail: "ECONNREFUSED (ICMP port unreachable)" });
      expect(ms).toBeLessThan(900);
    }
  });

  it("sends the prefix alone as the probe datagram", async () => {
    const { sock, port } = await udpSocket();
    const got = new Promise<Buffer>((r) => sock.once("message", r));
    sock.once("message", (_m, ri) => sock.send("pong", ri.port, ri.address));
    expect((await udpProbe({ address: "127.0.0.1", port }, u, { prefix: LOCAL_HEADER })).ok).toBe(true);
    expect((await got).equals(LOCAL_HEADER)).toBe(true);
  });
});

// ---- HealthChecker with the real probers ----------------------------------------------------

describe("HealthChecker over a real TCP server", () => {
  it("ONLINE after the first pass, OFFLINE when the server goes, ONLINE after max_retries passes on return", async () => {
    const s = settings({ delay: 1, timeout: 1, max_retries: 2, max_retries_down: 2 });
    let server = await tcpServer();
    const port = server.port;
    const waiters: { to: string; resolve: (t: Transition) => void }[] = [];
    const log: Transition[] = [];
    const checker = new HealthChecker({
      onTransition: (_k, t) => {
        log.push(t);
        for (const w of waiters.splice(0)) {
          if (w.to === t.to) w.resolve(t);
          else waiters.push(w);
        }
      },
    });
    cleanups.push(() => checker.close());
    const next = (to: "ONLINE" | "OFFLINE", ms: number) =>
      within(ms, `transition to ${to}`, new Promise<Transition>((resolve) => waiters.push({ to, resolve })));

    const slack = 700;
    let p = next("ONLINE", s.delay * 1000 + s.timeout * 1000 + slack);
    checker.add("m1", { address: "127.0.0.1", port }, s);
    expect(await p).toEqual({ from: "UNCHECKED", to: "ONLINE", reason: "first check passed" });
    expect(checker.status("m1")?.status).toBe("ONLINE");

    p = next("OFFLINE", (s.delay * s.max_retries_down + s.timeout) * 1000 + slack);
    await server.close();
    const down = await p;
    expect(down).toEqual({ from: "ONLINE", to: "OFFLINE", reason: "2 consecutive failures: connect ECONNREFUSED" });
    expect(checker.status("m1")).toMatchObject({ status: "OFFLINE", lastResult: false, lastDetail: "connect ECONNREFUSED" });

    p = next("ONLINE", (s.delay * s.max_retries + s.timeout) * 1000 + slack);
    server = await tcpServer(() => {}, "127.0.0.1", port);
    expect(await p).toEqual({ from: "OFFLINE", to: "ONLINE", reason: "2 consecutive passes" });
    expect(log.map((t) => t.to)).toEqual(["ONLINE", "OFFLINE", "ONLINE"]);

    await checker.close();
    expect(checker.size).toBe(0);
  });

  it("close() during in-flight probes settles promptly", async () => {
    const silent = await tcpServer();
    const checker = new HealthChecker({ random: () => 0 });
    for (let i = 0; i < 20; i++)
      checker.add(`m${i}`, { address: "127.0.0.1", port: silent.port }, settings({ type: "HTTP", timeout: 5, delay: 10 }));
    // Wait until the probes are connected and waiting for an answer that never comes.
    await within(2000, "probe connections", new Promise<void>((r) => {
      let n = 0;
      silent.server.on("connection", () => ++n === 20 && r());
    }));
    const [, ms] = await timed(checker.close());
    expect(ms).toBeLessThan(200);
  });
});
