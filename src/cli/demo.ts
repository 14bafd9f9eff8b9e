/**
 * `lb4 demo` (also `npm start`): three local HTTP backends with weights 5, 3 and 1 behind
 * one TCP listener, and two UDP echo backends with weights 2 and 1 behind a UDP listener on
 * the same port number (SPEC §5) — all on loopback, no config file needed. The admin API
 * runs too (loopback, no token, on the CLI's default address when it is free), so the
 * README's `lb4 status` / `lb4 members …` / curl commands work against it as written.
 */
import dgram from "node:dgram";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ConfigInput } from "../config/schema.js";
import { startAdminServer, type AdminServer, type AdminServerOptions } from "../admin/server.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../engine.js";
import { Lb4Error } from "../errors.js";
import { createLogger, flushAndExit } from "../log.js";
import { createMetrics } from "../metrics/registry.js";
import type { Logger } from "pino";
import { DEFAULT_ADMIN_URL } from "./admin-client.js";

const BACKENDS = [
  { name: "web-1", weight: 5 },
  { name: "web-2", weight: 3 },
  { name: "web-3", weight: 1 },
] as const;

const UDP_BACKENDS = [
  { name: "udp-1", weight: 2 },
  { name: "udp-2", weight: 1 },
] as const;

/** Replies "<name>: <payload>" to every datagram. */
function udpBackend(name: string): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.on("message", (msg, rinfo) => s.send(Buffer.concat([Buffer.from(`${name}: `), msg]), rinfo.port, rinfo.address));
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      s.off("error", reject);
      s.on("error", () => undefined);
      resolve(s);
    });
  });
}

/** A port number free for both TCP and UDP on loopback a moment ago. */
async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const u = dgram.createSocket("udp4");
    const ok = await new Promise<boolean>((r) => {
      u.once("error", () => r(false));
      u.bind(port, "127.0.0.1", () => r(true));
    });
    await new Promise<void>((r) => u.close(() => r()));
    if (ok || attempt >= 20) return port;
  }
}

function backend(name: string, weight: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.setHeader("connection", "close");
    res.end(`hello from ${name} (weight ${weight})\n`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

export function demoConfig(port: number, ports: readonly number[], udpPorts: readonly number[] = []): ConfigInput {
  return {
    log: { level: "info" },
    loadbalancers: [
      {
        // The ids the README and `lb4 init`'s starter use, so the same commands work on both.
        id: "lb-web",
        name: "demo",
        vip_address: "127.0.0.1",
        listeners: [
          { id: "ls-web", protocol: "TCP", protocol_port: port, default_pool_id: "pool-web", keepalive_timeout: 60 },
          ...(udpPorts.length ? [{ id: "ls-udp", protocol: "UDP" as const, protocol_port: port, default_pool_id: "pool-udp", keepalive_timeout: 10 }] : []),
        ],
        pools: [
          {
            id: "pool-web",
            protocol: "TCP",
            lb_algorithm: "ROUND_ROBIN",
            members: BACKENDS.map((b, i) => ({ id: `m-${i + 1}`, name: b.name, address: "127.0.0.1", protocol_port: ports[i]!, weight: b.weight, instance_id: `ecs-000${i + 1}` })),
          },
          ...(udpPorts.length
            ? [
                {
                  id: "pool-udp",
                  protocol: "UDP" as const,
                  lb_algorithm: "ROUND_ROBIN" as const,
                  members: UDP_BACKENDS.map((b, i) => ({ id: `m-udp-${i + 1}`, name: b.name, address: "127.0.0.1", protocol_port: udpPorts[i]!, weight: b.weight })),
                },
              ]
            : []),
        ],
      },
    ],
  };
}

/** The CLI's default admin address (`lb4 status` without --admin reaches it). */
const DEFAULT_ADMIN_PORT = Number(new URL(DEFAULT_ADMIN_URL).port);

/**
 * The admin API for the demo on loopback, without a token. `port` undefined: the CLI's
 * default port, or any free one when that is taken (the banner then says how to point the
 * CLI at it); a given port must be free.
 */
async function demoAdmin(lb: LoadBalancerHandle, logger: Logger, reload: AdminServerOptions["reload"], port: number | undefined): Promise<AdminServer> {
  const start = (p: number) =>
    startAdminServer({ engine: lb.engine, listen: `127.0.0.1:${p}`, logger, reload, metrics: createMetrics(lb.engine).scrape });
  if (port !== undefined) return start(port);
  try {
    return await start(DEFAULT_ADMIN_PORT);
  } catch (err) {
    if (!(err instanceof Lb4Error) || err.code !== "LB4.ADMIN_LISTEN_FAILED") throw err;
    return start(0);
  }
}

export async function runDemo(opts: { port: number; adminPort?: number | undefined; logLevel: "info" | "warn" | "error" | "debug" | "fatal" | "silent" }): Promise<void> {
  const logger = createLogger(opts.logLevel);
  const servers = await Promise.all(BACKENDS.map((b) => backend(b.name, b.weight)));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  const udpServers = await Promise.all(UDP_BACKENDS.map((b) => udpBackend(b.name)));
  const udpPorts = udpServers.map((s) => s.address().port);
  // port 0: reserve a free number for both listeners (the config needs a number 1-65535).
  const port = opts.port === 0 ? await freePort() : opts.port;
  const config = demoConfig(port, ports, udpPorts);
  const lb = await startLoadBalancer(config, { logger, tuning: { shutdownGraceMs: 2000 } });
  // No file to re-read: a reload applies the demo's own config again (runtime member changes stay).
  let admin: AdminServer;
  try {
    admin = await demoAdmin(lb, logger, () => lb.reload(config), opts.adminPort);
  } catch (err) {
    await lb.close({ graceMs: 0 });
    throw err;
  }
  const adminUrl = `http://127.0.0.1:${admin.address.port}`;
  const adminHint =
    admin.address.port === DEFAULT_ADMIN_PORT
      ? []
      : [`  (not on the default ${DEFAULT_ADMIN_URL}: first  export LB4_ADMIN_URL=${adminUrl}  or pass --admin ${adminUrl})`];
  const url = `http://127.0.0.1:${port}/`;
  // 6 datagrams from 6 source ports (6 flows): 4 answered by udp-1, 2 by udp-2.
  const udpTry =
    `node -e 'const d=require("dgram");setTimeout(()=>process.exit(),2000).unref();` +
    `for(let i=1;i<=6;i++){const s=d.createSocket("udp4");s.on("message",m=>{console.log(String(m));s.close()});s.send("ping "+i,${port},"127.0.0.1")}'`;
  process.stdout.write(
    [
      "",
      `lb4 demo: a TCP load balancer on 127.0.0.1:${port} in front of 3 backends (round robin, weights 5:3:1):`,
      ...BACKENDS.map((b, i) => `  ${b.name}  127.0.0.1:${ports[i]}  weight ${b.weight}`),
      "",
      "Try it in another terminal (9 connections: 5 go to web-1, 3 to web-2, 1 to web-3):",
      `  for i in 1 2 3 4 5 6 7 8 9; do curl -s ${url}; done`,
      "",
      `UDP on the same port number, 127.0.0.1:${port}, in front of 2 echo backends (weights 2:1):`,
      ...UDP_BACKENDS.map((b, i) => `  ${b.name}  127.0.0.1:${udpPorts[i]}  weight ${b.weight}`),
      "",
      "Send 6 datagrams from 6 source ports (6 flows: 4 go to udp-1, 2 to udp-2):",
      `  ${udpTry}`,
      `  (or, with socat: for i in 1 2 3; do echo hi | socat -t1 - UDP:127.0.0.1:${port}; done)`,
      "",
      `Admin API (loopback, no token): ${adminUrl}  — also ${adminUrl}/metrics and ${adminUrl}/healthz`,
      `Dashboard: ${adminUrl}/  (open it in a browser: members, health and traffic, live; lb4 status --watch shows the same in a terminal)`,
      ...adminHint,
      "Change the pool while traffic runs (the README's \"Runtime control\" commands work as written):",
      "  lb4 status",
      "  lb4 members set-weight --pool pool-web --id m-1 --weight 0",
      "  lb4 members set-admin --pool pool-web --id m-2 down",
      `  curl -s ${adminUrl}/v3/elb/pools/pool-web/members`,
      "",
      "Each finished connection (and each UDP flow, 10 s after its last datagram) writes one access-log line below. Press Ctrl-C to stop.",
      "",
    ].join("\n") + "\n",
  );
  const stop = async () => {
    await Promise.all([admin.close(), lb.close({ graceMs: 2000 })]);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await Promise.all(udpServers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    flushAndExit(logger, 0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}
