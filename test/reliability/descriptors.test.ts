/**
 * lb4 near and past its descriptor limit (`prlimit --nofile`): below it every connection
 * works; a burst past it (EMFILE on accept, on the upstream connect, on UDP flow sockets)
 * leaves lb4 up, its admin API answering, its health checks working, and every count back
 * to 0 once the clients are gone.
 */
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitFor, type TestServer } from "../helpers/net.js";
import { holdOne, lineServer, udpEcho, type Held, type UdpEcho } from "./helpers/backends.js";
import { envInt, missing, title } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";
import { adminBase, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";
import { oneRequest } from "./helpers/load.js";

const skip = missing("prlimit");
const NOFILE = 512;
/** Connections in the burst: each costs lb4 two descriptors, so this is well past the limit. */
const BURST = envInt("LB4_EMFILE_BURST", 700);

describe.skipIf(skip !== undefined)(title(`descriptor limit (lb4 under prlimit --nofile=${NOFILE})`, skip), () => {
  let dir: string;
  let backend: TestServer;
  let udp: UdpEcho;
  const held: Held[] = [];
  const udpClients: dgram.Socket[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-fd-"));
    backend = await lineServer("m1");
    udp = await udpEcho();
  });
  afterEach(async () => {
    for (const h of held.splice(0)) h.socket.destroy();
    for (const u of udpClients.splice(0)) u.close();
    await killAllLb4();
  });
  afterAll(async () => {
    await backend?.close();
    await udp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<{ lb: Lb4Proc; port: number; udpPort: number }> {
    const [port, udpPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const lb = await Lb4Proc.start({
      config: {
        ...adminBase(adminPort, path.join(dir, "state")),
        loadbalancers: [
          {
            id: "lb-fd",
            vip_address: "127.0.0.1",
            listeners: [
              { id: "ls-tcp", protocol: "TCP", protocol_port: port, default_pool_id: "pool-tcp", keepalive_timeout: 10 },
              { id: "ls-udp", protocol: "UDP", protocol_port: udpPort, default_pool_id: "pool-udp", keepalive_timeout: 10 },
            ],
            pools: [
              {
                id: "pool-tcp",
                protocol: "TCP",
                healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 2 },
                members: [{ id: "m1", address: "127.0.0.1", protocol_port: backend.port }],
              },
              { id: "pool-udp", protocol: "UDP", members: [{ id: "u1", address: "127.0.0.1", protocol_port: udp.port }] },
            ],
          },
        ],
      },
      file: path.join(dir, "lb4.yaml"),
      adminUrl: `http://127.0.0.1:${adminPort}`,
      nofile: NOFILE,
    });
    await waitFor(async () => (await lb.status("pool-tcp", "m1")) === "ONLINE", 10_000, "m1 ONLINE");
    return { lb, port, udpPort };
  }

  const offlineEvents = (lb: Lb4Proc) => lb.events.filter((e) => e.ev === "health" && e.to === "OFFLINE").length;

  it("well below the limit every concurrent connection works, and the count returns to 0", async () => {
    const { lb, port } = await start();
    expect((await oneRequest("127.0.0.1", port, 0, 5000)).ok).toBe(true);
    const base = lb.fds();
    // 60% of what is left, two descriptors per connection: room for any reserve lb4 keeps.
    const n = Math.floor(((NOFILE - base) * 0.6) / 2);
    const got = await Promise.all(Array.from({ length: n }, (_, i) => holdOne("127.0.0.1", port, i, 10_000)));
    held.push(...got);
    const ok = got.filter((h) => h.ok).length;
    const active = await lb.active();
    const fds = lb.fds();
    for (const h of held.splice(0)) h.socket.destroy();
    const after = await lb.settle();
    figure("descriptors: near the limit", `${ok}/${n} concurrent connections answered with ${fds} of ${NOFILE} descriptors open (${base} at rest); active ${active} → ${after}`, "every connection below the limit works; active back to 0");
    expect(ok).toBe(n);
    expect(active).toBe(n);
    expect(after).toBe(0);
  });

  it(`a TCP burst of ${BURST} connections past the limit (EMFILE): lb4 stays up, admin and health checks work, counts return to 0`, async () => {
    const { lb, port } = await start();
    const got = await Promise.all(Array.from({ length: BURST }, (_, i) => holdOne("127.0.0.1", port, i, 10_000)));
    held.push(...got);
    const ok = got.filter((h) => h.ok).length;
    const reasons: Record<string, number> = {};
    for (const h of got) if (!h.ok) reasons[h.error!] = (reasons[h.error!] ?? 0) + 1;
    // While the answered connections are held open and descriptors are short:
    const aliveDuring = lb.alive();
    const t0 = Date.now();
    const healthz = await lb.api("GET", "/healthz", { timeoutMs: 5000 }).then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    const healthzMs = Date.now() - t0;
    const listeners = await lb.api("GET", "/v3/elb/listeners", { timeoutMs: 5000 }).then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    const peakFds = lb.fds();
    const offlineDuring = offlineEvents(lb);
    for (const h of held.splice(0)) h.socket.destroy();
    const after = await lb.settle();
    const fresh = [];
    for (let i = 0; i < 20; i++) fresh.push(await oneRequest("127.0.0.1", port, 10_000 + i, 5000));
    const status = await lb.status("pool-tcp", "m1");
    figure(
      "descriptors: EMFILE burst (TCP)",
      `${BURST} connections at once: ${ok} answered, refused: ${JSON.stringify(reasons)}; ${peakFds}/${NOFILE} descriptors; /healthz → ${healthz} in ${healthzMs} ms; active after: ${after}`,
      "lb4 stays up; admin API answers; health checks keep the member ONLINE; active back to 0; new connections work",
    );
    expect(aliveDuring).toBe(true);
    expect(ok, "some connections of the burst were served").toBeGreaterThan(0);
    expect(healthz, "GET /healthz during the burst").toBe(200);
    expect(listeners, "GET /v3/elb/listeners during the burst").toBe(200);
    expect(offlineDuring, "health checks failed for lack of descriptors (member went OFFLINE)").toBe(0);
    expect(after, "active connections after the burst").toBe(0);
    expect(fresh.filter((o) => !o.ok), "requests after the burst").toEqual([]);
    expect(status).toBe("ONLINE");
    expect(lb.alive()).toBe(true);
  });

  it(`a UDP burst from ${BURST} source ports (one flow socket each): lb4 stays up, admin works, flows expire back to 0`, async () => {
    const { lb, udpPort } = await start();
    const answers = await Promise.all(
      Array.from(
        { length: BURST },
        (_, i) =>
          new Promise<boolean>((resolve) => {
            const u = dgram.createSocket("udp4");
            udpClients.push(u);
            u.on("error", () => resolve(false));
            const t = setTimeout(() => resolve(false), 5000);
            u.on("message", (m) => {
              clearTimeout(t);
              resolve(m.toString() === `u${i}`);
            });
            u.bind(0, "127.0.0.1", () => u.send(`u${i}`, udpPort, "127.0.0.1"));
          }),
      ),
    );
    const ok = answers.filter(Boolean).length;
    const aliveDuring = lb.alive();
    const healthz = await lb.api("GET", "/healthz", { timeoutMs: 5000 }).then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    const peakFds = lb.fds();
    const activeDuring = await lb.active().catch(() => -1);
    for (const u of udpClients.splice(0)) u.close();
    // Flows end after keepalive_timeout (10 s) without traffic.
    const after = await lb.settle(30_000);
    const again = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket("udp4");
      const t = setTimeout(() => {
        u.close();
        resolve(false);
      }, 5000);
      u.on("message", (m) => {
        clearTimeout(t);
        u.close();
        resolve(m.toString() === "again");
      });
      u.bind(0, "127.0.0.1", () => u.send("again", udpPort, "127.0.0.1"));
    });
    figure(
      "descriptors: EMFILE burst (UDP flows)",
      `${BURST} source ports: ${ok} answered; ${peakFds}/${NOFILE} descriptors; ${activeDuring} flows open; /healthz → ${healthz}; active after expiry: ${after}`,
      "lb4 stays up; admin API answers; flows expire back to 0; new flows work",
    );
    expect(aliveDuring).toBe(true);
    expect(ok).toBeGreaterThan(0);
    expect(healthz, "GET /healthz during the UDP burst").toBe(200);
    expect(after, "UDP sessions after expiry").toBe(0);
    expect(again, "a new flow after the burst").toBe(true);
    expect(lb.alive()).toBe(true);
  });
});
