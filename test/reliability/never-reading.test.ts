/**
 * A reader that never reads: clients connect through lb4 and read nothing while the backend
 * tries to stream a lot to each. Back-pressure must stop the backend instead of lb4
 * buffering the stream: lb4's RSS stays bounded, and the stalled connection still works
 * once its client reads again.
 */
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { customServer, freePort, waitFor, type TestServer } from "../helpers/net.js";
import { envInt } from "./helpers/env.js";
import { figure, mb } from "./helpers/figures.js";
import { adminBase, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";
import { oneRequest } from "./helpers/load.js";

const READERS = envInt("LB4_NEVER_READING_CLIENTS", 8);
/** What the backend tries to send to each client: far more than any buffer on the way. */
const PER_CLIENT = 1024 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
/** In flight per connection after back-pressure: kernel buffers of three sockets plus lb4's own; well below what a missing back-pressure would hold. */
const MAX_IN_FLIGHT = 64 * 1024 * 1024;
/** lb4's RSS growth for all the stalled connections together. */
const MAX_RSS_GROWTH = 64 * 1024 * 1024;

describe("a reader that never reads", () => {
  let dir: string;
  let streamer: TestServer;
  /** Bytes the kernel took from the backend, per backend socket. */
  const sent = new Map<net.Socket, number>();
  const clients: net.Socket[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-reader-"));
    // On "stream\n", write PER_CLIENT bytes as fast as the socket takes them; anything else is a line request.
    streamer = await customServer((s) => {
      let buf = "";
      s.on("data", (c: Buffer) => {
        buf += c.toString("latin1");
        if (!buf.includes("\n")) return;
        if (!buf.startsWith("stream")) {
          s.end(`m1 ${buf.trim()}\n`);
          return;
        }
        sent.set(s, 0);
        const pump = () => {
          while ((sent.get(s) ?? 0) < PER_CLIENT && !s.destroyed) {
            sent.set(s, (sent.get(s) ?? 0) + CHUNK.length);
            if (!s.write(CHUNK)) {
              s.once("drain", pump);
              return;
            }
          }
        };
        pump();
      });
    });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await killAllLb4();
  });
  afterAll(async () => {
    await streamer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${READERS} clients that read nothing while the backend streams 1 GiB to each: lb4's RSS stays bounded`, async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const lb = await Lb4Proc.start({
      config: {
        ...adminBase(adminPort, path.join(dir, "state")),
        loadbalancers: [
          {
            id: "lb-r",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-r", protocol: "TCP", protocol_port: port, default_pool_id: "pool-r" }],
            pools: [{ id: "pool-r", protocol: "TCP", members: [{ id: "m1", address: "127.0.0.1", protocol_port: streamer.port }] }],
          },
        ],
      },
      file: path.join(dir, "lb4.yaml"),
      adminUrl: `http://127.0.0.1:${adminPort}`,
    });
    // Warm the paths once, then take the baseline.
    for (let i = 0; i < 20; i++) expect((await oneRequest("127.0.0.1", port, i, 5000)).ok).toBe(true);
    const rssBefore = lb.rss();

    for (let i = 0; i < READERS; i++) {
      const c = net.connect({ host: "127.0.0.1", port });
      c.on("error", () => undefined);
      c.pause(); // never reads
      clients.push(c);
      await new Promise<void>((r) => c.once("connect", () => r()));
      c.write("stream\n");
    }
    await waitFor(() => sent.size === READERS, 10_000, "every stream to start");
    // Back-pressure reached: the total stops growing (sampled, bounded).
    let last = -1;
    let stable = 0;
    let peakRss = rssBefore;
    await waitFor(
      () => {
        const total = [...sent.values()].reduce((a, b) => a + b, 0);
        peakRss = Math.max(peakRss, lb.rss());
        stable = total === last ? stable + 1 : 0;
        last = total;
        return stable >= 200; // about 2 s without growth
      },
      60_000,
      "the streams to stall on back-pressure",
    ).catch(() => undefined);
    const inFlight = [...sent.values()];
    const rssStalled = lb.rss();
    peakRss = Math.max(peakRss, rssStalled);

    // The stalled connection is alive: once its client reads, the stream flows again.
    const reader = clients[0]!;
    let received = 0;
    const want = Math.max(...inFlight) + 8 * 1024 * 1024;
    reader.on("data", (c: Buffer) => (received += c.length));
    reader.resume();
    await waitFor(() => received >= want, 30_000, "the resumed reader to get its bytes");

    for (const c of clients.splice(0)) c.destroy();
    const after = await lb.settle();
    figure(
      "never-reading clients",
      `${READERS} clients × 1 GiB offered: backend stalled after ${mb(Math.max(...inFlight))} per connection; lb4 RSS ${mb(rssBefore)} → ${mb(rssStalled)} (+${mb(rssStalled - rssBefore)}, peak +${mb(peakRss - rssBefore)}); resumed reader got ${mb(received)}; active after: ${after}`,
      `back-pressure holds the stream: < ${mb(MAX_IN_FLIGHT)} in flight per connection, RSS growth < ${mb(MAX_RSS_GROWTH)}; the connection resumes; active back to 0`,
    );
    for (const n of inFlight) expect(n, "bytes the backend could push into a connection whose client reads nothing").toBeLessThan(MAX_IN_FLIGHT);
    expect(peakRss - rssBefore, "lb4 RSS growth").toBeLessThan(MAX_RSS_GROWTH);
    expect(received).toBeGreaterThanOrEqual(want);
    expect(after).toBe(0);
    expect(lb.alive()).toBe(true);
  });
});
