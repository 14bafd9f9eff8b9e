/**
 * Data integrity and clean-up on both TCP data planes (issue 15): bulk transfers hashed end
 * to end in every direction and half-close order, a reader that stops reading, resets in
 * mid-stream, a client gone while lb4 connects, and 1,000 connections closed at random
 * points, after which nothing is left open.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { TcpListener } from "../../src/dataplane/tcp.js";
import { HIGH_WATER, READ_BUFFER_BYTES, type HandleTcpListener } from "../../src/dataplane/tcp-handles.js";
import { DATAPLANES, useEngineFixture } from "../helpers/engine.js";
import { closed, customServer, echoServer, waitFor } from "../helpers/net.js";

const fx = useEngineFixture();
const BULK = 256 * 1024 * 1024;
const BLOCK = randomBytes(1 << 20);

/**
 * Write `total` bytes of slices of BLOCK at pseudo-random offsets and lengths (so a byte
 * delivered twice, late or from a reused buffer changes the hash), then end. Resolves with
 * the sha256 of what was written.
 */
async function send(s: net.Socket, total: number, seed: number): Promise<string> {
  const h = createHash("sha256");
  let x = seed >>> 0;
  for (let sent = 0; sent < total; ) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const off = x % (BLOCK.length - 1);
    const len = Math.min(total - sent, 1 + (Math.imul(x, 2654435761) >>> 0) % (BLOCK.length - off));
    const chunk = BLOCK.subarray(off, off + len);
    h.update(chunk);
    sent += len;
    if (!s.write(chunk)) await drainOrClose(s);
    if (s.destroyed) throw new Error(`socket closed after ${sent} of ${total} bytes`);
  }
  s.end();
  return h.digest("hex");
}

/** Resolves on the socket's next 'drain' or its 'close', leaving no listener behind. */
function drainOrClose(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off("drain", done);
      s.off("close", done);
      resolve();
    };
    s.on("drain", done);
    s.on("close", done);
  });
}

/** The sha256 and length of everything `s` reads until its end. */
function receive(s: net.Socket): Promise<{ sha: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  s.on("data", (c: Buffer) => {
    h.update(c);
    bytes += c.length;
  });
  return new Promise((resolve, reject) => {
    s.once("end", () => resolve({ sha: h.digest("hex"), bytes }));
    s.once("error", reject);
  });
}

function text(s: net.Socket): Promise<string> {
  const parts: Buffer[] = [];
  s.on("data", (c: Buffer) => parts.push(c));
  return new Promise((resolve) => s.once("end", () => resolve(Buffer.concat(parts).toString())));
}

/** A logger that keeps the access-log lines. */
function capture(): { logger: pino.Logger; conns: Array<Record<string, unknown>> } {
  const conns: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n")) {
          if (!l) continue;
          const rec = JSON.parse(l) as Record<string, unknown>;
          if (rec.ev === "tcp_conn") conns.push(rec);
        }
        cb();
      },
    }),
  );
  return { logger, conns };
}

/** Open TCP socket handles of this process (net.Socket's and bare handles alike; listeners not counted). */
function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r.startsWith("TCP") && r !== "TCPServerWrap").length;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/**
 * A member that never completes a connect: a process that listens with backlog 1 and then
 * blocks (no CPU), its accept queue filled by two connections, so further SYNs are dropped.
 */
async function blackHoleMember(): Promise<{ port: number; fillers: net.Socket[] }> {
  const code =
    "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{" +
    "process.stdout.write(s.address().port+'\\n',()=>Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,30000))})";
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  const port = Number(line.toString().trim());
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const f = net.connect({ port, host: "127.0.0.1" });
    f.on("error", () => undefined);
    fillers.push(f);
    await once(f, "connect");
  }
  return { port, fillers };
}

describe.each(DATAPLANES)("data integrity and clean-up (%s data plane)", (dataplane) => {
  const lb = (port: number, engine: Record<string, unknown> = {}) =>
    fx.lb({ members: [{ id: "m-0", protocol_port: port }], engine, dataplane });

  it("forward: 256 MiB client → member arrive intact; the client half-closes first and then gets the member's answer", async () => {
    const member = await fx.track(
      customServer(
        (s) => {
          void receive(s).then((r) => s.end(`${r.sha} ${r.bytes}`));
        },
        { allowHalfOpen: true },
      ),
    );
    const { port } = await lb(member.port);
    const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const answer = text(c);
    const sha = await send(c, BULK, 1);
    expect(await answer).toBe(`${sha} ${BULK}`);
    await closed(c, 10_000);
  }, 60_000);

  it("reverse: 256 MiB member → client arrive intact; the member half-closes first and then gets the client's answer", async () => {
    let sent: Promise<string> | undefined;
    let heard: Promise<string> | undefined;
    const member = await fx.track(
      customServer(
        (s) => {
          heard = text(s);
          sent = send(s, BULK, 2);
        },
        { allowHalfOpen: true },
      ),
    );
    const { port } = await lb(member.port);
    const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const r = await receive(c);
    c.end(`${r.sha} ${r.bytes}`);
    await closed(c, 10_000);
    expect(`${r.sha} ${r.bytes}`).toBe(`${await sent!} ${BULK}`);
    expect(await heard!).toBe(`${r.sha} ${r.bytes}`);
  }, 60_000);

  it("echo: 256 MiB each way at once come back intact", async () => {
    const member = await fx.track(echoServer());
    const { port } = await lb(member.port);
    const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const back = receive(c);
    const sha = await send(c, BULK, 3);
    expect(await back).toEqual({ sha, bytes: BULK });
    await closed(c, 10_000);
  }, 60_000);

  /**
   * A member writes `piece` over and over (each in its own turn when `eachTurn`) to a client
   * that stops reading at once, until no 'drain' comes for 500 ms or `max` bytes. Checks that
   * the member was held back and what lb4 holds; returns how much more memory the process uses.
   */
  async function pausedReader(piece: Buffer, max: number, eachTurn: boolean): Promise<{ rss: number; arrayBuffers: number }> {
    let written = 0;
    let over = false;
    let stalled!: () => void;
    const stall = new Promise<void>((r) => (stalled = r));
    const member = await fx.track(
      customServer((s) => {
        s.setNoDelay(true);
        const next = (): void => {
          for (;;) {
            if (over) return;
            if (s.destroyed || written >= max) return stalled();
            written += piece.length;
            if (!s.write(piece)) {
              const t = setTimeout(() => ((over = true), stalled()), 500);
              s.once("drain", () => (clearTimeout(t), next()));
              return;
            }
            if (eachTurn) return void setImmediate(next);
          }
        };
        next();
      }),
    );
    const { h, port } = await lb(member.port);
    const before = process.memoryUsage();
    const c = net.connect({ port, host: "127.0.0.1" });
    try {
      c.pause();
      await stall;
      expect(written).toBeLessThan(max);
      const [session] = [...(h.engine.listener("ls-1") as TcpListener | HandleTcpListener).sessions];
      // handles: the destination's write queue up to HIGH_WATER plus one read. net.Socket also
      // keeps a readable buffer: up to one read past the client socket's writable high-water
      // mark, and the member socket's readable buffer (its high-water mark and one read) until
      // the pause reaches its handle (Node 20: 16 KiB marks, 64 KiB reads).
      const bound = dataplane === "handles" ? HIGH_WATER + READ_BUFFER_BYTES : 2 * (16 * 1024 + 64 * 1024);
      expect(session!.heldBytes()).toBeLessThanOrEqual(bound);
      const after = process.memoryUsage();
      return { rss: after.rss - before.rss, arrayBuffers: after.arrayBuffers - before.arrayBuffers };
    } finally {
      // Also on a failed assertion: a connection left open would fail every later clean-up check.
      over = true;
      c.destroy();
      for (const s of member.sockets) s.destroy();
    }
  }

  it("a client that stops reading while the member sends holds the member back; lb4's memory stays bounded", async () => {
    const grew = await pausedReader(Buffer.alloc(1 << 20, 9), 1 << 30, false);
    expect(grew.rss).toBeLessThan(64 * 1024 * 1024);
  }, 30_000);

  it("a member that sends small pieces to a client that stops reading: lb4 holds a few read buffers, not one per piece", async () => {
    const grew = await pausedReader(Buffer.alloc(100, 7), 64 << 20, true);
    // A queued write keeps its whole read buffer: one per piece would be hundreds of them.
    expect(grew.arrayBuffers).toBeLessThan(8 * 1024 * 1024);
  }, 30_000);

  it("a client's RST in mid-stream closes the member side and is logged client_error ECONNRESET", async () => {
    const { logger, conns } = capture();
    let got = 0;
    const member = await fx.track(customServer((s) => s.on("data", (d: Buffer) => (got += d.length))));
    const { h, port } = await lb(member.port, { logger });
    const c = net.connect({ port, host: "127.0.0.1" });
    c.on("error", () => undefined);
    c.write(Buffer.alloc(256 * 1024, 1));
    await waitFor(() => got > 0, 5000, "bytes at the member");
    c.resetAndDestroy();
    await waitFor(() => member.sockets.size === 0, 5000, "the member side closed");
    await waitFor(() => h.activeConnections() === 0, 5000, "the connection to end");
    await waitFor(() => conns.length === 1, 5000, "the access-log line");
    expect(conns[0]).toMatchObject({ end: "client_error", error: "ECONNRESET" });
  });

  it("a member's RST in mid-stream closes the client and is logged member_error ECONNRESET", async () => {
    const { logger, conns } = capture();
    const member = await fx.track(
      customServer((s) => {
        s.write(Buffer.alloc(128 * 1024, 2));
        s.once("data", () => s.resetAndDestroy());
      }),
    );
    const { h, port } = await lb(member.port, { logger });
    const c = net.connect({ port, host: "127.0.0.1" });
    c.on("error", () => undefined);
    let got = 0;
    c.on("data", (d: Buffer) => (got += d.length));
    await waitFor(() => got > 0, 5000, "bytes from the member");
    c.write("x");
    await closed(c);
    await waitFor(() => h.activeConnections() === 0, 5000, "the connection to end");
    await waitFor(() => conns.length === 1, 5000, "the access-log line");
    expect(conns[0]).toMatchObject({ end: "member_error", error: "ECONNRESET" });
  });

  it("a client that closes while lb4 is still connecting: the connect times out, nothing is left open", async () => {
    const { logger, conns } = capture();
    const hole = await blackHoleMember();
    const { h, port } = await lb(hole.port, { logger });
    const c = net.connect({ port, host: "127.0.0.1" });
    c.on("error", () => undefined);
    await once(c, "connect");
    c.write("early");
    const l = h.engine.listener("ls-1")!;
    await waitFor(() => l.stats.total === 1, 5000, "lb4 connecting to the member");
    c.destroy();
    await waitFor(() => h.activeConnections() === 0, 5000, "the connection to end");
    expect([...h.engine.pool("pool-1")!.members.values()][0]!.active).toBe(0);
    await waitFor(() => conns.length === 1, 5000, "the access-log line");
    expect(conns[0]).toMatchObject({ end: "connect_failed", error: "ETIMEDOUT" });
    for (const f of hole.fillers) f.destroy();
    await waitFor(() => tcpSockets() === 0, 5000, "no TCP socket handle left");
  });

  it("1,000 connections closed at random points leave 0 active connections and no handle", async () => {
    const member = await fx.track(echoServer());
    const { h, port } = await lb(member.port);
    let x = 12345;
    let echoed = 0;
    const rand = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const one = async (): Promise<void> => {
      const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: rand(2) === 0 });
      c.on("error", () => undefined);
      c.resume(); // read what the echo sends back, so no side waits on a full buffer
      c.once("data", () => echoed++);
      const act = rand(7);
      if (act === 0) {
        c.destroy(); // before the connect completes
      } else {
        await Promise.race([once(c, "connect"), once(c, "close")]);
        for (let i = rand(4); i > 0; i--) await new Promise((r) => setImmediate(r));
        if (act === 1) c.destroy();
        else if (act === 2) c.resetAndDestroy();
        else {
          c.write(Buffer.alloc(1 + rand(200_000), act));
          if (act === 3) c.destroy();
          else if (act === 4) c.resetAndDestroy();
          else if (act === 5) c.end();
          else await Promise.race([once(c, "data"), once(c, "close")]).then(() => c.destroy());
        }
      }
      if (!c.closed) await closed(c, 10_000);
    };
    const queue = Array.from({ length: 1000 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (queue.pop() !== undefined) await one();
      }),
    );
    await waitFor(() => h.activeConnections() === 0, 10_000, "0 active connections");
    await waitFor(() => member.sockets.size === 0, 10_000, "the member's sockets closed");
    expect([...h.engine.pool("pool-1")!.members.values()][0]!.active).toBe(0);
    await waitFor(() => tcpSockets() === 0, 5000, "no TCP socket handle left");
    // Every client that got an echo was served (others may have gone before lb4 accepted them).
    expect(echoed).toBeGreaterThan(0);
    expect(h.engine.listener("ls-1")!.stats.total).toBeGreaterThanOrEqual(echoed);
  }, 60_000);
});
