/** SPEC §9: an IPv6 client address:port in a TCP access-log line is bracketed, "[::1]:54822". */
import net from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../src/config/schema.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { customServer, freePort, waitFor, type TestServer } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close({ graceMs: 100 });
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("access log over IPv6", () => {
  it("a TCP connection from ::1 is logged as client [::1]:<port>, member [::1]:<port>", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const backend = await customServer((s) => s.once("data", () => s.end("pong")), {}, "::1");
    servers.push(backend);
    const port = await freePort("::1");
    const config: ConfigInput = {
      loadbalancers: [
        {
          id: "lb-6",
          vip_address: "::1",
          listeners: [{ id: "ls-6", protocol: "TCP", protocol_port: port, default_pool_id: "p" }],
          pools: [{ id: "p", protocol: "TCP", members: [{ id: "m-6", address: "::1", protocol_port: backend.port }] }],
        },
      ],
    };
    const h = await startLoadBalancer(config, { logger, tuning: { tickMs: 100 } });
    handles.push(h);

    const s = net.connect({ port, host: "::1" });
    s.on("error", () => undefined);
    await new Promise<void>((r) => s.once("connect", () => r()));
    const clientPort = s.localPort!;
    const got: Buffer[] = [];
    s.on("data", (c: Buffer) => got.push(c));
    s.write("ping");
    await new Promise((r) => s.once("close", r));
    expect(Buffer.concat(got).toString()).toBe("pong");

    await waitFor(() => lines.some((l) => l.ev === "tcp_conn"), 3000, "the access-log line");
    const access = lines.filter((l) => l.ev === "tcp_conn");
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({
      listener: "ls-6",
      client: `[::1]:${clientPort}`,
      member: `[::1]:${backend.port}`,
      member_id: "m-6",
      bytes_in: 4,
      bytes_out: 4,
      end: "closed",
    });
  });
});
