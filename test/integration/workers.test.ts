/**
 * SPEC §10 with `lb4 start --workers 2` as a real child on loopback: every instance-wide
 * guarantee (weights, one health check per member, persistence, connection_limit, UDP flows,
 * counters, access-log lines), a worker killed and replaced, SIGTERM, and `lb4 status`.
 */
import dgram from "node:dgram";
import net from "node:net";
import { describe, expect, it } from "vitest";
import path from "node:path";
import { adminConfig, api, LineClient, namedEcho, runCli, TOKEN, useChildFixture, whoAnswers, writeConfig } from "../helpers/lb4-child.js";
import { customServer, freePort, waitFor, type TestServer } from "../helpers/net.js";
import { alive, jsonLines, metricValue, running, scrape, startWorkers, tcpConnLines, waitForTcpConnLines, workers, type WorkersLb4 } from "../helpers/workers.js";

const fx = useChildFixture();

/** One load balancer with one TCP listener on `port` in front of pool `p`. */
function tcpLb(port: number, pool: Record<string, unknown>, listener: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: "lb-w",
    vip_address: "127.0.0.1",
    listeners: [{ id: "ls-w", protocol: "TCP", protocol_port: port, default_pool_id: "p", ...listener }],
    pools: [{ id: "p", protocol: "TCP", lb_algorithm: "ROUND_ROBIN", ...pool }],
  };
}

async function echoMembers(names: string[]): Promise<TestServer[]> {
  const out: TestServer[] = [];
  for (const n of names) {
    const s = await namedEcho(n);
    fx.servers.push(s);
    out.push(s);
  }
  return out;
}

function members(servers: TestServer[], names: string[], weights: number[] = names.map(() => 1)): unknown[] {
  return servers.map((s, i) => ({ id: `m-${names[i]}`, address: "127.0.0.1", protocol_port: s.port, weight: weights[i] }));
}

/** Count how often each name answers. */
function tally(names: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const n of names) t[n] = (t[n] ?? 0) + 1;
  return t;
}

/** The distinct worker pids in access-log lines, with how many connections each served. */
function pidSplit(lines: Array<Record<string, unknown>>): Record<string, number> {
  return tally(lines.map((l) => String(l.pid)));
}

async function twoReadyWorkers(w: WorkersLb4): Promise<number[]> {
  let pids: number[] = [];
  await waitFor(
    async () => {
      const r = await workers(w.lb);
      pids = r.workers.filter((x) => x.ready).map((x) => x.pid);
      return pids.length === 2;
    },
    5000,
    "2 ready workers",
  );
  return pids;
}

describe("lb4 start --workers 2 (SPEC §10)", () => {
  it("3:1 weights hold over 400 sequential connections across both workers", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a", "b"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a", "b"], [3, 1]) })]);
    const pids = await twoReadyWorkers(w);

    const got: string[] = [];
    for (let i = 0; i < 400; i++) got.push(await whoAnswers(port));
    const t = tally(got);
    expect(t.a! + t.b!).toBe(400);
    // Each worker runs smooth weighted round robin over its own connections: off by at most 1 each.
    expect(Math.abs(t.a! - 300)).toBeLessThanOrEqual(2);
    expect(Math.abs(t.b! - 100)).toBeLessThanOrEqual(2);

    const lines = await waitForTcpConnLines(w, "ls-w", 400);
    expect(lines).toHaveLength(400);
    const split = pidSplit(lines);
    console.log(`weights: a=${t.a} b=${t.b}; connections per worker pid: ${JSON.stringify(split)} (workers ${pids.join(", ")})`);
    expect(Object.keys(split).length).toBeGreaterThanOrEqual(1);
    for (const pid of Object.keys(split)) expect(pids).toContain(Number(pid));
    // The members each line names add up to the same split.
    expect(tally(lines.map((l) => String(l.member_id)))).toEqual({ "m-a": t.a, "m-b": t.b });
  });

  it("a TCP health check runs once per member per delay, not once per worker", async () => {
    const port = await freePort();
    // No client traffic reaches these: every connection they see is a health check.
    const backends: TestServer[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await customServer((sock) => sock.end());
      fx.servers.push(s);
      backends.push(s);
    }
    const w = await startWorkers(fx.dir, [
      tcpLb(port, { healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 }, members: members(backends, ["a", "b"]) }),
    ]);
    await twoReadyWorkers(w);
    // Both members checked once (the first check lands within the first delay).
    await waitFor(() => backends.every((b) => b.accepted >= 1), 5000, "a first check of each member");
    const start = Date.now();
    const before = backends.map((b) => b.accepted);
    await new Promise((r) => setTimeout(r, 3000));
    const seconds = (Date.now() - start) / 1000;
    const counts = backends.map((b, i) => b.accepted - before[i]!);
    console.log(`health checks over ${seconds.toFixed(2)} s (delay 1): ${JSON.stringify(counts)}`);
    // One checker per member: one check per second, give or take the one at either edge; checks doubled by 2 workers would be ~6.
    for (const c of counts) {
      expect(c).toBeGreaterThanOrEqual(Math.floor(seconds) - 1);
      expect(c).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    }
  });

  it("60 connections from one client IP with SOURCE_IP persistence land on one member, 6 at a time", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a", "b"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { session_persistence: { type: "SOURCE_IP", persistence_timeout: 1 }, members: members(backends, ["a", "b"]) })]);
    await twoReadyWorkers(w);

    const got: string[] = [];
    for (let round = 0; round < 10; round++) got.push(...(await Promise.all(Array.from({ length: 6 }, () => whoAnswers(port)))));
    expect(got).toHaveLength(60);
    expect(new Set(got).size).toBe(1);

    const lines = await waitForTcpConnLines(w, "ls-w", 60);
    console.log(`persistence: member ${got[0]} for all 60; connections per worker pid: ${JSON.stringify(pidSplit(lines))}`);
    expect(new Set(lines.map((l) => l.member_id)).size).toBe(1);
  });

  it("30 concurrent clients against connection_limit 10 are never served more than 10, and the slots come back", async () => {
    const port = await freePort();
    // Says "ok" and holds the connection until the test lets go.
    let current = 0;
    let max = 0;
    const backend = await customServer((s) => {
      current++;
      max = Math.max(max, current);
      s.on("close", () => current--);
      s.write("ok\n");
    });
    fx.servers.push(backend);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: [{ id: "m-1", address: "127.0.0.1", protocol_port: backend.port }] }, { connection_limit: 10 })]);
    await twoReadyWorkers(w);

    interface Client {
      socket: net.Socket;
      served: boolean;
      closed: boolean;
    }
    const open = (): Client => {
      const c: Client = { socket: net.connect({ port, host: "127.0.0.1" }), served: false, closed: false };
      c.socket.on("data", () => (c.served = true));
      c.socket.on("error", () => undefined);
      c.socket.on("close", () => (c.closed = true));
      return c;
    };
    const clients = Array.from({ length: 30 }, open);
    try {
      await waitFor(() => clients.filter((c) => c.served).length === 10 && clients.filter((c) => c.closed).length === 20, 5000, "10 served and 20 refused");
      expect(current).toBe(10);
      expect(max).toBeLessThanOrEqual(10);
      // The refused ones were closed without a byte; the served ones are still open.
      for (const c of clients) expect(c.served).toBe(!c.closed);
      expect(metricValue(await scrape(w.lb), "lb4_refused_total", { listener: "ls-w", reason: "limit" })).toBe(20);
      expect(max).toBe(10);

      // Let go: the backend closes, so do the clients.
      for (const s of backend.sockets) s.destroy();
      await waitFor(() => clients.every((c) => c.closed), 5000, "every client closed");
      // Workers report their closes over the same channel as the slot releases: active 0 means every slot is back.
      await waitFor(async () => metricValue(await scrape(w.lb), "lb4_connections_active", { listener: "ls-w" }) === 0, 5000, "0 active");

      const again = Array.from({ length: 10 }, open);
      clients.push(...again);
      await waitFor(() => again.every((c) => c.served), 5000, "10 new clients served");
      expect(current).toBe(10);
      // The limit still holds: an 11th is refused.
      const eleventh = open();
      clients.push(eleventh);
      await waitFor(() => eleventh.closed, 5000, "the 11th client closed");
      expect(eleventh.served).toBe(false);
      expect(max).toBe(10);
      expect(metricValue(await scrape(w.lb), "lb4_refused_total", { listener: "ls-w", reason: "limit" })).toBe(21);
    } finally {
      for (const c of clients) c.socket.destroy();
    }
  });

  it("connection_limit 4 with 3 held open: 40 short connections, spread over both workers, are all served (a worker's idle slots are reclaimed for the other), and a 5th held one is refused", async () => {
    const port = await freePort();
    // "hold" keeps the connection; anything else is answered and closed.
    const backend = await customServer((s) => {
      s.once("data", (d: Buffer) => {
        if (d.toString().startsWith("hold")) s.write("held\n");
        else s.end("ok\n");
      });
    });
    fx.servers.push(backend);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: [{ id: "m-1", address: "127.0.0.1", protocol_port: backend.port }] }, { connection_limit: 4 })]);
    await twoReadyWorkers(w);
    const talk = (msg: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.connect({ port, host: "127.0.0.1" });
        let got = "";
        const t = setTimeout(() => {
          reject(new Error(`"${msg}": neither an answer nor a close within 5000 ms (got ${JSON.stringify(got)})`));
          sock.destroy();
        }, 5000);
        const done = (answer: string) => {
          clearTimeout(t);
          resolve(answer);
        };
        sock.on("data", (d: Buffer) => {
          got += d;
          if (msg === "hold" && got.includes("held")) done("held");
        });
        sock.on("error", () => undefined);
        sock.on("close", () => done(got.trim() || "refused"));
        sock.write(msg);
        if (msg === "hold") held.push(sock);
      });
    const held: net.Socket[] = [];
    try {
      expect(await Promise.all([talk("hold"), talk("hold"), talk("hold")])).toEqual(["held", "held", "held"]);
      // Each round starts once the one before is over for lb4 too: a client can see its close
      // just before the worker has ended its side (on the net data plane both close at about
      // the same moment), and that slot is not free yet.
      const threeOpen = async () => metricValue(await scrape(w.lb), "lb4_connections_active", { listener: "ls-w" }) === 3;
      const answers: string[] = [];
      for (let round = 0; round < 20; round++) {
        await waitFor(threeOpen, 5000, "the connections before closed in lb4");
        answers.push(...(await Promise.all([talk("x"), talk("x")])));
      }
      // Two at a time against one free slot: some are refused; every one that is refused came while the other held the slot.
      const served = answers.filter((a) => a === "ok").length;
      const refused = answers.filter((a) => a === "refused").length;
      expect(served + refused).toBe(40);
      expect(served).toBeGreaterThanOrEqual(20);
      // One at a time (as above): every connection is served, whichever worker takes it.
      const one: string[] = [];
      for (let i = 0; i < 40; i++) {
        await waitFor(threeOpen, 5000, "the connections before closed in lb4");
        one.push(await talk("x"));
      }
      expect(one.filter((a) => a === "ok")).toHaveLength(40);
      const lines = await waitForTcpConnLines(w, "ls-w", served + 40);
      console.log(`limit 4, 3 held: 40 one-at-a-time connections served by worker pids ${JSON.stringify(pidSplit(lines.slice(-40)))}; two at a time: ${served} served, ${refused} refused`);
      await waitFor(threeOpen, 5000, "the connections before closed in lb4");
      expect(await talk("hold")).toBe("held");
      expect(await talk("hold")).toBe("refused");
    } finally {
      for (const sock of held) sock.destroy();
    }
  });

  it("100 datagrams of one UDP flow reach one member", async () => {
    const port = await freePort();
    const socks: dgram.Socket[] = [];
    const udpBackend = async (name: string): Promise<{ port: number; got: number }> => {
      const s = dgram.createSocket("udp4");
      socks.push(s);
      const b = { port: 0, got: 0 };
      s.on("message", (msg, r) => {
        b.got++;
        s.send(`${name}|${msg.toString()}`, r.port, r.address);
      });
      await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
      b.port = s.address().port;
      return b;
    };
    const client = dgram.createSocket("udp4");
    socks.push(client);
    try {
      const [a, b] = [await udpBackend("a"), await udpBackend("b")];
      const w = await startWorkers(fx.dir, [
        {
          id: "lb-u",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-u", protocol: "UDP", protocol_port: port, default_pool_id: "pu" }],
          pools: [
            {
              id: "pu",
              protocol: "UDP",
              lb_algorithm: "ROUND_ROBIN",
              members: [
                { id: "m-a", address: "127.0.0.1", protocol_port: a.port },
                { id: "m-b", address: "127.0.0.1", protocol_port: b.port },
              ],
            },
          ],
        },
      ]);
      await twoReadyWorkers(w);
      const replies: string[] = [];
      let wake: (() => void) | undefined;
      client.on("message", (m) => {
        replies.push(m.toString());
        wake?.();
      });
      await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
      // One at a time, each answered before the next: nothing is lost to a full buffer.
      for (let i = 0; i < 100; i++) {
        const want = i + 1;
        const answered = new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no reply to datagram ${i}`)), 3000);
          wake = () => {
            if (replies.length >= want) {
              clearTimeout(t);
              resolve();
            }
          };
        });
        client.send(`d${i}`, port, "127.0.0.1");
        await answered;
      }
      expect(replies).toHaveLength(100);
      const tags = new Set(replies.map((r) => r.split("|")[0]));
      expect(tags.size).toBe(1);
      expect(replies.map((r) => r.split("|")[1])).toEqual(Array.from({ length: 100 }, (_, i) => `d${i}`));
      expect(a.got + b.got).toBe(100);
      expect([a.got, b.got].sort()).toEqual([0, 100]);
    } finally {
      for (const s of socks) s.close();
    }
  });

  it("lb4_connections_total equals the 150 connections made, read right after the last one closed", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a", "b"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a", "b"]) })]);
    await twoReadyWorkers(w);
    for (let round = 0; round < 15; round++) await Promise.all(Array.from({ length: 10 }, () => whoAnswers(port)));
    const text = await scrape(w.lb);
    expect(metricValue(text, "lb4_connections_total", { listener: "ls-w" })).toBe(150);
    const lines = await waitForTcpConnLines(w, "ls-w", 150);
    expect(lines).toHaveLength(150);
    console.log(`connections_total: connections per worker pid: ${JSON.stringify(pidSplit(lines))}`);
  });

  it("kill -9 of a worker: 50 new connections all succeed and the worker is replaced", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a", "b"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a", "b"]) })]);
    const pids = await twoReadyWorkers(w);
    for (let i = 0; i < 20; i++) await whoAnswers(port);
    // A scrape folds in the workers' counters: those of the worker about to die must stay counted.
    expect(metricValue(await scrape(w.lb), "lb4_connections_total", { listener: "ls-w" })).toBe(20);
    const victim = pids[0]!;
    process.kill(victim, "SIGKILL");
    // Dead before the first new connection (a connection the victim accepted as it died is not what this tests).
    await waitFor(() => !running(victim), 2000, `worker ${victim} dead`);

    const got: string[] = [];
    const failures: string[] = [];
    for (let i = 0; i < 50; i++) {
      try {
        got.push(await whoAnswers(port));
      } catch (err) {
        failures.push(`connection ${i}: ${(err as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
    expect(got).toHaveLength(50);
    expect(new Set(got)).toEqual(new Set(["a", "b"]));

    let now: number[] = [];
    await waitFor(
      async () => {
        const r = await workers(w.lb);
        now = r.workers.filter((x) => x.ready).map((x) => x.pid);
        return r.restarts === 1 && now.length === 2 && !now.includes(victim);
      },
      5000,
      "a new worker in place of the killed one",
    );
    expect(now).toContain(pids[1]);
    expect(now.find((p) => !pids.includes(p))).toBeGreaterThan(0);
    expect(alive(victim)).toBe(false);
    const text = await scrape(w.lb);
    expect(metricValue(text, "lb4_worker_restarts_total")).toBe(1);
    expect(metricValue(text, "lb4_workers")).toBe(2);
    expect(jsonLines(w.stdout()).some((l) => l.ev === "worker_exit" && l.pid === victim)).toBe(true);
    // Connections through the new worker set still work, and no count went back.
    expect(["a", "b"]).toContain(await whoAnswers(port));
    expect(metricValue(await scrape(w.lb), "lb4_connections_total", { listener: "ls-w" })).toBe(71);
  });

  it("SIGTERM to the primary exits 0 and leaves no worker process", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a"]) })]);
    const pids = await twoReadyWorkers(w);
    for (let round = 0; round < 4; round++) await Promise.all(Array.from({ length: 10 }, () => whoAnswers(port)));
    expect(await w.lb.stop()).toBe(0);
    await waitFor(() => pids.every((p) => !alive(p)), 5000, `worker processes ${pids.join(", ")} gone`);
    // None of the access-log lines still batched in the workers is lost on the way out.
    expect(tcpConnLines(w.stdout(), "ls-w")).toHaveLength(40);
  });

  it("SIGTERM lets a connection opened just before it finish within the grace period (SPEC §5, §10)", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a"]) })], 2, 5);
    await twoReadyWorkers(w);
    // Opened and then SIGTERM at once: no periodic worker report has seen this connection yet.
    const c = await LineClient.open(port);
    fx.clients.push(c);
    expect(await c.line()).toBe("a");
    w.lb.proc.kill("SIGTERM");
    await waitFor(() => jsonLines(w.stdout()).some((l) => l.ev === "stop"), 5000, "the stop line");
    // Still forwarding while lb4 drains: the client ends it, not the shutdown.
    await c.echo("still-here");
    c.socket.end();
    expect(await w.lb.exited).toBe(0);
    const lines = tcpConnLines(w.stdout(), "ls-w");
    expect(lines).toHaveLength(1);
    expect(lines[0]!.end).not.toBe("shutdown");
    expect(lines[0]!.bytes_in).toBe("still-here\n".length);
  });

  it("SIGHUP reloads every worker without dropping an open connection", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a", "b"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a"]) })]);
    const pids = await twoReadyWorkers(w);
    const c = await LineClient.open(port);
    fx.clients.push(c);
    expect(await c.line()).toBe("a");
    // The file now names b only: after SIGHUP every worker sends new connections to b.
    await writeConfig(path.join(fx.dir, "lb4.yaml"), adminConfig(Number(new URL(w.lb.url).port), "./state", [tcpLb(port, { members: members(backends.slice(1), ["b"]) })]));
    w.lb.proc.kill("SIGHUP");
    await waitFor(() => jsonLines(w.stdout()).some((l) => l.ev === "reload"), 10_000, "the reload line");
    const got: string[] = [];
    for (let round = 0; round < 4; round++) got.push(...(await Promise.all(Array.from({ length: 6 }, () => whoAnswers(port)))));
    expect(tally(got)).toEqual({ b: 24 });
    // The connection to a, opened before, still flows (its member left: it runs on until it ends).
    await c.echo("after-reload");
    expect((await workers(w.lb)).workers.map((x) => x.pid)).toEqual(pids);
  });

  it("kill -9 of the primary: the workers exit too (no orphans)", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a"]) })]);
    const pids = await twoReadyWorkers(w);
    await w.lb.kill9();
    await waitFor(() => pids.every((p) => !alive(p)), 5000, `worker processes ${pids.join(", ")} gone`);
  });

  it("a weight change through the admin API applies in both workers at once", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a", "b"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a", "b"]) })]);
    await twoReadyWorkers(w);
    for (let i = 0; i < 10; i++) await whoAnswers(port);
    const r = await api(w.lb.url, "PUT", "/v3/elb/pools/p/members/m-b", { body: { member: { weight: 0 } } });
    expect(r.status).toBe(200);
    // The answer comes once every worker took the change: no later connection reaches b.
    const got: string[] = [];
    for (let round = 0; round < 6; round++) got.push(...(await Promise.all(Array.from({ length: 6 }, () => whoAnswers(port)))));
    expect(tally(got)).toEqual({ a: 36 });
    const lines = (await waitForTcpConnLines(w, "ls-w", 46)).slice(10);
    console.log(`after the weight change: connections per worker pid: ${JSON.stringify(pidSplit(lines))}`);
  });

  it("lb4 status shows a Workers table with both workers", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a"]) })]);
    const pids = await twoReadyWorkers(w);
    const r = await runCli(["status", "--admin", w.lb.url], { LB4_ADMIN_TOKEN: TOKEN });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Workers: 2 (restarts 0)");
    expect(r.stdout).toMatch(/WORKER\s+PID\s+STATE\s+CONNECTIONS\s+UPTIME/);
    for (const pid of pids) expect(r.stdout).toMatch(new RegExp(`\\d+\\s+${pid}\\s+ready\\s+0\\s+\\d+s`));
  });

  it("with --workers 1, /v3/elb/workers is an empty list", async () => {
    const port = await freePort();
    const backends = await echoMembers(["a"]);
    const w = await startWorkers(fx.dir, [tcpLb(port, { members: members(backends, ["a"]) })], 1);
    expect(await whoAnswers(port)).toBe("a");
    const r = await api(w.lb.url, "GET", "/v3/elb/workers");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ workers: [], restarts: 0 });
    expect(metricValue(await scrape(w.lb), "lb4_workers")).toBe(0);
  });
});
