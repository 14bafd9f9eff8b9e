/** Member lifecycle through the engine on real loopback sockets: health, drain, fail-open, persistence. */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { FakeClock, FakeTimers } from "../../src/clock.js";
import { useEngineFixture } from "../helpers/engine.js";
import { closed, connect, freePort, nameServer, request, silentServer, waitFor } from "../helpers/net.js";

const fx = useEngineFixture();
const track = fx.track;

function lb(pool: Record<string, unknown>, members: Array<Record<string, unknown>>) {
  return fx.lb({ pool, members });
}

const fastMonitor = { type: "TCP", delay: 1, timeout: 1, max_retries: 2, max_retries_down: 2 };

describe("health checks through the engine", () => {
  it("takes a member that stops listening OFFLINE in time, sends it nothing, and brings it back after max_retries passes", async () => {
    const a = await track(nameServer("a"));
    let b = await track(nameServer("b"));
    const bPort = b.port;
    const { h, port } = await lb({ healthmonitor: fastMonitor }, [{ protocol_port: a.port }, { protocol_port: bPort }]);
    const members = h.engine.pool("pool-1")!.members;
    await waitFor(() => [...members.values()].every((m) => m.status === "ONLINE"), 3000, "both members ONLINE after the first check");

    await b.close();
    fx.servers.splice(fx.servers.indexOf(b), 1);
    const t0 = Date.now();
    await waitFor(() => members.get("m-1")!.status === "OFFLINE", 5000, "member b OFFLINE");
    // delay × max_retries_down + timeout = 3 s, plus the first check's random offset (≤ delay).
    expect(Date.now() - t0).toBeLessThanOrEqual(4000);
    const names = await Promise.all(Array.from({ length: 10 }, () => request(port)));
    expect(names).toEqual(Array(10).fill("a"));
    expect(h.engine.listener("ls-1")!.stats.connectErrors).toBe(0); // never even tried b

    b = await track(nameServer("b", "127.0.0.1", bPort));
    const t1 = Date.now();
    await waitFor(() => members.get("m-1")!.status === "ONLINE", 5000, "member b back ONLINE");
    expect(Date.now() - t1).toBeGreaterThanOrEqual(900); // needs 2 passes, one delay apart
    const after = await Promise.all(Array.from({ length: 10 }, () => request(port)));
    expect(after.filter((n) => n === "b").length).toBe(5);
  });

  it("fails open with minimum_healthy_member_count 1 when every member is OFFLINE, and refuses with 0", async () => {
    const a = await track(nameServer("a"));
    const dead = await freePort();
    const monitor = { ...fastMonitor, monitor_port: dead }; // checks fail, data port works
    const open = await lb({ healthmonitor: monitor, pool_health: { minimum_healthy_member_count: 1 } }, [{ protocol_port: a.port }]);
    const shut = await lb({ healthmonitor: monitor }, [{ protocol_port: a.port }]);
    await waitFor(() => open.h.engine.pool("pool-1")!.members.get("m-0")!.status === "OFFLINE", 3000, "member checked OFFLINE");
    await waitFor(() => shut.h.engine.pool("pool-1")!.members.get("m-0")!.status === "OFFLINE", 3000, "member checked OFFLINE");
    expect(await request(open.port)).toBe("a");
    expect(await request(shut.port)).toBe("");
    expect(shut.h.engine.listener("ls-1")!.stats.refusedNoMember).toBe(1);
  });
});

describe("connection drain", () => {
  it("a long-lived connection survives removal until the drain timeout, then is closed and counted", async () => {
    const hold = await track(silentServer());
    const other = await track(nameServer("other"));
    // Fake time for the engine (its tick and clock); the sockets are real.
    const clock = new FakeClock(1_000);
    const timers = new FakeTimers(clock);
    const { h, port } = await fx.lb({ pool: { connection_drain: { enable: true, timeout: 10 } }, members: [{ protocol_port: hold.port }, { protocol_port: other.port }], engine: { clock, timers } });
    // Round robin with equal weights: the first connection goes to m-0 (hold).
    const c = await connect(port);
    let isClosed = false;
    c.once("close", () => (isClosed = true));
    await waitFor(() => hold.sockets.size === 1, 3000, "connection on the held member");
    const t0 = clock.now();
    await h.removeMember("pool-1", "m-0");
    expect(await request(port)).toBe("other"); // new connections avoid the removed member
    expect(c.destroyed).toBe(false);
    for (let i = 0; i < 130 && !isClosed; i++) {
      await timers.advance(100);
      if (h.engine.listener("ls-1")!.stats.drainClosed > 0) await waitFor(() => isClosed, 2000, "the drained client to close");
    }
    const took = clock.now() - t0;
    expect(took).toBeGreaterThanOrEqual(9_800);
    expect(took).toBeLessThan(12_000);
    expect(h.engine.listener("ls-1")!.stats.drainClosed).toBe(1);
  });

  it("without drain, a removed member's connection runs on until it ends by itself", async () => {
    const hold = await track(silentServer());
    const { h, port } = await lb({}, [{ protocol_port: hold.port }]);
    const c = await connect(port);
    await waitFor(() => hold.sockets.size === 1, 3000, "connection on the member");
    await h.removeMember("pool-1", "m-0");
    await new Promise((r) => setTimeout(r, 500)); // several engine ticks (100 ms) pass
    expect(c.destroyed).toBe(false);
    const got: Buffer[] = [];
    c.on("data", (d: Buffer) => got.push(d));
    [...hold.sockets][0]!.end("bye");
    await closed(c);
    expect(Buffer.concat(got).toString()).toBe("bye");
  });
});

describe("session persistence", () => {
  it("keeps a client IP on its member across connections, and moves it when that member is removed", async () => {
    const a = await track(nameServer("a"));
    const b = await track(nameServer("b"));
    const { h, port } = await lb({ session_persistence: { type: "SOURCE_IP", persistence_timeout: 1 } }, [{ protocol_port: a.port }, { protocol_port: b.port }]);
    const viaLocal = (local: string) =>
      new Promise<string>((resolve) => {
        const s = net.connect({ port, host: "127.0.0.1", localAddress: local });
        const got: Buffer[] = [];
        s.on("data", (d: Buffer) => got.push(d));
        s.on("error", () => undefined);
        s.on("close", () => resolve(Buffer.concat(got).toString()));
      });
    const first = await viaLocal("127.0.0.5");
    for (let i = 0; i < 8; i++) expect(await viaLocal("127.0.0.5")).toBe(first);
    const otherClients = new Set(await Promise.all(["127.0.0.6", "127.0.0.7"].map(viaLocal)));
    expect(otherClients.size).toBe(2);
    await h.removeMember("pool-1", first === "a" ? "m-0" : "m-1");
    expect(await viaLocal("127.0.0.5")).toBe(first === "a" ? "b" : "a");
  });
});
