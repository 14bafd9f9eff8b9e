/**
 * TCP health checks with tcp_send / tcp_expect (SPEC §4) against real peers: a redis-server
 * that is SIGSTOPped (its kernel still completes the handshake, so only the exchange can
 * tell it hung), and loopback servers that answer wrong, close, or speak first.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { probe as tcpProbe } from "../../src/health/probers/tcp.js";
import type { HealthMonitorSettings } from "../../src/health/types.js";
import { customServer, freePort, waitFor, type TestServer } from "../helpers/net.js";
import { useEngineFixture } from "../helpers/engine.js";

const redisBin = spawnSync("which", ["redis-server"], { encoding: "utf8" }).stdout.trim();
const LOCAL_HEADER = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00]);

const settings = (o: Partial<HealthMonitorSettings> = {}): HealthMonitorSettings => ({
  type: "TCP",
  delay: 1,
  timeout: 1,
  max_retries: 1,
  max_retries_down: 1,
  monitor_port: null,
  url_path: "/",
  expected_codes: "200",
  http_method: "GET",
  domain_name: null,
  tcp_send: "PING\\r\\n",
  tcp_expect: "+PONG",
  admin_state_up: true,
  ...o,
});

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function server(handler: (s: net.Socket) => void): Promise<TestServer> {
  const s = await customServer(handler);
  servers.push(s);
  return s;
}
const target = (port: number) => ({ address: "127.0.0.1", port });

describe("TCP check with tcp_send / tcp_expect against loopback servers", () => {
  it("fails at once with what came when the reply differs, and closes the socket", async () => {
    const srv = await server((s) => s.once("data", () => s.write("-ERR unknown command 'PING'\r\n")));
    const r = await tcpProbe(target(srv.port), settings({ timeout: 5 }));
    expect(r).toEqual({ ok: false, detail: `expected "+PONG", got "-ERR unknown command 'PING'\\r\\n"` });
    await waitFor(() => srv.sockets.size === 0, 2000, "the probe's socket to close");
  });

  it("passes on a reply split over several writes, with bytes after the expected ones", async () => {
    const srv = await server((s) =>
      s.once("data", () => {
        s.write("+P");
        setTimeout(() => s.write("ONG\r\n+extra"), 20);
      }),
    );
    const r = await tcpProbe(target(srv.port), settings({ timeout: 5 }));
    expect(r).toEqual({ ok: true, detail: 'replied "+PONG"' });
    await waitFor(() => srv.sockets.size === 0, 2000, "the probe's socket to close");
  });

  it("fails when the peer closes before the reply is complete", async () => {
    const srv = await server((s) => s.once("data", () => s.end("+PO")));
    const r = await tcpProbe(target(srv.port), settings({ timeout: 5 }));
    expect(r).toEqual({ ok: false, detail: 'closed before replying "+PONG" (got "+PO")' });
  });

  it("fails after timeout when nothing comes back, naming what it waited for", async () => {
    const srv = await server((s) => s.resume()); // reads (so it sees the close), never answers
    const r = await tcpProbe(target(srv.port), settings({ timeout: 1 }));
    expect(r).toEqual({ ok: false, detail: 'no reply matching "+PONG" within 1s' });
    await waitFor(() => srv.sockets.size === 0, 2000, "the probe's socket to close");
  });

  it("tcp_expect alone reads a banner of a server that speaks first", async () => {
    const srv = await server((s) => s.write("SSH-2.0-OpenSSH_9.2\r\n"));
    expect(await tcpProbe(target(srv.port), settings({ tcp_send: null, tcp_expect: "SSH-2.0-" }))).toEqual({ ok: true, detail: 'replied "SSH-2.0-"' });
  });

  it("tcp_send alone sends the bytes and passes", async () => {
    let got = "";
    let resolveGot: () => void;
    const gotAll = new Promise<void>((r) => (resolveGot = r));
    const srv = await server((s) => {
      s.on("data", (c: Buffer) => (got += c.toString("latin1")));
      s.on("end", () => resolveGot());
    });
    expect(await tcpProbe(target(srv.port), settings({ tcp_send: "QUIT\\r\\n\\x00", tcp_expect: null }))).toEqual({ ok: true, detail: "connected, sent" });
    await gotAll;
    expect(got).toBe("QUIT\r\n\x00");
  });

  it("sends the pool's header first, then tcp_send, with no FIN before the reply", async () => {
    const chunks: Buffer[] = [];
    let ended = false;
    const srv = await server((s) => {
      s.on("end", () => (ended = true));
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        // Reply only once everything arrived, and say whether a FIN came first.
        if (all.length >= LOCAL_HEADER.length + 6) s.write(ended ? "-FIN\r\n" : "+PONG\r\n");
      });
    });
    const r = await tcpProbe(target(srv.port), settings({ timeout: 5 }), { prefix: LOCAL_HEADER });
    expect(r).toEqual({ ok: true, detail: 'replied "+PONG"' });
    expect(Buffer.concat(chunks)).toEqual(Buffer.concat([LOCAL_HEADER, Buffer.from("PING\r\n")]));
  });
});

// ---- a real redis-server ------------------------------------------------------------------

interface Redis {
  proc: ChildProcess;
  port: number;
}
const redises: Redis[] = [];
afterEach(() => {
  for (const r of redises.splice(0)) {
    r.proc.kill("SIGCONT");
    r.proc.kill("SIGKILL");
  }
});

async function startRedis(): Promise<Redis> {
  const port = await freePort();
  const proc = spawn(redisBin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c));
  proc.stderr!.on("data", (c: Buffer) => (out += c));
  let exited = false;
  proc.on("exit", () => (exited = true));
  const r = { proc, port };
  redises.push(r);
  await waitFor(() => exited || out.includes("Ready to accept connections"), 10_000, "redis-server to be ready");
  if (exited) throw new Error(`redis-server exited:\n${out}`);
  return r;
}

/** PING through a port, bounded; the reply or the error code. */
function ping(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    let got = "";
    const done = (v: string) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done("timeout"), 3000);
    s.on("data", (c: Buffer) => {
      got += c.toString();
      if (got.includes("\r\n")) done(got.trim());
    });
    s.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    s.on("close", () => done(got ? got.trim() : "closed"));
    s.write("PING\r\n");
  });
}

describe.skipIf(!redisBin)(`TCP check against redis-server${redisBin ? "" : " (SKIPPED: redis-server not installed; apt-get install redis-server)"}`, () => {
  const fx = useEngineFixture();

  it("PING\\r\\n → +PONG passes; SIGSTOPped redis passes a plain connect check but fails the exchange", async () => {
    const redis = await startRedis();
    expect(await tcpProbe(target(redis.port), settings())).toEqual({ ok: true, detail: 'replied "+PONG"' });
    redis.proc.kill("SIGSTOP");
    // The kernel completes the handshake for a stopped process: a connect-only check is fooled.
    expect(await tcpProbe(target(redis.port), settings({ tcp_send: null, tcp_expect: null }))).toEqual({ ok: true, detail: "connected" });
    expect(await tcpProbe(target(redis.port), settings())).toEqual({ ok: false, detail: 'no reply matching "+PONG" within 1s' });
    redis.proc.kill("SIGCONT");
    expect(await tcpProbe(target(redis.port), settings())).toEqual({ ok: true, detail: 'replied "+PONG"' });
  });

  it("a hung redis goes OFFLINE through the engine and comes back ONLINE after SIGCONT", async () => {
    const redis = await startRedis();
    const { h, port } = await fx.lb({
      members: [{ protocol_port: redis.port }],
      pool: { healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1, tcp_send: "PING\\r\\n", tcp_expect: "+PONG" } },
    });
    const member = () => [...h.engine.lbs.get("lb-1")!.pools.get("pool-1")!.members.values()][0]!;
    await waitFor(() => member().status === "ONLINE", 10_000, "the redis member to go ONLINE");
    expect(await ping(port)).toBe("+PONG");

    redis.proc.kill("SIGSTOP");
    await waitFor(() => member().status === "OFFLINE", 10_000, "the stopped redis member to go OFFLINE");
    // No eligible member: the client is closed at once instead of hanging on a stopped server.
    expect(await ping(port)).toBe("closed");

    redis.proc.kill("SIGCONT");
    await waitFor(() => member().status === "ONLINE", 10_000, "the resumed redis member to come back ONLINE");
    expect(await ping(port)).toBe("+PONG");
  });
});
