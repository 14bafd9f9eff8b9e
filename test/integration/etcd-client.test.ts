/**
 * The etcd store client (src/store/etcd.ts) against a real etcd started by the test: one
 * member, then a 3-member cluster whose leader is killed with -9. Pure transport: puts,
 * ranges, compare-and-swap, watches that resume and report compaction, leases, deadlines
 * and failover. The figures (put → watch event, recovery after the leader dies) are printed,
 * not asserted.
 */
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Lb4Error, STORE_LEASE_NOT_FOUND, STORE_MESSAGE_TOO_LARGE, STORE_UNAVAILABLE, StoreError } from "../../src/errors.js";
import { EtcdClient, type WatchEvent, type WatchHandle, type WatchOptions } from "../../src/store/etcd.js";
import { etcdSkip, startEtcd, stopAllEtcd, type EtcdCluster } from "../helpers/etcd.js";
import { freePort, silentServer, waitFor, type TestServer } from "../helpers/net.js";

const title = (t: string): string => (etcdSkip ? `${t} (SKIPPED: ${etcdSkip})` : t);

/** Everything one watch reported, with arrival times. */
class Recorder {
  events: (WatchEvent & { at: number })[] = [];
  batches: number[][] = [];
  errors: Lb4Error[] = [];
  ready: string[] = [];
  compacted: number | undefined;
  /** onEvents revisions that were not the last event's (should stay empty). */
  mismatches: number[] = [];
  handle: WatchHandle | undefined;

  options(startRevision?: number): WatchOptions {
    return {
      ...(startRevision === undefined ? {} : { startRevision }),
      onEvents: (events, revision) => {
        const at = performance.now();
        this.batches.push(events.map((e) => e.modRevision));
        if (revision !== events[events.length - 1]!.modRevision) this.mismatches.push(revision);
        for (const e of events) this.events.push({ ...e, at });
      },
      onCompacted: (rev) => {
        this.compacted = rev;
      },
      onError: (err) => {
        this.errors.push(err);
      },
      onReady: (endpoint) => {
        this.ready.push(endpoint);
      },
    };
  }

  keys(): string[] {
    return this.events.map((e) => `${e.type} ${e.key}`);
  }

  seen(key: string): (WatchEvent & { at: number }) | undefined {
    return this.events.find((e) => e.key === key);
  }
}

const watches: WatchHandle[] = [];
function watch(client: EtcdClient, prefix: string, rec: Recorder, startRevision?: number): WatchHandle {
  const h = client.watch(prefix, rec.options(startRevision));
  rec.handle = h;
  watches.push(h);
  return h;
}
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
});
afterAll(async () => {
  await stopAllEtcd();
});

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Revisions strictly increasing with no repeats: nothing delivered twice, in order. */
function expectOrdered(rec: Recorder): void {
  expect(rec.mismatches).toEqual([]);
  const revs = rec.events.map((e) => e.modRevision);
  for (let i = 1; i < revs.length; i++) expect(revs[i]!, `event ${i} after ${revs[i - 1]}`).toBeGreaterThanOrEqual(revs[i - 1]!);
  const ids = rec.events.map((e) => `${e.modRevision} ${e.key}`);
  expect(new Set(ids).size).toBe(ids.length);
}

/**
 * A loopback TCP relay to etcd the test can cut (close every connection), make refuse new
 * connections, or freeze (keep connections open and forward nothing: a host that vanished).
 */
async function relay(targetPort: number): Promise<{ url: string; mode: "open" | "refuse" | "freeze"; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  };
  let mode: "open" | "refuse" | "freeze" = "open";
  const server = net.createServer((c) => {
    track(c);
    if (mode === "refuse") c.destroy();
    if (mode !== "open") return; // frozen: held open, nothing forwarded
    const u = net.connect(targetPort, "127.0.0.1");
    track(u);
    const pair: [net.Socket, net.Socket] = [c, u];
    pairs.add(pair);
    c.pipe(u).pipe(c);
    c.on("close", () => (u.destroy(), pairs.delete(pair)));
    u.on("close", () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut,
    get mode() {
      return mode;
    },
    set mode(m) {
      if (m === "freeze") {
        for (const [c, u] of pairs) {
          c.unpipe(u);
          u.unpipe(c);
          c.pause();
          u.pause();
        }
      }
      if (mode === "freeze" && m !== "freeze") cut(); // what froze stays dead
      mode = m;
    },
    close: async () => {
      cut();
      await new Promise((r) => server.close(r));
    },
  };
}

async function compact(endpoint: string, revision: number): Promise<void> {
  const res = await fetch(`${endpoint}/v3/kv/compaction`, { method: "POST", body: JSON.stringify({ revision: String(revision), physical: true }), signal: AbortSignal.timeout(5000) });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function expectStoreError(p: Promise<unknown>, code: string): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(StoreError);
  expect((err as StoreError).code, (err as Error).message).toBe(code);
  return err as StoreError;
}

describe.skipIf(etcdSkip !== undefined)(title("etcd client on one etcd member"), () => {
  let etcd: EtcdCluster;
  let client: EtcdClient;
  beforeAll(async () => {
    etcd = await startEtcd(1);
    client = new EtcdClient({ endpoints: etcd.endpoints });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("put, get and a prefix range give UTF-8 keys and values with their revisions, and nothing outside the prefix", async () => {
    const a = await client.put("/t/a", "1");
    const a2 = await client.put("/t/a", "2");
    await client.put("/t/b", "zwei ü €");
    await client.put("/t/c/d", "deep");
    await client.put("/t0", "next byte after '/'");
    await client.put("/u", "other");
    expect(a2.revision).toBe(a.revision + 1);

    const got = await client.get("/t/a");
    expect(got.kvs).toEqual([{ key: "/t/a", value: "2", createRevision: a.revision, modRevision: a2.revision, version: 2 }]);
    expect(got.revision).toBeGreaterThanOrEqual(a2.revision);

    const missing = await client.get("/t/none");
    expect(missing.kvs).toEqual([]);
    expect(missing.revision).toBe(got.revision);

    const r = await client.range("/t/");
    expect(r.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      ["/t/a", "2"],
      ["/t/b", "zwei ü €"],
      ["/t/c/d", "deep"],
    ]);
    expect((await client.range("/nothing-here/")).kvs).toEqual([]);

    const del = await client.delete("/t/", { prefix: true });
    expect(del.deleted).toBe(3);
    expect((await client.range("/t/")).kvs).toEqual([]);
    expect((await client.get("/t0")).kvs.map((kv) => kv.value)).toEqual(["next byte after '/'"]);
  });

  it("a compare-and-swap on mod_revision commits one of two writers that read the same revision and tells the other what is there", async () => {
    const { revision } = await client.put("/cas/x", "0");
    const attempt = (value: string) =>
      client.txn({
        compare: [{ key: "/cas/x", modRevision: revision }],
        success: [{ type: "put", key: "/cas/x", value }],
        failure: [{ type: "range", key: "/cas/x" }],
      });
    const first = await attempt("A");
    const second = await attempt("B");
    expect(first.succeeded).toBe(true);
    expect(first.revision).toBe(revision + 1);
    expect(second.succeeded).toBe(false);
    expect(second.revision).toBe(revision + 1);
    expect(second.responses).toEqual([{ type: "range", kvs: [expect.objectContaining({ key: "/cas/x", value: "A", modRevision: revision + 1 })] }]);
    expect((await client.get("/cas/x")).kvs[0]?.value).toBe("A");
  });

  it("two concurrent writers incrementing one counter by compare-and-swap lose no update over 50 increments", async () => {
    await client.put("/cas/counter", "0");
    const writers = [new EtcdClient({ endpoints: etcd.endpoints }), new EtcdClient({ endpoints: etcd.endpoints })];
    const conflicts = [0, 0];
    await Promise.all(
      writers.map(async (w, i) => {
        for (let done = 0; done < 25; ) {
          const cur = (await w.get("/cas/counter")).kvs[0]!;
          const r = await w.txn({
            compare: [{ key: "/cas/counter", modRevision: cur.modRevision }],
            success: [{ type: "put", key: "/cas/counter", value: String(Number(cur.value) + 1) }],
          });
          if (r.succeeded) done++;
          else conflicts[i]!++;
        }
      }),
    );
    const final = (await client.get("/cas/counter")).kvs[0]!;
    expect(final.value).toBe("50");
    expect(final.version).toBe(51);
    console.log(`etcd-client: 50 CAS increments by 2 writers, ${conflicts[0]! + conflicts[1]!} conflicts retried`);
  });

  it("create-if-absent (createRevision 0) succeeds once; a multi-key transaction writes and deletes at one revision, seen as one batch", async () => {
    const create = (v: string) => client.txn({ compare: [{ key: "/once/k", createRevision: 0 }], success: [{ type: "put", key: "/once/k", value: v }] });
    expect((await create("first")).succeeded).toBe(true);
    expect((await create("second")).succeeded).toBe(false);
    expect((await client.get("/once/k")).kvs[0]?.value).toBe("first");

    await client.put("/multi/old", "x");
    const rec = new Recorder();
    watch(client, "/multi/", rec);
    await waitFor(() => rec.ready.length > 0, 5000, "the watch to open");
    const t = await client.txn({
      compare: [{ key: "/multi/a", createRevision: 0 }],
      success: [
        { type: "put", key: "/multi/a", value: "1" },
        { type: "put", key: "/multi/b", value: "2" },
        { type: "delete", key: "/multi/old" },
      ],
    });
    expect(t.succeeded).toBe(true);
    expect(t.responses).toEqual([{ type: "put" }, { type: "put" }, { type: "delete", deleted: 1 }]);
    await waitFor(() => rec.events.length >= 3, 5000, "the three changes");
    expect(rec.batches).toEqual([[t.revision, t.revision, t.revision]]);
    expect(rec.keys()).toEqual(["put /multi/a", "put /multi/b", "delete /multi/old"]);
  });

  it("a watch delivers puts and deletes in order with their revisions (put → event time printed)", async () => {
    const rec = new Recorder();
    watch(client, "/w/", rec);
    await waitFor(() => rec.ready.length > 0, 5000, "the watch to open");
    const latencies: number[] = [];
    const revisions: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const { revision } = await client.put(`/w/${i}`, `v${i}`);
      revisions.push(revision);
      await waitFor(() => rec.seen(`/w/${i}`) !== undefined, 5000, `the event of /w/${i}`);
      latencies.push(rec.seen(`/w/${i}`)!.at - t0);
    }
    await client.put("/w-outside", "not under the prefix");
    const del = await client.delete("/w/7");
    await waitFor(() => rec.events.length >= 51, 5000, "the delete event");
    expect(rec.events.slice(0, 50).map((e) => [e.type, e.key, e.value, e.modRevision])).toEqual(revisions.map((r, i) => ["put", `/w/${i}`, `v${i}`, r]));
    expect(rec.events[50]).toMatchObject({ type: "delete", key: "/w/7", value: "", modRevision: del.revision });
    expect(rec.events).toHaveLength(51);
    expect(rec.errors).toEqual([]);
    expect(rec.handle?.nextRevision).toBe(del.revision + 1);
    console.log(`etcd-client: put → watch event on one member: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms (50 puts)`);
  });

  it("a watch whose stream is cut, and refused for a while, resumes from the last revision + 1 and misses nothing written meanwhile", async () => {
    const port = Number(new URL(etcd.endpoints[0]!).port);
    const r = await relay(port);
    try {
      const viaRelay = new EtcdClient({ endpoints: [r.url] });
      const rec = new Recorder();
      watch(viaRelay, "/cut/", rec);
      await waitFor(() => rec.ready.length === 1, 5000, "the watch to open");
      for (let i = 0; i < 5; i++) await client.put(`/cut/before-${i}`, "x");
      await waitFor(() => rec.events.length === 5, 5000, "the first five events");

      r.mode = "refuse";
      r.cut();
      await waitFor(() => rec.errors.length >= 2, 10_000, "the watch to notice the cut and fail to reconnect");
      const written: number[] = [];
      for (let i = 0; i < 10; i++) written.push((await client.put(`/cut/during-${i}`, "y")).revision);
      await client.delete("/cut/before-0");
      r.mode = "open";

      await waitFor(() => rec.events.length === 16, 10_000, "every change made while the watch was cut");
      expect(rec.ready.length).toBeGreaterThanOrEqual(2);
      expect(rec.events.slice(5, 15).map((e) => e.modRevision)).toEqual(written);
      expect(rec.events[15]).toMatchObject({ type: "delete", key: "/cut/before-0" });
      expectOrdered(rec);
      expect(rec.errors.every((e) => e.code === STORE_UNAVAILABLE)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it("a watch whose member goes silent without closing the connection notices by probing, reconnects, and misses nothing", async () => {
    const port = Number(new URL(etcd.endpoints[0]!).port);
    const r = await relay(port);
    try {
      const viaRelay = new EtcdClient({ endpoints: [r.url], timeoutMs: 500, watchProbeMs: 500 });
      const rec = new Recorder();
      watch(viaRelay, "/silent/", rec);
      await waitFor(() => rec.ready.length === 1, 5000, "the watch to open");
      await client.put("/silent/a", "1");
      await waitFor(() => rec.events.length === 1, 5000, "the first event");

      r.mode = "freeze";
      const during = await client.put("/silent/b", "2");
      await waitFor(() => rec.errors.some((e) => /stopped answering/.test(e.message)), 10_000, "the probe to notice the silent member");
      expect(rec.events).toHaveLength(1);
      r.mode = "open";
      await waitFor(() => rec.events.length === 2, 10_000, "the change made while the member was silent");
      expect(rec.events[1]).toMatchObject({ key: "/silent/b", modRevision: during.revision });
      expect(rec.ready.length).toBeGreaterThanOrEqual(2);
    } finally {
      await r.close();
    }
  });

  it("a watch survives etcd itself being killed -9 and started again, without a repeat or a gap", async () => {
    const rec = new Recorder();
    watch(client, "/restart/", rec);
    await waitFor(() => rec.ready.length === 1, 5000, "the watch to open");
    const before = await client.put("/restart/a", "1");
    await waitFor(() => rec.events.length === 1, 5000, "the event before the restart");

    await etcd.members[0]!.kill("SIGKILL");
    await waitFor(() => rec.errors.length >= 1, 5000, "the watch to notice etcd is gone");
    await expectStoreError(client.put("/restart/b", "while down"), STORE_UNAVAILABLE);
    await etcd.members[0]!.start();

    const after = await client.put("/restart/b", "2");
    await waitFor(() => rec.events.length === 2, 10_000, "the event after the restart");
    expect(rec.events.map((e) => [e.key, e.modRevision])).toEqual([
      ["/restart/a", before.revision],
      ["/restart/b", after.revision],
    ]);
    expect(rec.ready.length).toBeGreaterThanOrEqual(2);
  });

  it("a watch from a compacted revision calls onCompacted with the compact revision and stops; from the compact revision itself it works", async () => {
    const first = await client.put("/compact/a", "1");
    await client.put("/compact/a", "2");
    const last = await client.put("/compact/b", "3");
    await compact(etcd.endpoints[0]!, last.revision);

    const gone = new Recorder();
    watch(client, "/compact/", gone, first.revision);
    await waitFor(() => gone.compacted !== undefined, 5000, "onCompacted");
    expect(gone.compacted).toBe(last.revision);
    await client.put("/compact/c", "after");
    const ok = new Recorder();
    watch(client, "/compact/", ok, last.revision);
    await waitFor(() => ok.events.length === 2, 5000, "events from the compact revision on");
    expect(ok.events.map((e) => e.key)).toEqual(["/compact/b", "/compact/c"]);
    // The stopped watch delivered nothing and did not reconnect (etcd says "created" before it cancels: one ready at most).
    expect(gone.events).toEqual([]);
    expect(gone.errors).toEqual([]);
    expect(gone.ready.length).toBeLessThanOrEqual(1);
    expect(gone.handle?.nextRevision).toBe(first.revision);
  });

  it("a key on a 2 s lease lives while the lease is kept alive and goes when keep-alive stops; revoke removes at once", async () => {
    const lease = await client.grantLease(2);
    expect(lease.ttlS).toBe(2);
    const rec = new Recorder();
    watch(client, "/lease/", rec);
    await waitFor(() => rec.ready.length === 1, 5000, "the watch to open");
    await client.put("/lease/k", "alive", { lease: lease.id });
    expect((await client.get("/lease/k")).kvs[0]?.lease).toBe(lease.id);

    // Keep it alive for longer than its TTL (there is no event to wait for: the point is time passing).
    const kept = Date.now();
    let lastKeepAlive = kept;
    while (Date.now() - kept < 3000) {
      await new Promise((r) => setTimeout(r, 500));
      expect((await client.keepAlive(lease.id)).ttlS).toBe(2);
      lastKeepAlive = Date.now();
    }
    expect((await client.get("/lease/k")).kvs.map((kv) => kv.value)).toEqual(["alive"]);
    await waitFor(() => rec.events.some((e) => e.type === "delete" && e.key === "/lease/k"), 10_000, "the leased key to be deleted");
    console.log(`etcd-client: a 2 s lease's key was deleted ${Date.now() - lastKeepAlive} ms after the last keep-alive`);
    expect((await client.get("/lease/k")).kvs).toEqual([]);
    await expectStoreError(client.keepAlive(lease.id), STORE_LEASE_NOT_FOUND);
    await expectStoreError(client.put("/lease/k", "late", { lease: lease.id }), STORE_LEASE_NOT_FOUND);

    const other = await client.grantLease(30);
    await client.put("/lease/r", "x", { lease: other.id });
    await client.revoke(other.id);
    expect((await client.get("/lease/r")).kvs).toEqual([]);
    await client.revoke(other.id); // already gone: still fine
  });

  it("a response or watch message larger than maxMessageBytes is refused with LB4.STORE_MESSAGE_TOO_LARGE", async () => {
    const small = new EtcdClient({ endpoints: etcd.endpoints, maxMessageBytes: 64 * 1024 });
    const rec = new Recorder();
    watch(small, "/big/", rec);
    await waitFor(() => rec.ready.length === 1, 5000, "the watch to open");
    await client.put("/big/v", "x".repeat(100 * 1024));
    await waitFor(() => rec.errors.length >= 1, 5000, "the watch to refuse the message");
    expect(rec.errors[0]?.code).toBe(STORE_MESSAGE_TOO_LARGE);
    expect(rec.events).toEqual([]);
    await expectStoreError(small.get("/big/v"), STORE_MESSAGE_TOO_LARGE);
    expect((await client.get("/big/v")).kvs[0]?.value.length).toBe(100 * 1024);
  });
});

describe.skipIf(etcdSkip !== undefined)(title("etcd client on a 3-member etcd cluster"), () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd(3);
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("kill -9 of the leader: writes succeed again after re-election and the watch delivers every acknowledged write; without quorum calls fail with LB4.STORE_UNAVAILABLE and catch up afterwards", async () => {
    const li = await etcd.leader();
    const leaderUrl = etcd.endpoints[li]!;
    // The leader first, so both the writer and the watch are on the member that dies.
    const order = [leaderUrl, ...etcd.endpoints.filter((e) => e !== leaderUrl)];
    const writer = new EtcdClient({ endpoints: order });
    const watcher = new EtcdClient({ endpoints: order });
    const rec = new Recorder();
    const start = (await writer.get("/k/")).revision + 1;
    watch(watcher, "/k/", rec, start);
    await waitFor(() => rec.ready.length === 1, 5000, "the watch to open");
    expect(rec.ready[0]).toBe(leaderUrl);

    const acked = new Map<string, number>();
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      acked.set(`/k/before-${i}`, (await writer.put(`/k/before-${i}`, "x")).revision);
      await waitFor(() => rec.seen(`/k/before-${i}`) !== undefined, 5000, `event /k/before-${i}`);
      latencies.push(rec.seen(`/k/before-${i}`)!.at - t0);
    }

    await etcd.members[li]!.kill("SIGKILL");
    const killed = performance.now();
    let firstOk: number | undefined;
    let failures = 0;
    for (let i = 0; acked.size < 40; i++) {
      try {
        acked.set(`/k/after-${i}`, (await writer.put(`/k/after-${i}`, "y")).revision);
        firstOk ??= performance.now() - killed;
      } catch (err) {
        expect((err as StoreError).code, (err as Error).message).toBe(STORE_UNAVAILABLE);
        failures++;
        expect(performance.now() - killed, "writes to resume after the leader died").toBeLessThan(20_000);
      }
    }
    await waitFor(() => [...acked.keys()].every((k) => rec.seen(k) !== undefined), 10_000, "every acknowledged write to reach the watch");
    for (const [k, rev] of acked) expect(rec.seen(k)?.modRevision, k).toBe(rev);
    expectOrdered(rec);
    expect(rec.errors.length).toBeGreaterThanOrEqual(1);
    expect(rec.ready.length).toBeGreaterThanOrEqual(2);
    expect(rec.ready.at(-1)).not.toBe(leaderUrl);
    console.log(
      `etcd-client: 3 members: put → watch event p50 ${percentile(latencies, 50).toFixed(1)} ms; after kill -9 of the leader the first write succeeded after ${firstOk?.toFixed(0)} ms (${failures} call(s) failed with ${STORE_UNAVAILABLE} before)`,
    );

    // Down to one member of three: no quorum.
    const li2 = await etcd.leader();
    await etcd.members[li2]!.kill("SIGKILL");
    const errorsBefore = rec.errors.length;
    const short = new EtcdClient({ endpoints: order, timeoutMs: 1000 });
    const t0 = performance.now();
    const put = await expectStoreError(short.put("/k/no-quorum", "z"), STORE_UNAVAILABLE);
    expect(put.tried.map((t) => t.endpoint).sort()).toEqual([...etcd.endpoints].sort());
    const txn = await expectStoreError(short.txn({ compare: [{ key: "/k/no-quorum", createRevision: 0 }], success: [{ type: "put", key: "/k/no-quorum", value: "z" }] }), STORE_UNAVAILABLE);
    expect(txn.indeterminate, txn.message).toBe(true);
    await expectStoreError(short.range("/k/"), STORE_UNAVAILABLE);
    const noQuorumMs = performance.now() - t0;
    // The surviving member ends the watch when it has no leader (the gateway forwards "hasleader").
    await waitFor(() => rec.errors.slice(errorsBefore).some((e) => /no leader/.test(e.message)), 15_000, "the watch to report that its member has no leader");

    // One at a time: two members restarted together can reject each other's peer streams for
    // seconds while they replay their logs.
    for (const i of [li, li2]) await etcd.members[i]!.start();
    let back: number | undefined;
    await waitFor(
      async () => {
        try {
          back = (await writer.put("/k/back", "again")).revision;
          return true;
        } catch {
          return false;
        }
      },
      15_000,
      "a write once the members are back",
    );
    await waitFor(() => rec.seen("/k/back") !== undefined, 10_000, "the watch to catch up");
    expect(rec.seen("/k/back")?.modRevision).toBe(back);
    // The txn above may or may not have committed (it was in flight when quorum went): either way it shows once at most.
    expect(rec.events.filter((e) => e.key === "/k/no-quorum").length).toBeLessThanOrEqual(1);
    expectOrdered(rec);
    console.log(`etcd-client: without quorum, put + txn + range failed in ${noQuorumMs.toFixed(0)} ms together (deadline 1000 ms each)`);
  });
});

describe("etcd client with no etcd answering", () => {
  let blackHole: TestServer | undefined;
  afterAll(async () => {
    await blackHole?.close();
  });

  it("endpoints that refuse or never answer give LB4.STORE_UNAVAILABLE within the deadline, naming each one and why", async () => {
    blackHole = await silentServer(); // accepts and never answers
    const hole = `http://127.0.0.1:${blackHole.port}`;
    const refused = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
    const timeoutMs = 600;
    const client = new EtcdClient({ endpoints: [refused[0]!, hole, refused[1]!], timeoutMs });

    const bound = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within twice the ${timeoutMs} ms deadline`)), 2 * timeoutMs).unref())]);
    const put = await expectStoreError(bound(client.put("/x", "1")), STORE_UNAVAILABLE);
    expect(put.tried.map((t) => t.endpoint)).toEqual([refused[0], hole, refused[1]]);
    expect(put.tried[0]!.reason).toMatch(/ECONNREFUSED/);
    expect(put.tried[1]!.reason).toMatch(/no answer within/);
    expect(put.tried[2]!.reason).toMatch(/ECONNREFUSED/);
    expect(put.indeterminate).toBe(false);
    expect(put.message).toContain(hole);

    // A transaction that reached a silent endpoint may have been applied: it says so and is not repeated.
    const txn = await expectStoreError(bound(client.txn({ compare: [], success: [{ type: "put", key: "/x", value: "1" }] })), STORE_UNAVAILABLE);
    expect(txn.indeterminate).toBe(true);
    // Refused connections prove it never arrived: that one is not indeterminate.
    const onlyRefused = new EtcdClient({ endpoints: refused, timeoutMs });
    const txn2 = await expectStoreError(bound(onlyRefused.txn({ compare: [], success: [{ type: "put", key: "/x", value: "1" }] })), STORE_UNAVAILABLE);
    expect(txn2.indeterminate).toBe(false);
    expect(txn2.tried).toHaveLength(2);

    // A watch on them reports each failure and keeps trying (bounded back-off) until closed.
    const rec = new Recorder();
    const h = watch(client, "/x/", rec);
    await waitFor(() => rec.errors.length >= 3, 10_000, "three failed watch attempts");
    h.close();
    expect(rec.errors.every((e) => e.code === STORE_UNAVAILABLE)).toBe(true);
    expect(rec.ready).toEqual([]);
  });
});
