/** TCP data plane on real loopback sockets (SPEC §3, issue "TCP load balancing engine"). */
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { TcpListener } from "../../src/dataplane/tcp.js";
import { HandleTcpListener } from "../../src/dataplane/tcp-handles.js";
import { setListenerNoDelay } from "../../src/platform/node-internals.js";
import { DATAPLANES, useEngineFixture } from "../helpers/engine.js";
import { closed, connect, customServer, echoServer, freePort, nameServer, request, silentServer, waitFor } from "../helpers/net.js";

const fx = useEngineFixture();
const track = fx.track;

// The same suite on both TCP data planes (issue 15: equivalence).
describe.each(DATAPLANES)("TCP forwarding (%s data plane)", (dataplane) => {
  /** Members as { port, weight?, id? } on 127.0.0.1. */
  function lb(members: Array<{ port: number; weight?: number; id?: string }>, listener: Record<string, unknown> = {}, pool: Record<string, unknown> = {}) {
    return fx.lb({ members: members.map((m, i) => ({ id: m.id ?? `m-${i}`, protocol_port: m.port, weight: m.weight ?? 1 })), listener, pool, dataplane });
  }

  it("runs on the data plane it is parametrised with", async () => {
    const echo = await track(echoServer());
    const { h } = await lb([{ port: echo.port }]);
    expect(h.engine.listener("ls-1")).toBeInstanceOf(dataplane === "handles" ? HandleTcpListener : TcpListener);
  });

  it("splits 300 new connections 225:75:0 over weights 3:1:0", async () => {
    const a = await track(nameServer("a"));
    const b = await track(nameServer("b"));
    const c = await track(nameServer("c"));
    const { port } = await lb([{ port: a.port, weight: 3 }, { port: b.port, weight: 1 }, { port: c.port, weight: 0 }]);
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let batch = 0; batch < 30; batch++) {
      const names = await Promise.all(Array.from({ length: 10 }, () => request(port)));
      for (const n of names) counts[n] = (counts[n] ?? 0) + 1;
    }
    expect(counts.a! + counts.b! + counts.c!).toBe(300);
    expect(Math.abs(counts.a! - 225)).toBeLessThanOrEqual(6);
    expect(Math.abs(counts.b! - 75)).toBeLessThanOrEqual(6);
    expect(counts.c).toBe(0);
  });

  it("retries a refusing member and delivers bytes the client sent before the upstream was up", async () => {
    const dead = await freePort(); // nothing listens here: connect is refused
    const echo = await track(echoServer());
    const { h, port } = await lb([{ port: dead, weight: 10, id: "dead" }, { port: echo.port, weight: 1, id: "echo" }]);
    for (let i = 0; i < 10; i++) {
      const s = net.connect({ port, host: "127.0.0.1" });
      s.write(`hello-${i}`); // written at once, before lb4 has reached any member
      s.end();
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      await closed(s);
      expect(Buffer.concat(chunks).toString()).toBe(`hello-${i}`);
    }
    const stats = h.engine.listener("ls-1")!.stats;
    expect(stats.connectErrors).toBeGreaterThanOrEqual(1);
    expect(stats.retries).toBe(stats.connectErrors);
    expect(stats.refusedNoMember).toBe(0);
  });

  it("closes the client when every member refuses (3 tries at most, each member once)", async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const { h, port } = await lb(ports.map((p) => ({ port: p })));
    expect(await request(port, { send: "x" })).toBe("");
    const stats = h.engine.listener("ls-1")!.stats;
    expect(stats.connectErrors).toBe(3);
    expect(stats.retries).toBe(2);
  });

  it("refuses a black-listed client and lets others in", async () => {
    const a = await track(nameServer("a"));
    const { h, port } = await lb([{ port: a.port }], { ipgroup: { type: "black", ip_list: ["127.0.0.1", "10.0.0.0/8"] } });
    expect(await request(port)).toBe("");
    const other = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.2" });
    const got: Buffer[] = [];
    other.on("data", (c: Buffer) => got.push(c));
    await closed(other);
    expect(Buffer.concat(got).toString()).toBe("a");
    expect(h.engine.listener("ls-1")!.stats.refusedAcl).toBe(1);
    expect(a.accepted).toBe(1);
  });

  it("a whitelist admits only listed clients; an empty whitelist admits none", async () => {
    const a = await track(nameServer("a"));
    const { h, port } = await lb([{ port: a.port }], { ipgroup: { type: "white", ip_list: ["127.0.0.2/32", "::1"] } });
    expect(await request(port)).toBe("");
    const ok = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.2" });
    const got: Buffer[] = [];
    ok.on("data", (c: Buffer) => got.push(c));
    await closed(ok);
    expect(Buffer.concat(got).toString()).toBe("a");
    await h.reload({
      ...h.config,
      loadbalancers: [{ ...h.config.loadbalancers[0]!, listeners: [{ ...h.config.loadbalancers[0]!.listeners[0]!, ipgroup: { type: "white", ip_list: [] } }] }],
    });
    const denied = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.2" });
    denied.on("data", (c: Buffer) => got.push(c));
    await closed(denied);
    expect(Buffer.concat(got).toString()).toBe("a");
    expect(h.engine.listener("ls-1")!.stats.refusedAcl).toBe(2);
  });

  it("holds connection_limit: the third concurrent client is refused, a later one admitted", async () => {
    const hold = await track(silentServer());
    const { h, port } = await lb([{ port: hold.port }], { connection_limit: 2 });
    const c1 = await connect(port);
    const c2 = await connect(port);
    await waitFor(() => hold.accepted === 2, 5000, "2 upstream connections");
    const c3 = await connect(port);
    await closed(c3);
    expect(h.engine.listener("ls-1")!.stats.refusedLimit).toBe(1);
    c1.destroy();
    await waitFor(() => h.activeConnections() === 1, 5000, "one connection left");
    const c4 = await connect(port);
    await waitFor(() => hold.accepted === 3, 5000, "third upstream connection");
    c2.destroy();
    c4.destroy();
  });

  it("TCP_NODELAY is set once on the listening socket where accepted sockets inherit it (Linux)", async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      // false means lb4 falls back to one setsockopt per accepted socket: correct, only slower.
      expect(setListenerNoDelay(srv)).toBe(process.platform === "linux");
    } finally {
      srv.close();
    }
  });

  it("moves 1 MiB each way intact, client half-closing first", async () => {
    const payload = randomBytes(1 << 20);
    const reply = randomBytes(1 << 20);
    let received = Buffer.alloc(0);
    const backend = await track(
      customServer(
        (s) => {
          const parts: Buffer[] = [];
          s.on("data", (c: Buffer) => parts.push(c));
          s.on("end", () => {
            received = Buffer.concat(parts);
            s.end(reply); // speaks after the client's FIN
          });
        },
        { allowHalfOpen: true },
      ),
    );
    const { port } = await lb([{ port: backend.port }]);
    const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const parts: Buffer[] = [];
    s.on("data", (c: Buffer) => parts.push(c));
    s.end(payload);
    await closed(s, 10_000);
    expect(sha(received)).toBe(sha(payload));
    expect(sha(Buffer.concat(parts))).toBe(sha(reply));
  });

  it("moves 1 MiB each way intact, member half-closing first", async () => {
    const fromServer = randomBytes(1 << 20);
    const fromClient = randomBytes(1 << 20);
    let received = Buffer.alloc(0);
    const srv = await track(
      customServer(
        (s) => {
          const parts: Buffer[] = [];
          s.on("data", (c: Buffer) => parts.push(c));
          s.on("end", () => {
            received = Buffer.concat(parts);
            s.destroy();
          });
          s.end(fromServer); // FIN first, then keep reading
        },
        { allowHalfOpen: true },
      ),
    );
    const { port } = await lb([{ port: srv.port }]);
    const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const parts: Buffer[] = [];
    s.on("data", (c: Buffer) => parts.push(c));
    await once(s, "end"); // the member's half-close reached us...
    s.end(fromClient); // ...and we can still send
    await closed(s, 10_000);
    expect(sha(Buffer.concat(parts))).toBe(sha(fromServer));
    await waitFor(() => received.length === fromClient.length, 5000, "member got all client bytes");
    expect(sha(received)).toBe(sha(fromClient));
  });

  it("back-pressure: a member that does not read slows the client, and lb4 buffers little", async () => {
    const stalled = await track(customServer((s) => s.pause()));
    const { h, port } = await lb([{ port: stalled.port }]);
    const c = await connect(port);
    const chunk = Buffer.alloc(64 * 1024, 7);
    let written = 0;
    // Write until the client's own buffer is full and no 'drain' comes for 500 ms.
    for (;;) {
      if (c.write(chunk)) {
        written += chunk.length;
        if (written > 256 * 1024 * 1024) break;
        continue;
      }
      written += chunk.length;
      const drained = await new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), 500);
        c.once("drain", () => (clearTimeout(t), r(true)));
      });
      if (!drained) break;
    }
    expect(written).toBeLessThan(256 * 1024 * 1024); // the client was held back
    const [session] = [...(h.engine.listener("ls-1") as TcpListener | HandleTcpListener).sessions];
    const held = session!.heldBytes();
    expect(held).toBeLessThanOrEqual(256 * 1024); // lb4 holds at most about one buffer per side
    // A paused side learns of its peer's close only on its next read or write (or at the
    // idle timeout): close the member too, as a stalled member eventually would.
    c.destroy();
    for (const s of stalled.sockets) s.destroy();
  });

  it("closes an idle connection after keepalive_timeout (10 s)", async () => {
    const hold = await track(silentServer());
    const { h, port } = await lb([{ port: hold.port }], { keepalive_timeout: 10 });
    const s = await connect(port);
    const t0 = Date.now();
    await closed(s, 14_000);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(9_800);
    expect(took).toBeLessThan(13_000);
    expect(h.engine.listener("ls-1")!.stats.idleClosed).toBe(1);
  }, 20_000);

  it("a listener removed by a reload stops accepting, while its open connection keeps flowing and is still counted", async () => {
    const echo = await track(echoServer());
    const { h, port } = await lb([{ port: echo.port }]);
    const c = await connect(port);
    const got: Buffer[] = [];
    c.on("data", (d: Buffer) => got.push(d));
    await h.reload({ ...h.config, loadbalancers: [{ ...h.config.loadbalancers[0]!, listeners: [] }] });
    const refused = await new Promise<string>((r) => {
      const s = net.connect({ port, host: "127.0.0.1" });
      s.on("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"));
      s.on("connect", () => r("connected"));
    });
    expect(refused).toBe("ECONNREFUSED");
    c.write("still here");
    await waitFor(() => Buffer.concat(got).toString() === "still here", 3000, "the echo through the retired listener");
    expect(h.activeConnections()).toBe(1);
    c.end();
    await waitFor(() => h.activeConnections() === 0, 3000, "the retired connection to end");
  });

  it("refuses clients when no member is eligible, and weight 0 stops new connections only", async () => {
    const a = await track(silentServer());
    const { h, port } = await lb([{ port: a.port, id: "only" }]);
    const open = await connect(port);
    await waitFor(() => a.accepted === 1, 5000, "first connection");
    await h.updateMember("pool-1", "only", { weight: 0 });
    const refused = await connect(port);
    await closed(refused);
    expect(h.engine.listener("ls-1")!.stats.refusedNoMember).toBe(1);
    expect(open.destroyed).toBe(false); // existing connection continues
    expect(h.activeConnections()).toBe(1);
    open.destroy();
  });
});

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}
