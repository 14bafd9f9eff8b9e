/**
 * Several lb4 instances on one etcd (SPEC §11), each in its own network namespace (a
 * stand-in for a host; helpers/cluster-topology.ts): a hub namespace holds a 3-member etcd
 * cluster and three backends, three lb namespaces each run `lb4 start` (one worker) on the
 * same VIP with a `cluster:` block naming the hub's etcd members. Traffic comes from a client
 * process inside each lb namespace; admin calls and etcd reads from the test process over
 * veth pairs. What the issue requires is shown through traffic and the store: propagation
 * of 100 changes, SOURCE_IP agreement, 50 concurrent writers, an etcd leader killed under
 * writes, etcd stopped, one instance cut off from etcd, a killed instance leaving the list.
 * The cases run in order on the same instances; each leaves etcd and the weights as it found them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../src/store/etcd.js";
import { etcdSkip } from "../helpers/etcd.js";
import { waitFor } from "../helpers/net.js";
import { metricValue } from "../helpers/workers.js";
import { missing, title } from "./helpers/env.js";
import { figure, percentile } from "./helpers/figures.js";
import { TOKEN, Lb4Proc, killAllLb4, type Reply } from "./helpers/lb4.js";
import { BackendProc } from "./helpers/netns.js";
import {
  ClientProc,
  createClusterTopology,
  iptables,
  removeStaleClusterRoutes,
  startHubEtcd,
  VIP,
  type ClusterTopology,
  type HubEtcd,
  type ProbeResult,
} from "./helpers/cluster-topology.js";

const skip = missing("root", "ip") ?? etcdSkip;
const noIptables = missing("iptables");
const LBS = 3;
const BACKEND_PORT = 7000;
const ADMIN_PORT = 9870;
const RR_PORT = 8080;
const SRC_PORT = 8081;
const CHG_PORT = 8082;
const CON_PORT = 8083;
const CLIENT_IPS = 20;
/** Concurrent writers (spread over the instances), each adding CONCURRENT_ADDS members one after the other. */
const WRITERS = 50;
const CONCURRENT_ADDS = 2;
const CHANGES = 100;
/** The generous bound each change must arrive within (the issue's guarantee, p99 ≤ 1 s, is reported). */
const ARRIVAL_BOUND_MS = 10_000;
const PREFIX = `/lb4-rel-${process.pid}/`;

const ms = (n: number) => `${Math.round(n)} ms`;

describe.skipIf(skip !== undefined)(title("several lb4 instances on one etcd, each in its own network namespace", skip), () => {
  let topo: ClusterTopology;
  let dir: string;
  let etcd: HubEtcd;
  let store: EtcdClient;
  const backends: BackendProc[] = [];
  const lbs: Lb4Proc[] = [];
  const clients: ClientProc[] = [];

  /** Member b2 (s2, c2) is the second backend, which answers as "m2". */
  const backendName = (memberId: string) => `m${memberId.slice(1)}`;
  const members = (prefix: string) => topo.backendAddrs.map((a, i) => ({ id: `${prefix}${i + 1}`, address: a, protocol_port: BACKEND_PORT }));

  function config(k: number): unknown {
    const host = topo.lbs[k]!;
    const lb = (id: string, port: number, pool: string, algorithm: string, poolMembers: unknown[]) => ({
      id,
      vip_address: VIP,
      listeners: [{ id: `ls-${id}`, protocol: "TCP", protocol_port: port, default_pool_id: pool }],
      pools: [{ id: pool, protocol: "TCP", lb_algorithm: algorithm, members: poolMembers }],
    });
    return {
      cluster: { etcd: topo.etcdUrls, prefix: PREFIX, instance_id: `lb${k + 1}`, advertise: `${host.adminAddr}:${ADMIN_PORT}` },
      admin: { listen: `${host.adminAddr}:${ADMIN_PORT}`, token: TOKEN },
      state_dir: path.join(dir, `state${k + 1}`),
      log: { level: "info" },
      workers: 1,
      loadbalancers: [
        lb("lb-rr", RR_PORT, "pool-rr", "ROUND_ROBIN", members("b")),
        lb("lb-src", SRC_PORT, "pool-src", "SOURCE_IP", members("s")),
        lb("lb-chg", CHG_PORT, "pool-chg", "ROUND_ROBIN", members("c").slice(0, 1)),
        lb("lb-con", CON_PORT, "pool-con", "ROUND_ROBIN", members("k").slice(0, 1)),
      ],
    };
  }

  function startLb(k: number): Promise<Lb4Proc> {
    return Lb4Proc.start({ config: config(k), file: path.join(dir, `lb${k + 1}.yaml`), adminUrl: `http://${topo.lbs[k]!.adminAddr}:${ADMIN_PORT}`, netns: topo.lbs[k]!.ns });
  }

  async function instanceIds(lb: Lb4Proc): Promise<string[] | undefined> {
    const r = await lb.api("GET", "/v3/elb/instances", { timeoutMs: 5000 }).catch(() => undefined);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return r?.status === 200 ? (r.body.instances as any[]).map((i) => String(i.instance_id)).sort() : undefined;
  }

  async function healthz(lb: Lb4Proc): Promise<{ store?: string; revision?: number } | undefined> {
    const r = await lb.api("GET", "/healthz", { timeoutMs: 5000 }).catch(() => undefined);
    return r?.status === 200 ? r.body : undefined;
  }

  async function metric(lb: Lb4Proc, name: string): Promise<number | undefined> {
    const r = await lb.api("GET", "/metrics", { timeoutMs: 5000 });
    return metricValue(r.text, name);
  }

  /** The member ids of a pool as the store holds them (read from etcd by the test itself). */
  async function storedMembers(lbId: string, poolId: string): Promise<Array<{ id: string; weight?: number }>> {
    const r = await store.get(`${PREFIX}lb/${lbId}`);
    const lb = JSON.parse(r.kvs[0]!.value) as { pools: Array<{ id: string; members: Array<{ id: string; weight?: number }> }> };
    return lb.pools.find((p) => p.id === poolId)!.members;
  }

  /** Index of the etcd member every running member agrees is leader, asked with the client's status(). */
  async function leader(): Promise<number> {
    let found = -1;
    await waitFor(
      async () => {
        const st = await Promise.all(etcd.members.map((m) => (m.running() ? store.status(m.clientUrl).catch(() => undefined) : undefined)));
        const leaders = new Set(st.filter((s) => s && s.leader !== "0").map((s) => s!.leader));
        if (leaders.size !== 1) return false;
        found = st.findIndex((s) => s?.memberId === [...leaders][0]);
        return found >= 0;
      },
      20_000,
      "the etcd members to agree on a leader",
    );
    return found;
  }

  /**
   * When client `c` first serves `member` at `weight` through its instance's pool-rr, or
   * undefined past `deadline`. Three members of weight 1 under ROUND_ROBIN: three picks in a
   * row cover all three, so three without the member prove its weight 0 is served; one pick
   * of it proves weight > 0 is. Returns the end of the proving connection (an upper bound).
   */
  async function servedAt(c: ClientProc, member: string, weight: number, deadline: number, errors: ProbeResult[]): Promise<number | undefined> {
    const name = backendName(member);
    while (Date.now() < deadline) {
      const rs = await c.probe(VIP, RR_PORT, 3);
      const bad = rs.filter((r) => r.member === null);
      errors.push(...bad);
      if (weight > 0) {
        const hit = rs.find((r) => r.member === name);
        if (hit) return hit.end;
      } else if (bad.length === 0 && rs.every((r) => r.member !== name)) return rs[rs.length - 1]!.end;
    }
    return undefined;
  }

  /** Set a pool-rr member's weight through `via`; resolves with the reply and when every instance serves it. */
  async function change(via: Lb4Proc, member: string, weight: number, errors: ProbeResult[]): Promise<{ reply: Reply; t0: number; ack: number; served: Array<number | undefined> }> {
    const t0 = Date.now();
    const reply = await via.api("PUT", `/v3/elb/pools/pool-rr/members/${member}`, { body: { member: { weight } }, timeoutMs: 15_000 });
    const ack = Date.now();
    const served = reply.status === 200 ? await Promise.all(clients.map((c) => servedAt(c, member, weight, t0 + ARRIVAL_BOUND_MS, errors))) : [];
    return { reply, t0, ack, served };
  }

  beforeAll(async () => {
    const stale = removeStaleClusterRoutes();
    if (stale.length > 0) console.log(`cluster: removed the blackhole route(s) of an earlier run: ${stale.join(", ")}`);
    topo = createClusterTopology(LBS, 3, CLIENT_IPS);
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-cluster-"));
    etcd = await startHubEtcd(topo);
    store = new EtcdClient({ endpoints: topo.etcdUrls });
    for (const [i, a] of topo.backendAddrs.entries()) backends.push(await BackendProc.start(topo.hubNs, a, BACKEND_PORT, `m${i + 1}`));
    // The first instance finds the prefix empty and writes its file; the others read it.
    lbs.push(await startLb(0));
    lbs.push(...(await Promise.all([1, 2].map(startLb))));
    clients.push(...(await Promise.all(topo.lbs.map((h) => ClientProc.start(h.ns)))));
    const all = ["lb1", "lb2", "lb3"];
    await waitFor(async () => (await Promise.all(lbs.map(instanceIds))).every((ids) => JSON.stringify(ids) === JSON.stringify(all)), 20_000, "every instance to list all three");
    await waitFor(async () => (await Promise.all(clients.map((c) => c.probe(VIP, RR_PORT, 3)))).every((rs) => rs.every((r) => r.member !== null)), 20_000, "every instance to serve pool-rr");
  }, 120_000);

  afterAll(async () => {
    // lb4 and the clients first: once a namespace is gone, nothing may still try to reach its addresses.
    await Promise.all(clients.map((c) => c.stop()));
    await killAllLb4();
    await Promise.all(backends.map((b) => b.kill9()));
    await etcd?.stop();
    topo?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it(`propagation: ${CHANGES} weight changes through the three instances in turn, each served by every instance (issue: p99 ≤ 1 s)`, async () => {
    const errors: ProbeResult[] = [];
    const latencies: number[] = [];
    const acks: number[] = [];
    const late: string[] = [];
    const refused: string[] = [];
    for (let i = 0; i < CHANGES; i++) {
      // Member b1, b2, b3 in turn goes to weight 0, then back to 1: at most one is at 0 at a time.
      const member = `b${(Math.floor(i / 2) % 3) + 1}`;
      const weight = i % 2 === 0 ? 0 : 1;
      const r = await change(lbs[i % LBS]!, member, weight, errors);
      if (r.reply.status !== 200) {
        refused.push(`#${i} via lb${(i % LBS) + 1}: ${r.reply.status} ${r.reply.text.slice(0, 200)}`);
        break;
      }
      acks.push(r.ack - r.t0);
      r.served.forEach((t, k) => {
        if (t === undefined) late.push(`#${i} (${member} weight ${weight} via lb${(i % LBS) + 1}) not served by lb${k + 1} within ${ARRIVAL_BOUND_MS} ms`);
      });
      if (r.served.some((t) => t === undefined)) break;
      latencies.push(Math.max(...(r.served as number[])) - r.t0);
    }
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const text =
      `${latencies.length} changes through lb1-3 in turn, each served by all 3 instances: p50 ${ms(p50)}, p99 ${ms(p99)}, max ${ms(Math.max(...latencies))} after the request ` +
      `(acknowledged: p50 ${ms(percentile(acks, 50))}, p99 ${ms(percentile(acks, 99))}); ${errors.length} failed probe connections`;
    console.log(`cluster propagation: ${text}`);
    figure("cluster: propagation", text, "every instance serves a change within 1 s (p99, SPEC §11); asserted: each within 10 s, no failed connection");

    expect(refused, "changes refused").toEqual([]);
    expect(late, "changes not served by every instance in time").toEqual([]);
    expect(latencies.length).toBe(CHANGES);
    expect(errors.map((e) => e.error), "failed connections through the instances").toEqual([]);
    // What each instance reports and what etcd holds agree: every weight is back to 1.
    for (const lb of lbs) expect((await lb.members("pool-rr")).map((m) => `${m.id}:${m.weight}`)).toEqual(["b1:1", "b2:1", "b3:1"]);
    expect((await storedMembers("lb-rr", "pool-rr")).map((m) => `${m.id}:${m.weight ?? 1}`)).toEqual(["b1:1", "b2:1", "b3:1"]);
    const revisions = await Promise.all(lbs.map(async (lb) => (await healthz(lb))?.revision));
    expect(new Set(revisions).size, `every instance runs the same revision (${revisions.join(", ")})`).toBe(1);
  });

  it(`SOURCE_IP: ${CLIENT_IPS} client IPs each reach the same member through every instance`, async () => {
    // Per client address: the member each instance chose, twice each.
    const chosen = new Map<string, string[]>();
    const errors: string[] = [];
    for (const addr of topo.clientAddrs) {
      const per = await Promise.all(clients.map((c) => c.probe(VIP, SRC_PORT, 2, addr)));
      const got: string[] = [];
      per.forEach((rs, k) =>
        rs.forEach((r) => {
          if (r.member === null) errors.push(`${addr} via lb${k + 1}: ${r.error}`);
          else got.push(`lb${k + 1}:${r.member}`);
        }),
      );
      chosen.set(addr, got);
    }
    const split = [...chosen].filter(([, got]) => new Set(got.map((g) => g.split(":")[1])).size !== 1).map(([a, got]) => `${a}: ${got.join(" ")}`);
    const memberOf = [...chosen.values()].map((got) => got[0]?.split(":")[1] ?? "?");
    const spread = Object.entries(memberOf.reduce<Record<string, number>>((acc, m) => ({ ...acc, [m]: (acc[m] ?? 0) + 1 }), {}))
      .sort()
      .map(([m, n]) => `${m} ${n}`)
      .join(", ");
    const text = `${CLIENT_IPS} client IPs × 3 instances × 2 connections: ${CLIENT_IPS - split.length} IPs got one member everywhere; spread over members: ${spread}; ${errors.length} failed connections`;
    console.log(`cluster SOURCE_IP: ${text}`);
    figure("cluster: SOURCE_IP", text, "instances with the same members choose the same member for the same client IP (SPEC §11)");
    expect(errors, "failed connections").toEqual([]);
    expect(split, "client IPs that reached different members").toEqual([]);
    // Not one member for everyone: the hash does spread (else agreement would prove nothing).
    expect(new Set(memberOf).size).toBeGreaterThan(1);
  });

  it(`concurrency: ${WRITERS} concurrent writers through the three instances lose no acknowledged update`, async () => {
    interface Add {
      id: string;
      via: number;
      status: number;
      code?: string;
    }
    const adds: Add[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const via = w % LBS;
        for (let n = 0; n < CONCURRENT_ADDS; n++) {
          const id = `x${w}-${n}`;
          try {
            const r = await lbs[via]!.api("POST", "/v3/elb/pools/pool-con/members", {
              body: { member: { id, address: topo.backendAddrs[via]!, protocol_port: 30_000 + w * CONCURRENT_ADDS + n } },
              timeoutMs: 30_000,
            });
            adds.push({ id, via, status: r.status, ...(r.body?.error_code ? { code: String(r.body.error_code) } : {}) });
          } catch (err) {
            adds.push({ id, via, status: 0, code: (err as Error).message });
          }
        }
      }),
    );
    const took = Date.now() - started;
    const ack = adds.filter((a) => a.status === 201).map((a) => a.id);
    const stored = new Set((await storedMembers("lb-con", "pool-con")).map((m) => m.id));
    const lostInStore = ack.filter((id) => !stored.has(id));
    const missingOn = async () =>
      (await Promise.all(lbs.map(async (lb) => new Set((await lb.members("pool-con").catch(() => [])).map((m) => m.id))))).map((have, k) => ({ lb: `lb${k + 1}`, missing: ack.filter((id) => !have.has(id)) }));
    await waitFor(async () => (await missingOn()).every((m) => m.missing.length === 0), 10_000, "every acknowledged add on every instance").catch(() => undefined);
    const lostOnInstances = (await missingOn()).filter((m) => m.missing.length > 0);
    const byStatus = adds.reduce<Record<string, number>>((acc, a) => {
      const k = a.status === 201 ? "201" : `${a.status} ${a.code ?? ""}`;
      return { ...acc, [k]: (acc[k] ?? 0) + 1 };
    }, {});
    const text =
      `${adds.length} member adds by ${WRITERS} concurrent writers through 3 instances in ${ms(took)} (${Object.entries(byStatus).map(([k, n]) => `${k}: ${n}`).join(", ")}); ` +
      `${ack.length} acknowledged, ${lostInStore.length} of them missing in etcd (${lostInStore.slice(0, 5).join(" ")}), instances missing some: ${lostOnInstances.map((m) => `${m.lb} ${m.missing.length}`).join(", ") || "none"}`;
    console.log(`cluster concurrency: ${text}`);
    figure("cluster: concurrent writers", text, "a concurrent change makes a write retry or fail with 409, never lose an update (SPEC §11)");
    expect(lostInStore, "acknowledged adds missing in etcd (lost updates)").toEqual([]);
    expect(lostOnInstances, "acknowledged adds missing on instances").toEqual([]);
    expect(adds.filter((a) => a.status !== 201 && a.status !== 409 && a.status !== 503).map((a) => `${a.id}: ${a.status} ${a.code ?? ""}`)).toEqual([]);
    expect(ack.length).toBeGreaterThan(0);
  });

  it("etcd leader killed (kill -9) while changes are made through every instance: no acknowledged change is lost", async () => {
    const before = await leader();
    interface Write {
      id: string;
      via: number;
      start: number;
      end: number;
      status: number;
      code?: string;
    }
    const writes: Write[] = [];
    let stop = false;
    let killedAt = 0;
    const writer = async (k: number) => {
      for (let n = 0; !stop && n < 200; n++) {
        const id = `w${k + 1}-${n}`;
        const start = Date.now();
        let status = 0;
        let code: string | undefined;
        try {
          const r = await lbs[k]!.api("POST", "/v3/elb/pools/pool-chg/members", {
            body: { member: { id, address: topo.backendAddrs[k]!, protocol_port: 20_000 + k * 1000 + n } },
            timeoutMs: 20_000,
          });
          status = r.status;
          code = r.body?.error_code;
        } catch (err) {
          code = (err as Error).message;
        }
        writes.push({ id, via: k, start, end: Date.now(), status, ...(code !== undefined ? { code } : {}) });
        // Refused writes are retried by the next loop turn; keep a 503 storm from spinning.
        if (status !== 201) await new Promise((r) => setTimeout(r, 50));
      }
    };
    const acked = (after = 0) => writes.filter((w) => w.status === 201 && w.start >= after);
    const loops = lbs.map((_, k) => writer(k));
    let newLeader = -1;
    let leaderAt = 0;
    try {
      await waitFor(() => lbs.every((_, k) => acked().filter((w) => w.via === k).length >= 5), 20_000, "5 acknowledged changes through each instance");
      killedAt = Date.now();
      await etcd.members[before]!.kill9();
      newLeader = await leader();
      leaderAt = Date.now();
      // Changes through every instance after the re-election, and at least 3 s of writes after the kill.
      await waitFor(() => Date.now() - killedAt > 3000 && lbs.every((_, k) => acked(killedAt).filter((w) => w.via === k).length >= 5), 30_000, "5 acknowledged changes through each instance after the kill");
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    const ack = acked().map((w) => w.id);
    const stored = new Set((await storedMembers("lb-chg", "pool-chg")).map((m) => m.id));
    const lostInStore = ack.filter((id) => !stored.has(id));
    const applyStart = Date.now();
    const missingOn = async () =>
      (await Promise.all(lbs.map(async (lb) => new Set((await lb.members("pool-chg").catch(() => [])).map((m) => m.id))))).map((have, k) => ({ lb: `lb${k + 1}`, missing: ack.filter((id) => !have.has(id)) }));
    await waitFor(async () => (await missingOn()).every((m) => m.missing.length === 0), 15_000, "every acknowledged change on every instance").catch(() => undefined);
    const lostOnInstances = (await missingOn()).filter((m) => m.missing.length > 0);
    const applyMs = Date.now() - applyStart;

    const byStatus = writes.reduce<Record<string, number>>((acc, w) => {
      const k = w.status === 201 ? "201" : `${w.status} ${w.code ?? ""} (${w.start < killedAt ? "before" : "after"} the kill)`;
      return { ...acc, [k]: (acc[k] ?? 0) + 1 };
    }, {});
    const firstAfter = acked(killedAt).sort((a, b) => a.end - b.end)[0];
    const unacked = writes.filter((w) => w.status !== 201);
    const landedAnyway = unacked.filter((w) => stored.has(w.id)).length;
    const text =
      `${writes.length} member adds through 3 instances (${Object.entries(byStatus).map(([s, n]) => `${s}: ${n}`).join(", ")}); leader m${before} killed, m${newLeader} leader ${ms(leaderAt - killedAt)} later; ` +
      `first acknowledged change ${firstAfter ? ms(firstAfter.end - killedAt) : "never"} after the kill; slowest write ${ms(Math.max(...writes.map((w) => w.end - w.start)))}; ` +
      `${ack.length} acknowledged, ${lostInStore.length} missing in etcd, ${lostOnInstances.length} instances missing some; ${landedAnyway} unacknowledged ones landed anyway; ` +
      `all on every instance ${ms(applyMs)} after the writes stopped`;
    console.log(`cluster leader kill: ${text}`);
    figure("cluster: etcd leader killed", text, "no acknowledged change lost, in etcd or on any instance; writes during the election may get 503");

    // Bring the member back for the cases after this one.
    await etcd.members[before]!.start();
    expect(lostInStore, "acknowledged changes missing in etcd").toEqual([]);
    expect(lostOnInstances, "acknowledged changes missing on instances").toEqual([]);
    // A refused write says why: 503 (no quorum, or not confirmed) or 409 (lost every compare-and-swap); nothing else.
    expect(unacked.filter((w) => w.status !== 503 && w.status !== 409).map((w) => `${w.id} via lb${w.via + 1}: ${w.status} ${w.code ?? ""}`)).toEqual([]);
    expect(unacked.filter((w) => w.status === 503 && w.code !== "LB4.STORE_UNAVAILABLE").map((w) => `${w.id}: ${w.code}`)).toEqual([]);
  });

  it("etcd stopped (every member): serving continues through every instance, writes get 503, and after etcd returns a change reaches every instance", async () => {
    const revisionBefore = (await healthz(lbs[0]!))?.revision;
    const stoppedAt = Date.now();
    await Promise.all(etcd.members.map((m) => m.kill9()));
    let text = "";
    const errors: ProbeResult[] = [];
    let down: { unreachableMs: number; served: number; writes: Reply[]; storeUp: Array<number | undefined>; weights: string[] } | undefined;
    try {
      await waitFor(async () => (await Promise.all(lbs.map(healthz))).every((h) => h?.store === "unreachable"), 15_000, "/healthz store unreachable on every instance");
      const unreachableMs = Date.now() - stoppedAt;
      // Serving continues: round robin and SOURCE_IP through every instance, for 2 s.
      let served = 0;
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        const rs = (await Promise.all(clients.flatMap((c) => [c.probe(VIP, RR_PORT, 3), c.probe(VIP, SRC_PORT, 1, topo.clientAddrs[0])]))).flat();
        errors.push(...rs.filter((r) => r.member === null));
        served += rs.filter((r) => r.member !== null).length;
      }
      const writes = await Promise.all(lbs.map((lb) => lb.api("PUT", "/v3/elb/pools/pool-rr/members/b1", { body: { member: { weight: 0 } }, timeoutMs: 15_000 })));
      const storeUp = await Promise.all(lbs.map((lb) => metric(lb, "lb4_store_up")));
      const weights = await Promise.all(lbs.map(async (lb) => (await lb.members("pool-rr")).map((m) => `${m.id}:${m.weight}`).join(",")));
      down = { unreachableMs, served, writes, storeUp, weights };
    } finally {
      await etcd.startAll();
    }
    const d = down!;
    const backAt = Date.now();
    await waitFor(async () => (await Promise.all(lbs.map(healthz))).every((h) => h?.store === "ok"), 20_000, "/healthz store ok on every instance");
    const okMs = Date.now() - backAt;
    // After the return a change made through one instance reaches all (and the refused one never landed).
    const r = await change(lbs[1]!, "b2", 0, errors);
    const back = await change(lbs[2]!, "b2", 1, errors);
    const all = ["lb1", "lb2", "lb3"];
    await waitFor(async () => (await Promise.all(lbs.map(instanceIds))).every((ids) => JSON.stringify(ids) === JSON.stringify(all)), 20_000, "every instance listed again").catch(() => undefined);
    const listed = await Promise.all(lbs.map(instanceIds));
    const servedMs = r.served.every((t) => t !== undefined) ? Math.max(...(r.served as number[])) - r.t0 : NaN;
    text =
      `etcd down: /healthz "unreachable" on all ${ms(d.unreachableMs)} after the stop; ${d.served} connections served through the 3 instances meanwhile, ${errors.length} failed; ` +
      `writes answered ${d.writes.map((w) => w.status).join("/")}; lb4_store_up ${d.storeUp.join("/")}; etcd back: store "ok" on all ${ms(okMs)} later, ` +
      `a change then served by all 3 in ${ms(servedMs)}; revision ${revisionBefore} before, ${(await healthz(lbs[0]!))?.revision} after`;
    console.log(`cluster etcd stopped: ${text}`);
    figure("cluster: etcd stopped", text, "serving continues; writes get 503 LB4.STORE_UNAVAILABLE; /healthz and lb4_store_up say so; a change after the return reaches every instance");

    expect(errors.map((e) => e.error), "failed connections").toEqual([]);
    expect(d.served).toBeGreaterThan(0);
    expect(d.writes.map((w) => `${w.status} ${w.body?.error_code}`)).toEqual(Array(LBS).fill("503 LB4.STORE_UNAVAILABLE"));
    expect(d.storeUp).toEqual([0, 0, 0]);
    expect(d.weights, "the refused write changed nothing").toEqual(Array(LBS).fill("b1:1,b2:1,b3:1"));
    expect((await storedMembers("lb-rr", "pool-rr")).map((m) => `${m.id}:${m.weight ?? 1}`)).toEqual(["b1:1", "b2:1", "b3:1"]);
    expect([r.reply.status, back.reply.status]).toEqual([200, 200]);
    expect([...r.served, ...back.served].filter((t) => t === undefined).length, "instances that did not serve the change after the return").toBe(0);
    expect(listed.map((ids) => ids?.join(",")), "every instance lists all three again").toEqual(Array(LBS).fill(all.join(",")));
    expect(await Promise.all(lbs.map((lb) => metric(lb, "lb4_store_up")))).toEqual([1, 1, 1]);
  });

  it.skipIf(noIptables !== undefined)(title("an instance cut off from etcd (iptables in its namespace) keeps serving what it applied, refuses writes, and catches up on reconnect", noIptables), async () => {
    const cut = topo.lbs[2]!.ns;
    const rule = ["OUTPUT", "-p", "tcp", "--dport", "2379", "-j", "DROP"];
    const errors: ProbeResult[] = [];
    const cutAt = Date.now();
    iptables(cut, ["-I", ...rule]);
    let cutOff = true;
    try {
      // A silent etcd (no FIN, no RST): the watch's probe finds out.
      await waitFor(async () => (await healthz(lbs[2]!))?.store === "unreachable", 20_000, "lb3's /healthz to say unreachable");
      const noticedMs = Date.now() - cutAt;
      const refused = await lbs[2]!.api("PUT", "/v3/elb/pools/pool-rr/members/b1", { body: { member: { weight: 0 } }, timeoutMs: 15_000 });
      // A change through lb1 while lb3 cannot see it: lb1 and lb2 serve it, lb3 keeps what it applied.
      const t0 = Date.now();
      const r = await lbs[0]!.api("PUT", "/v3/elb/pools/pool-rr/members/b3", { body: { member: { weight: 0 } }, timeoutMs: 15_000 });
      const served = await Promise.all(clients.slice(0, 2).map((c) => servedAt(c, "b3", 0, t0 + ARRIVAL_BOUND_MS, errors)));
      const stale = (await clients[2]!.probe(VIP, RR_PORT, 6)).filter((x) => x.member === backendName("b3")).length;
      const revCut = (await healthz(lbs[2]!))?.revision;
      iptables(cut, ["-D", ...rule]);
      cutOff = false;
      const backAt = Date.now();
      const caught = await servedAt(clients[2]!, "b3", 0, backAt + 20_000, errors);
      const revBack = (await healthz(lbs[2]!))?.revision;
      await waitFor(async () => (await healthz(lbs[2]!))?.store === "ok", 15_000, "lb3's /healthz to say ok").catch(() => undefined);
      const storeAfter = (await healthz(lbs[2]!))?.store;
      const restore = await change(lbs[2]!, "b3", 1, errors);
      // Its lease may have expired while it was cut off: it registers again.
      const all = ["lb1", "lb2", "lb3"];
      await waitFor(async () => (await Promise.all(lbs.map(instanceIds))).every((ids) => JSON.stringify(ids) === JSON.stringify(all)), 20_000, "every instance to list all three again").catch(() => undefined);
      const listedMs = Date.now() - backAt;
      const listed = await Promise.all(lbs.map(instanceIds));
      const text =
        `lb3 cut off from etcd: /healthz "unreachable" ${ms(noticedMs)} later; its write answered ${refused.status} ${refused.body?.error_code ?? ""}; ` +
        `a change through lb1 served by lb1, lb2 in ${ms(Math.max(...served.map((t) => (t ?? NaN) - t0)))} while lb3 still sent ${stale}/6 connections to the member (revision ${revCut}); ` +
        `reconnected: lb3 served it ${caught === undefined ? "never" : ms(caught - backAt)} later (revision ${revBack}), listed by every instance again ${ms(listedMs)} after; ${errors.length} failed connections`;
      console.log(`cluster cut-off instance: ${text}`);
      figure("cluster: one instance cut off from etcd", text, "it keeps serving what it applied, refuses writes with 503, and catches up from its revision on reconnect");
      expect(refused.status).toBe(503);
      expect(refused.body?.error_code).toBe("LB4.STORE_UNAVAILABLE");
      expect(r.status).toBe(200);
      expect(served.filter((t) => t === undefined).length, "lb1/lb2 not serving the change").toBe(0);
      expect(stale, "lb3 keeps serving what it last applied").toBeGreaterThan(0);
      expect(caught, "lb3 serves the change after reconnecting").toBeDefined();
      expect(storeAfter).toBe("ok");
      expect(restore.reply.status).toBe(200);
      expect(restore.served.filter((t) => t === undefined).length).toBe(0);
      expect(errors.map((e) => e.error), "failed connections").toEqual([]);
      expect(listed.map((ids) => ids?.join(",")), "every instance lists all three again").toEqual(Array(LBS).fill(all.join(",")));
      for (const lb of lbs) expect((await lb.members("pool-rr")).map((m) => `${m.id}:${m.weight}`)).toEqual(["b1:1", "b2:1", "b3:1"]);
    } finally {
      if (cutOff) iptables(cut, ["-D", ...rule]);
    }
  });

  it("a killed instance (kill -9) leaves GET /v3/elb/instances on the others when its lease expires", async () => {
    // Every instance lists every instance, with what SPEC §11 names.
    const r = await lbs[0]!.api("GET", "/v3/elb/instances");
    expect(r.status).toBe(200);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const listed = (r.body.instances as any[]).map((i) => ({ id: i.instance_id, advertise: i.advertise, version: typeof i.version, revision: typeof i.revision, self: i.self }));
    expect(listed).toEqual(topo.lbs.map((h, k) => ({ id: `lb${k + 1}`, advertise: `${h.adminAddr}:${ADMIN_PORT}`, version: "string", revision: "number", self: k === 0 })));

    const victim = lbs[2]!;
    const killedAt = Date.now();
    await victim.kill9();
    const rest = lbs.slice(0, 2);
    await waitFor(async () => (await Promise.all(rest.map(instanceIds))).every((ids) => JSON.stringify(ids) === JSON.stringify(["lb1", "lb2"])), 25_000, "lb3 to leave the list on lb1 and lb2").catch(() => undefined);
    const goneMs = Date.now() - killedAt;
    const after = await Promise.all(rest.map(instanceIds));
    // The others keep serving.
    const rs = (await Promise.all(clients.slice(0, 2).map((c) => c.probe(VIP, RR_PORT, 3)))).flat();
    const text = `lb3 killed (kill -9): gone from the list on lb1 and lb2 ${ms(goneMs)} later (lease TTL 10 s); ${rs.filter((x) => x.member !== null).length}/${rs.length} connections through the others served after`;
    console.log(`cluster killed instance: ${text}`);
    figure("cluster: killed instance", text, "a killed instance leaves the list when its lease (TTL ≤ 10 s) expires; asserted: within 15 s");
    expect(after.map((ids) => ids?.join(","))).toEqual(["lb1,lb2", "lb1,lb2"]);
    expect(goneMs).toBeLessThanOrEqual(15_000);
    expect(rs.filter((x) => x.member === null).map((x) => x.error)).toEqual([]);
  });
});
