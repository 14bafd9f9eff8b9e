/**
 * File descriptors run out (issue 12 item 5): `lb4 start` under a low open-file limit, more
 * connections than the limit allows against a real backend. The data plane stops at its
 * budget (the limit minus a reserve) and refuses the rest at once, so the admin API and the
 * health checks keep working during the burst; afterwards every count is back to 0, a new
 * connection is served, and the refusals were logged a few lines at a time, not one each.
 * The default UDP flow cap follows the same limit.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { budgetFor } from "../../src/dataplane/fd-budget.js";
import { bin, removeDir, tempDir, TOKEN, writeConfig } from "../helpers/lb4-child.js";
import { echoServer, freePort, waitFor, type TestServer } from "../helpers/net.js";

const LIMIT = 256;
const prlimit = spawnSync("which", ["prlimit"], { encoding: "utf8" }).stdout.trim();

let dir = "";
let child: ChildProcess | undefined;
const servers: TestServer[] = [];
const clients: net.Socket[] = [];
const udp: dgram.Socket[] = [];
beforeEach(async () => {
  dir = await tempDir("lb4-fd-");
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const u of udp.splice(0)) u.close();
  if (child && child.exitCode === null) {
    const c = child;
    await new Promise((r) => {
      c.once("close", r);
      c.kill("SIGKILL");
    });
  }
  child = undefined;
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await removeDir(dir);
});

/** One admin request on a fresh connection (no keep-alive: each must be accepted anew). */
function admin(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: p, agent: false, timeout: 3000, headers: { "x-auth-token": TOKEN } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("admin request timed out")));
    req.on("error", reject);
  });
}

function value(text: string, metric: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{") && !line.startsWith(metric + " ")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").at(-1));
  }
  return 0;
}

/** Connect, send one byte; "served" when it comes back through lb4, "refused" when closed without it. */
function tryConnection(port: number): Promise<"served" | "refused"> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    clients.push(s);
    s.on("error", () => undefined);
    s.once("connect", () => s.write("x"));
    s.once("data", () => resolve("served"));
    s.once("close", () => resolve("refused"));
  });
}

describe.skipIf(!prlimit)(`lb4 under an open-file limit of ${LIMIT}${prlimit ? "" : " (SKIPPED: prlimit not installed; it is in util-linux)"}`, () => {
  it("refuses beyond its descriptor budget, keeps the admin API and health checks up, and returns every count to 0", async () => {
    const backend = await echoServer();
    servers.push(backend);
    const [port, udpPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    // A UDP member nobody answers from: flows stay open until they idle out.
    const udpMember = dgram.createSocket("udp4");
    udp.push(udpMember);
    await new Promise<void>((r) => udpMember.bind(0, "127.0.0.1", () => r()));
    const file = path.join(dir, "lb4.yaml");
    await writeConfig(file, {
      admin: { listen: `127.0.0.1:${adminPort}`, token: TOKEN },
      state_dir: path.join(dir, "state"),
      log: { level: "info" },
      loadbalancers: [
        {
          id: "lb-fd",
          vip_address: "127.0.0.1",
          listeners: [
            { id: "ls-tcp", protocol: "TCP", protocol_port: port, default_pool_id: "p-tcp" },
            { id: "ls-udp", protocol: "UDP", protocol_port: udpPort, default_pool_id: "p-udp" },
          ],
          pools: [
            {
              id: "p-tcp",
              protocol: "TCP",
              healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 },
              members: [{ id: "m-1", address: "127.0.0.1", protocol_port: backend.port }],
            },
            { id: "p-udp", protocol: "UDP", members: [{ id: "u-1", address: "127.0.0.1", protocol_port: udpMember.address().port }] },
          ],
        },
      ],
    });
    const proc = spawn(prlimit, [`--nofile=${LIMIT}:${LIMIT}`, process.execPath, bin, "start", "--config", file, "--grace", "1", "--workers", "1"], {
      env: { ...process.env, LB4_LOG_FORMAT: "json" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    let out = "";
    proc.stdout!.on("data", (c: Buffer) => (out += c));
    proc.stderr!.on("data", (c: Buffer) => (out += c));
    await waitFor(() => out.includes('"ev":"start"') || proc.exitCode !== null, 15_000, "lb4 to start");
    expect(out).toContain('"ev":"start"');
    const metrics = async () => {
      const r = await admin(adminPort, "/metrics");
      expect(r.status).toBe(200);
      return r.body;
    };
    await waitFor(async () => value(await metrics(), "lb4_member_up", { member: "m-1" }) === 1, 10_000, "the TCP member to go ONLINE");

    // The budget under this limit, from the one module that decides it.
    const budget = budgetFor(LIMIT);
    const maxConnections = Math.floor(budget.max / 2);
    const N = LIMIT + 44; // more connections than the limit allows
    const results = await Promise.all(Array.from({ length: N }, () => tryConnection(port)));
    expect(results.filter((r) => r === "served")).toHaveLength(maxConnections);

    // During the burst, with every data-plane descriptor held: the admin API answers on new
    // connections, and health checks still pass.
    expect((await admin(adminPort, "/healthz")).status).toBe(200);
    let body = await metrics();
    expect(value(body, "lb4_connections_active", { listener: "ls-tcp" })).toBe(maxConnections);
    expect(value(body, "lb4_refused_total", { listener: "ls-tcp", reason: "fd_limit" })).toBe(N - maxConnections);
    expect(value(body, "lb4_dataplane_fds", { kind: "used" })).toBe(2 * maxConnections);
    expect(value(body, "lb4_dataplane_fds", { kind: "max" })).toBe(budget.max);
    const passes = value(body, "lb4_health_checks_total", { member: "m-1", result: "pass" });
    await waitFor(async () => value(await metrics(), "lb4_health_checks_total", { member: "m-1", result: "pass" }) > passes, 5000, "a health check to pass during the burst");
    body = await metrics();
    expect(value(body, "lb4_health_checks_total", { member: "m-1", result: "fail" })).toBe(0);
    expect(value(body, "lb4_member_up", { member: "m-1" })).toBe(1);

    // Close them all: every count returns to 0, and lb4 serves a new connection.
    for (const c of clients.splice(0)) c.destroy();
    await waitFor(async () => value(await metrics(), "lb4_connections_active", { listener: "ls-tcp" }) === 0, 10_000, "active connections back to 0");
    body = await metrics();
    expect(value(body, "lb4_dataplane_fds", { kind: "used" })).toBe(0);
    expect(value(body, "lb4_member_active_connections", { member: "m-1" })).toBe(0);
    expect(await tryConnection(port)).toBe("served");
    for (const c of clients.splice(0)) c.destroy();

    // The refusals were logged rate-limited: a few lines, each counting the ones it stood for.
    const refusedLines = out
      .split("\n")
      .filter((l) => l.includes('"ev":"refused"') && l.includes('"reason":"fd_limit"'))
      .map((l) => JSON.parse(l) as { suppressed: number });
    expect(refusedLines.length).toBeGreaterThanOrEqual(1);
    expect(refusedLines.length).toBeLessThan(N - maxConnections);
    expect(refusedLines.reduce((n, l) => n + 1 + l.suppressed, 0)).toBeLessThanOrEqual(N - maxConnections);

    // UDP: the default flow cap comes from the same limit, not a fixed 65,536.
    const flowCap = budget.defaultMaxFlows();
    const senders = flowCap + 30;
    for (let i = 0; i < senders; i++) {
      const s = dgram.createSocket("udp4");
      udp.push(s);
      await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
      s.send("hello", udpPort, "127.0.0.1");
    }
    await waitFor(
      async () => {
        const b = await metrics();
        return value(b, "lb4_connections_total", { listener: "ls-udp" }) + value(b, "lb4_refused_total", { listener: "ls-udp", reason: "limit" }) === senders;
      },
      10_000,
      "every sender to get a flow or be refused",
    );
    body = await metrics();
    expect(value(body, "lb4_udp_sessions", { listener: "ls-udp" })).toBe(flowCap);
    expect(value(body, "lb4_refused_total", { listener: "ls-udp", reason: "limit" })).toBe(senders - flowCap);
    expect((await admin(adminPort, "/healthz")).status).toBe(200);
  }, 60_000);
});
