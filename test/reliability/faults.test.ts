/**
 * Backend faults under load, in network namespaces the test creates and removes (see
 * helpers/netns.ts): lb4 in one namespace, three line backends each in its own. One member
 * fails (kill -9, SIGSTOP, SYN blackhole, random loss) while a bounded load runs; errors may
 * appear only for that member (matched through lb4's access log), health takes it OFFLINE,
 * the other two keep serving, and afterwards active connections are back to 0.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/net.js";
import { missing, title } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";
import { TOKEN, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";
import { Load, oneRequest, type Outcome } from "./helpers/load.js";
import { BackendProc, createTopology, killAllBackends, type Topology } from "./helpers/netns.js";

const skip = missing("root", "ip", "iptables");
const BACKEND_PORT = 7000;
const LB_PORT = 8080;
const ADMIN_PORT = 9870;
const POOL = "pool-f";
const FAILED = "b2";
const CONCURRENCY = 6;
/** Longer than lb4's connect timeout (5 s) plus a retry, so a blackholed SYN is not a client error. */
const REQUEST_TIMEOUT_MS = 8000;

interface Ctx {
  topo: Topology;
  backends: Map<string, BackendProc>;
  failedNs: string;
  failedAddr: string;
}

interface FaultCase {
  name: string;
  /** What the case asserts, for its title. */
  expect: string;
  fault: string;
  monitor?: Record<string, unknown>;
  expectOffline: boolean;
  inject(ctx: Ctx): Promise<void> | void;
  undo(ctx: Ctx): Promise<void> | void;
}

const synRule = ["INPUT", "-p", "tcp", "--dport", String(BACKEND_PORT), "--syn", "-j", "DROP"];
const LOSS = 0.2;
const lossRules = [
  ["INPUT", "-p", "tcp", "--dport", String(BACKEND_PORT), "-m", "statistic", "--mode", "random", "--probability", String(LOSS), "-j", "DROP"],
  ["OUTPUT", "-p", "tcp", "--sport", String(BACKEND_PORT), "-m", "statistic", "--mode", "random", "--probability", String(LOSS), "-j", "DROP"],
];

const OFFLINE_EXPECT = "errors only on that member, it goes OFFLINE and gets no traffic, the others serve, connections back to 0, it comes back";

const cases: FaultCase[] = [
  {
    name: "kill -9 of a backend",
    fault: "kill -9",
    expect: OFFLINE_EXPECT,
    expectOffline: true,
    inject: (c) => c.backends.get(FAILED)!.kill9(),
    undo: async (c) => {
      c.backends.set(FAILED, await BackendProc.start(c.failedNs, c.failedAddr, BACKEND_PORT, FAILED));
    },
  },
  {
    // The kernel still completes the handshake of a stopped process: only an answer to
    // tcp_send proves it alive (SPEC §4, tcp_send/tcp_expect).
    name: "SIGSTOP of a backend (TCP monitor with tcp_send PING / tcp_expect +PONG)",
    fault: "SIGSTOP",
    expect: OFFLINE_EXPECT,
    monitor: { tcp_send: "PING\\r\\n", tcp_expect: "+PONG" },
    expectOffline: true,
    inject: (c) => c.backends.get(FAILED)!.signal("SIGSTOP"),
    undo: (c) => c.backends.get(FAILED)!.signal("SIGCONT"),
  },
  {
    name: "SYN blackhole (iptables -j DROP on SYN in the backend's namespace)",
    fault: "SYN blackhole",
    expect: OFFLINE_EXPECT,
    expectOffline: true,
    inject: (c) => c.topo.iptables(c.failedNs, ["-I", ...synRule]),
    undo: (c) => c.topo.iptables(c.failedNs, ["-D", ...synRule]),
  },
  {
    name: `${LOSS * 100}% random loss each way (iptables statistic match)`,
    fault: `${LOSS * 100}% loss`,
    expect: "errors only on that member, the others serve, connections back to 0",
    expectOffline: false,
    inject: (c) => {
      for (const r of lossRules) c.topo.iptables(c.failedNs, ["-I", ...r]);
    },
    undo: (c) => {
      for (const r of lossRules) c.topo.iptables(c.failedNs, ["-D", ...r]);
    },
  },
];

describe.skipIf(skip !== undefined)(title("backend faults in network namespaces", skip), () => {
  let topo: Topology;
  let dir: string;
  beforeAll(() => {
    topo = createTopology(3);
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-faults-"));
  });
  afterEach(async () => {
    // lb4 first: once a namespace is gone, nothing may still try to reach its addresses.
    await killAllLb4();
    await killAllBackends();
  });
  afterAll(() => {
    topo?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function config(monitor: Record<string, unknown> = {}): unknown {
    return {
      admin: { listen: `${topo.vip}:${ADMIN_PORT}`, token: TOKEN },
      state_dir: path.join(dir, "state"),
      log: { level: "info" },
      loadbalancers: [
        {
          id: "lb-f",
          vip_address: topo.vip,
          listeners: [{ id: "ls-f", protocol: "TCP", protocol_port: LB_PORT, default_pool_id: POOL, keepalive_timeout: 10 }],
          pools: [
            {
              id: POOL,
              protocol: "TCP",
              lb_algorithm: "ROUND_ROBIN",
              healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 2, ...monitor },
              members: topo.backends.map((b, i) => ({ id: `b${i + 1}`, address: b.addr, protocol_port: BACKEND_PORT })),
            },
          ],
        },
      ],
    };
  }

  it.each(cases)("$name: $expect", async (fc) => {
    const backends = new Map<string, BackendProc>();
    for (const [i, b] of topo.backends.entries()) backends.set(`b${i + 1}`, await BackendProc.start(b.ns, b.addr, BACKEND_PORT, `b${i + 1}`));
    const failed = topo.backends[1]!;
    const ctx: Ctx = { topo, backends, failedNs: failed.ns, failedAddr: failed.addr };
    rmSync(path.join(dir, "state"), { recursive: true, force: true });
    const lb = await Lb4Proc.start({ config: config(fc.monitor), file: path.join(dir, "lb4.yaml"), adminUrl: `http://${topo.vip}:${ADMIN_PORT}`, netns: topo.lbNs });
    await waitFor(async () => (await lb.members(POOL)).every((m) => m.operating_status === "ONLINE"), 15_000, "all three members ONLINE");

    const load = new Load({ host: topo.vip, port: LB_PORT, concurrency: CONCURRENCY, maxRequests: 50_000, maxMs: 90_000, timeoutMs: REQUEST_TIMEOUT_MS, keepAll: true }).start();
    let faultAt = 0;
    let offlineAt = 0;
    try {
      await load.until(() => ["b1", "b2", "b3"].every((m) => (load.perMember.get(m) ?? 0) >= 5), 20_000, "every member to answer 5 requests").catch(async (err: Error) => {
        // Say who answered and what lb4 believed, so a failure here can be told apart.
        const health = lb.events.filter((e) => e.ev === "health" || String(e.ev).startsWith("worker") || e.ev === "reload_failed").map((e) => `${e.member ?? e.worker ?? ""} ${e.from ?? ""}->${e.to ?? ""} ${e.ev}`);
        throw new Error(`${err.message}; answers per member ${JSON.stringify(Object.fromEntries(load.perMember))}; members ${JSON.stringify(await lb.members(POOL))}; events ${JSON.stringify(health)}; errors logged: ${lb.output().split("\n").filter((l) => /"level":(40|50)/.test(l)).slice(-5).join(" | ")}`);
      });
      faultAt = Date.now();
      await fc.inject(ctx);
      if (fc.expectOffline) {
        await waitFor(async () => (await lb.status(POOL, FAILED)) === "OFFLINE", 20_000, `${FAILED} OFFLINE after ${fc.fault}`);
        offlineAt = Date.now();
        await load.until(() => load.outcomes.filter((o) => o.start > offlineAt).length >= 150, 40_000, "150 requests after OFFLINE");
      } else {
        // Its checks may fail now and then (a lost SYN outlasts the 1 s check timeout), so it may flap: count requests, not its answers.
        await load.until(() => load.outcomes.filter((o) => o.start > faultAt).length >= 150, 60_000, "150 requests under loss");
      }
    } finally {
      await load.stop();
    }

    // Who each error was on: lb4's access-log line for the client's port names the member.
    await waitFor(() => load.errors.every((e) => e.port === 0 || lb.access.has(e.port)), 15_000, "access-log lines for every failed request").catch(() => undefined);
    for (const e of load.errors) e.member = e.port === 0 ? "(lb4 did not accept)" : (lb.access.get(e.port)?.member_id ?? "(no access-log line)");
    const activeAfterFault = await lb.settle();

    const during = load.outcomes.filter((o) => o.start >= faultAt);
    const after: Outcome[] = offlineAt ? load.outcomes.filter((o) => o.start > offlineAt) : [];
    const before = load.outcomes.filter((o) => o.end < faultAt);
    const failedOk = during.filter((o) => o.ok && o.member === FAILED).length;

    await fc.undo(ctx);
    let recovered = true;
    if (fc.expectOffline) {
      await waitFor(async () => (await lb.status(POOL, FAILED)) === "ONLINE", 20_000, `${FAILED} ONLINE again`);
      recovered = false;
      for (let i = 0; i < 30 && !recovered; i++) {
        const o = await oneRequest(topo.vip, LB_PORT, 1_000_000 + i, REQUEST_TIMEOUT_MS);
        recovered = o.ok && o.member === FAILED;
      }
    }
    const activeAtEnd = await lb.settle();

    const byMember = (os: Outcome[]) => Object.fromEntries(["b1", "b2", "b3"].map((m) => [m, os.filter((o) => o.ok && o.member === m).length]));
    figure(
      `faults: ${fc.fault}`,
      `${load.count} requests at concurrency ${CONCURRENCY}; ${load.errors.length} errors (${[...new Set(load.errors.map((e) => e.member))].join(", ") || "none"})` +
        (fc.expectOffline
          ? `; OFFLINE ${((offlineAt - faultAt) / 1000).toFixed(1)} s after the fault; ${after.length} requests after that, ${after.filter((o) => !o.ok).length} errors`
          : `; ${FAILED} answered ${failedOk} of them during the loss and went OFFLINE ${lb.events.filter((e) => e.ev === "health" && e.member === FAILED && e.to === "OFFLINE").length} time(s)`) +
        `; active after: ${activeAfterFault}`,
      fc.expectOffline
        ? "errors only on the failed member; it goes OFFLINE, then gets no traffic; the others serve; active back to 0; ONLINE again after recovery"
        : "errors only on the lossy member; the others serve; active back to 0",
    );

    expect(lb.alive()).toBe(true);
    expect(before.filter((o) => !o.ok), "errors before the fault").toEqual([]);
    expect(
      load.errors.filter((e) => e.member !== FAILED),
      "errors on members other than the failed one",
    ).toEqual([]);
    const others = byMember(during);
    expect(others.b1, "b1 keeps serving during the fault").toBeGreaterThan(0);
    expect(others.b3, "b3 keeps serving during the fault").toBeGreaterThan(0);
    if (fc.expectOffline) {
      expect(after.filter((o) => !o.ok), "errors after the member went OFFLINE").toEqual([]);
      expect(after.filter((o) => o.member === FAILED).length, "requests sent to the OFFLINE member").toBe(0);
      expect(recovered, `${FAILED} gets traffic again after recovery`).toBe(true);
    }
    expect(activeAfterFault, "active connections after the fault").toBe(0);
    expect(activeAtEnd, "active connections at the end").toBe(0);
    await lb.stop();
  });
});
