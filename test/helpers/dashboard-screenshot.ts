/**
 * The README's dashboard picture (docs/dashboard.png): an in-process lb4 with members in every
 * state — ONLINE, OFFLINE (a killed backend), UNCHECKED, slow-starting, admin down, NO_MONITOR —
 * and a few minutes of varying traffic, photographed in chromium.
 *
 *   npm run build && node --import tsx test/helpers/dashboard-screenshot.ts docs/dashboard.png [minutes]
 */
import dgram from "node:dgram";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startAdminServer } from "../../src/admin/server.js";
import { startLoadBalancer } from "../../src/engine.js";
import { silentLogger } from "../../src/log.js";
import { freePort, silentServer } from "./net.js";

const out = process.argv[2] ?? "docs/dashboard.png";
const minutes = Number(process.argv[3] ?? "4");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A backend that answers each line with a few KB; `kill()` closes it and every connection to it. */
function web(name: string): Promise<net.Server & { kill(): void }> {
  const conns = new Set<net.Socket>();
  const s = net.createServer((c) => {
    conns.add(c);
    c.on("close", () => conns.delete(c));
    c.on("error", () => undefined);
    c.on("data", () => c.write(`${name}: ${"x".repeat(2000 + Math.floor(Math.random() * 6000))}\n`));
  });
  const kill = () => {
    s.close();
    for (const c of conns) c.destroy();
  };
  return new Promise((r) => s.listen(0, "127.0.0.1", () => r(Object.assign(s, { kill }))));
}

function udpEcho(): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.on("message", (m, rinfo) => s.send(m, rinfo.port, rinfo.address));
  return new Promise((r) => s.bind(0, "127.0.0.1", () => r(s)));
}

const port = (s: net.Server) => (s.address() as net.AddressInfo).port;

async function main(): Promise<void> {
  const webs = await Promise.all(["web-1", "web-2", "web-3", "web-4", "web-5"].map(web));
  const apis = await Promise.all(["api-1", "api-2"].map(web));
  const dns = await Promise.all([udpEcho(), udpEcho()]);
  const cache = await silentServer();
  const [webPort, apiPort] = [await freePort(), await freePort()];
  const monitor = { type: "TCP", delay: 2, timeout: 1, max_retries: 2, max_retries_down: 1 } as const;
  const h = await startLoadBalancer(
    {
      log: { level: "silent" },
      loadbalancers: [
        {
          id: "lb-web",
          name: "public web",
          vip_address: "127.0.0.1",
          listeners: [
            { id: "ls-https", name: "web", protocol: "TCP", protocol_port: webPort, default_pool_id: "pool-web" },
            { id: "ls-dns", name: "dns", protocol: "UDP", protocol_port: webPort, default_pool_id: "pool-dns" },
          ],
          pools: [
            {
              id: "pool-web",
              name: "web servers",
              protocol: "TCP",
              healthmonitor: monitor,
              slow_start: { enable: true, duration: 300 },
              connection_drain: { enable: true, timeout: 30 },
              members: webs.slice(0, 4).map((s, i) => ({ id: `m-web-${i + 1}`, name: `web-${i + 1}`, address: "127.0.0.1", protocol_port: port(s), weight: [5, 3, 3, 2][i]! })),
            },
            { id: "pool-dns", name: "resolvers", protocol: "UDP", members: dns.map((s, i) => ({ id: `m-dns-${i + 1}`, address: "127.0.0.1", protocol_port: s.address().port, weight: 2 - i })) },
          ],
        },
        {
          id: "lb-api",
          name: "internal api",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-api", protocol: "TCP", protocol_port: apiPort, default_pool_id: "pool-api" }],
          pools: [
            { id: "pool-api", protocol: "TCP", lb_algorithm: "LEAST_CONNECTIONS", healthmonitor: monitor, members: apis.map((s, i) => ({ id: `m-api-${i + 1}`, address: "127.0.0.1", protocol_port: port(s) })) },
            {
              id: "pool-cache",
              name: "redis",
              protocol: "TCP",
              healthmonitor: { type: "TCP", delay: 1, timeout: 50, tcp_send: "PING\\r\\n", tcp_expect: "+PONG" },
              members: [],
            },
          ],
        },
      ],
    },
    { logger: silentLogger() },
  );
  const admin = await startAdminServer({ engine: h.engine, listen: "127.0.0.1:0", logger: silentLogger(), reload: async () => undefined });
  const url = `http://127.0.0.1:${admin.address.port}/`;
  console.log(`dashboard: ${url} (photo in ${minutes} min)`);

  const held: net.Socket[] = [];
  const hit = (p: number, keep = false) => {
    const c = net.connect(p, "127.0.0.1", () => c.write("GET /\n"));
    c.on("error", () => undefined);
    c.on("data", () => (keep ? undefined : c.end()));
    if (keep) held.push(c);
  };
  const started = Date.now();
  const total = minutes * 60_000;
  let stop = false;
  const traffic = (async () => {
    while (!stop) {
      const f = (Date.now() - started) / total;
      const rate = 4 + 10 * Math.sin(f * Math.PI * 3) ** 2 + (f > 0.7 ? 8 : 0);
      for (let i = 0; i < Math.round(rate / 2); i++) hit(webPort);
      if (Math.random() < 0.5) hit(apiPort);
      // A new source port now and then: a new UDP flow.
      if (Math.random() < 0.3) {
        const u = dgram.createSocket("udp4");
        u.on("message", () => u.close());
        u.send("q", webPort, "127.0.0.1");
      }
      await sleep(500);
    }
  })();
  await sleep(5000); // members online first: open connections that stay
  for (let i = 0; i < 6; i++) hit(webPort, true);
  hit(apiPort, true);

  await sleep(total * 0.3);
  webs[2]!.kill(); // m-web-3 fails its checks
  await h.updateMember("pool-web", "m-web-4", { admin_state_up: false });
  await sleep(total * 0.3);
  await h.addMember("pool-web", { id: "m-web-5", name: "web-5", address: "127.0.0.1", protocol_port: port(webs[4]!), weight: 5 }); // slow-starts
  await sleep(total * 0.3);
  // A check that waits up to 50 s for +PONG: UNCHECKED until then.
  await h.addMember("pool-cache", { id: "m-cache-1", name: "redis-1", address: "127.0.0.1", protocol_port: cache.port });
  await sleep(total * 0.1);

  const profile = await mkdtemp(path.join(os.tmpdir(), "lb4-shot-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForSelector('tr[data-member="pool-web/m-web-5"]');
  await sleep(2500);
  await page.screenshot({ path: out, fullPage: true });
  await ctx.close();
  await rm(profile, { recursive: true, force: true });
  stop = true;
  await traffic;
  for (const c of held) c.destroy();
  await admin.close();
  await h.close({ graceMs: 0 });
  for (const s of [...webs, ...apis]) s.kill();
  for (const s of dns) s.close();
  await cache.close();
  console.log(`wrote ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
