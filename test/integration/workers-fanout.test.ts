/**
 * The primary's data plane driven directly (issue 14): snapshots published faster than the
 * workers answer leave no worker behind, and a limit set at runtime counts the connections
 * already open, as in one process. Real worker processes (through tsx), real sockets.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock, systemTimers } from "../../src/clock.js";
import { gate } from "../../src/control/gate.js";
import { SnapshotBuilder, type MemberFacts } from "../../src/control/snapshot-builder.js";
import { silentLogger } from "../../src/log.js";
import { ClusterDataPlane } from "../../src/workers/primary.js";
import { customServer, freePort, waitFor, type TestServer } from "../helpers/net.js";

let dp: ClusterDataPlane | undefined;
const servers: TestServer[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await dp?.close();
  dp = undefined;
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const start = () => new ClusterDataPlane({ logger: silentLogger(), clock: systemClock, timers: systemTimers, tuning: { connectTimeoutMs: 5000, tickMs: 1000 }, workers: 2 });
const facts = (status: (id: string) => "ONLINE" | "OFFLINE" | "NO_MONITOR"): MemberFacts =>
  ({ status: (_p: unknown, m: { id: string }) => status(m.id), ramp: () => null, crossVpc: () => false, snat: () => [] }) as unknown as MemberFacts;
/** The snapshot each worker acknowledged, as the primary tracks it. */
const acked = (d: ClusterDataPlane) => (d as unknown as { slots: Array<{ runs: { version: number } }> }).slots.map((s) => s.runs.version);

describe("ClusterDataPlane", () => {
  it("bursts of snapshots published at once (health transitions) leave every worker on the newest", async () => {
    const port = await freePort();
    const members = Array.from({ length: 6 }, (_, i) => ({ id: `m${i}`, address: "127.0.0.1", protocol_port: 10000 + i }));
    const cfg = gate({ loadbalancers: [{ id: "lb", vip_address: "127.0.0.1", listeners: [{ id: "ls", protocol: "TCP", protocol_port: port, default_pool_id: "p" }], pools: [{ id: "p", protocol: "TCP", members }] }] });
    const status = new Map<string, "ONLINE" | "OFFLINE">();
    const f = facts((id) => status.get(id) ?? "ONLINE");
    const b = new SnapshotBuilder();
    dp = start();
    await dp.apply(b.build(cfg, f));
    for (let round = 0; round < 40; round++) {
      const all: Array<Promise<unknown>> = [];
      for (let k = 0; k < 4; k++) {
        const id = `m${(round * 4 + k) % 6}`;
        status.set(id, status.get(id) === "OFFLINE" ? "ONLINE" : "OFFLINE");
        all.push(dp.apply(b.build(cfg, f, new Set(["p"]))));
      }
      await Promise.all(all);
      const want = dp.snapshot.version;
      expect(acked(dp), `round ${round}`).toEqual([want, want]);
    }
  });

  it("a connection_limit set at runtime counts the connections already open in the workers", async () => {
    const backend = await customServer((s) => {
      s.on("error", () => undefined);
      s.write("hi");
    });
    servers.push(backend);
    const port = await freePort();
    const cfgOf = (limit: number) =>
      gate({
        loadbalancers: [
          {
            id: "lb",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls", protocol: "TCP", protocol_port: port, default_pool_id: "p", connection_limit: limit }],
            pools: [{ id: "p", protocol: "TCP", members: [{ id: "m0", address: "127.0.0.1", protocol_port: backend.port }] }],
          },
        ],
      });
    const f = facts(() => "NO_MONITOR");
    const b = new SnapshotBuilder();
    dp = start();
    await dp.apply(b.build(cfgOf(0), f));
    // Served: the backend's greeting arrives; refused: the connection closes first. Neither within 5 s fails.
    const served = () =>
      new Promise<boolean>((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1");
        sockets.push(s);
        const t = setTimeout(() => reject(new Error("connection neither served nor closed within 5000 ms")), 5000);
        const done = (ok: boolean) => {
          clearTimeout(t);
          resolve(ok);
        };
        s.on("error", () => done(false));
        s.once("data", () => done(true));
        s.once("close", () => done(false));
      });
    for (let i = 0; i < 4; i++) expect(await served()).toBe(true);
    await dp.apply(b.build(cfgOf(4), f));
    for (let i = 0; i < 6; i++) expect(await served(), `connection ${i + 5}`).toBe(false);
    // One of the four closes: its slot is free for the next.
    sockets[0]!.destroy();
    await waitFor(async () => {
      await dp!.refresh();
      return dp!.activeConnections === 4 - 1;
    }, 5000, "the closed connection to be gone");
    expect(await served()).toBe(true);
    expect(await served()).toBe(false);
  });
});
