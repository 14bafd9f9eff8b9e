/**
 * `lb4 demo` (also `npm start`): three local HTTP backends with weights 5, 3 and 1 behind
 * one TCP listener on loopback — the embedded default, no config file needed.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ConfigInput } from "../config/schema.js";
import { startLoadBalancer } from "../engine.js";
import { createLogger } from "../log.js";

const BACKENDS = [
  { name: "web-1", weight: 5 },
  { name: "web-2", weight: 3 },
  { name: "web-3", weight: 1 },
] as const;

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

export function demoConfig(port: number, ports: readonly number[]): ConfigInput {
  return {
    log: { level: "info" },
    loadbalancers: [
      {
        id: "lb-demo",
        name: "demo",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-demo-tcp", protocol: "TCP", protocol_port: port, default_pool_id: "pool-demo", keepalive_timeout: 60 }],
        pools: [
          {
            id: "pool-demo",
            protocol: "TCP",
            lb_algorithm: "ROUND_ROBIN",
            members: BACKENDS.map((b, i) => ({ id: `m-${b.name}`, name: b.name, address: "127.0.0.1", protocol_port: ports[i]!, weight: b.weight })),
          },
        ],
      },
    ],
  };
}

export async function runDemo(opts: { port: number; logLevel: "info" | "warn" | "error" | "debug" | "fatal" | "silent" }): Promise<void> {
  const logger = createLogger(opts.logLevel);
  const servers = await Promise.all(BACKENDS.map((b) => backend(b.name, b.weight)));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  let port = opts.port;
  if (port === 0) {
    // Reserve a free port number for the listener (the config needs a number 1-65535).
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
  }
  const lb = await startLoadBalancer(demoConfig(port, ports), { logger, tuning: { shutdownGraceMs: 2000 } });
  const url = `http://127.0.0.1:${port}/`;
  process.stdout.write(
    [
      "",
      `lb4 demo: a TCP load balancer on 127.0.0.1:${port} in front of 3 backends (round robin, weights 5:3:1):`,
      ...BACKENDS.map((b, i) => `  ${b.name}  127.0.0.1:${ports[i]}  weight ${b.weight}`),
      "",
      "Try it in another terminal (9 connections: 5 go to web-1, 3 to web-2, 1 to web-3):",
      `  for i in 1 2 3 4 5 6 7 8 9; do curl -s ${url}; done`,
      "",
      "Each finished connection writes one access-log line below. Press Ctrl-C to stop.",
      "",
    ].join("\n") + "\n",
  );
  const stop = async () => {
    await lb.close({ graceMs: 2000 });
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    logger.flush(() => process.exit(0));
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}
