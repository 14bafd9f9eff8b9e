/** The admin HTTP server in-process: start-up guards, keep-alive, streaming body limit, close(). */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startAdminServer, type AdminServer } from "../../src/admin/server.js";
import { startLoadBalancer, type Engine, type LoadBalancerHandle } from "../../src/engine.js";
import { silentLogger } from "../../src/log.js";
import { freePort } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const servers: AdminServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(handles.splice(0).map((h) => h.close({ graceMs: 0 })));
});

async function start(opts: { token?: string; metrics?: () => Promise<{ contentType: string; body: string }>; reload?: () => Promise<void> } = {}) {
  const port = await freePort();
  const h = await startLoadBalancer({
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
        pools: [{ id: "pool-1", protocol: "TCP", members: [{ id: "m-1", address: "127.0.0.1", protocol_port: 9 }] }],
      },
    ],
  });
  handles.push(h);
  const s = await startAdminServer({ engine: h.engine, listen: "127.0.0.1:0", token: opts.token, logger: silentLogger(), reload: opts.reload ?? (async () => undefined), metrics: opts.metrics });
  servers.push(s);
  return { s, h, url: `http://127.0.0.1:${s.address.port}` };
}

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: "127.0.0.1" });
    let out = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (out += d));
    sock.on("error", reject);
    sock.on("end", () => resolve(out));
    sock.write(text);
  });
}

describe("startAdminServer", () => {
  it("refuses a non-loopback address without a token", async () => {
    await expect(startAdminServer({ engine: {} as Engine, listen: "0.0.0.0:0", logger: silentLogger(), reload: async () => undefined })).rejects.toMatchObject({
      code: "LB4.ADMIN_TOKEN_REQUIRED",
      message: expect.stringContaining("admin.token"),
    });
    await expect(startAdminServer({ engine: {} as Engine, listen: "[::]:0", token: "", logger: silentLogger(), reload: async () => undefined })).rejects.toMatchObject({
      code: "LB4.ADMIN_TOKEN_REQUIRED",
    });
  });

  it("says which address is busy", async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await expect(startAdminServer({ engine: {} as Engine, listen: `127.0.0.1:${port}`, logger: silentLogger(), reload: async () => undefined })).rejects.toMatchObject({
        code: "LB4.ADMIN_LISTEN_FAILED",
        message: expect.stringContaining("EADDRINUSE"),
      });
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it("serves several requests on one keep-alive connection, and close() does not wait for idle ones", async () => {
    const { s, url } = await start({ token: "t" });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<{ status: number; reused: boolean; body: string }>((resolve, reject) => {
        const req = http.get(`${url}${path}`, { agent, headers: { "x-auth-token": "t" } }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode!, reused: req.reusedSocket, body }));
        });
        req.on("error", reject);
      });
    const first = await get("/v3/elb/pools");
    const second = await get("/v3/elb/nope");
    const third = await get("/v3/elb/pools/pool-1/members");
    expect([first.status, second.status, third.status]).toEqual([200, 404, 200]);
    expect([first.reused, second.reused, third.reused]).toEqual([false, true, true]);
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    agent.destroy();
  });

  it("refuses a chunked body past the limit with 413, and the connection stays usable", async () => {
    const { s } = await start();
    const chunk = "x".repeat(16 * 1024);
    const chunks = Array.from({ length: 5 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join("");
    const text =
      `POST /v3/elb/pools/pool-1/members HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n` +
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    const out = await rawRequest(s.address.port, text);
    expect(out).toMatch(/^HTTP\/1\.1 413 /);
    expect(out).toContain('"error_code":"LB4.BODY_TOO_LARGE"');
    expect(out).toMatch(/HTTP\/1\.1 200 OK[\s\S]*\{"status":"ok"[,}]/);
  });

  it("HEAD, metrics from the provider, 501 without one, and reload errors as 4xx", async () => {
    const withMetrics = await start({ metrics: async () => ({ contentType: "text/plain; version=0.0.4", body: "lb4_up 1\n" }) });
    const m = await fetch(`${withMetrics.url}/metrics`);
    expect([m.status, m.headers.get("content-type"), await m.text()]).toEqual([200, "text/plain; version=0.0.4", "lb4_up 1\n"]);
    const head = await fetch(`${withMetrics.url}/healthz`, { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);

    const { ConfigError } = await import("../../src/errors.js");
    const without = await start({
      reload: async () => {
        throw new ConfigError([{ path: "loadbalancers[0].vip_address", message: "must be an IPv4 or IPv6 address" }]);
      },
    });
    const none = await fetch(`${without.url}/metrics`);
    expect(none.status).toBe(501);
    expect(await none.json()).toMatchObject({ error_code: "LB4.NOT_IMPLEMENTED" });
    const r = await fetch(`${without.url}/v3/elb/reload`, { method: "POST", headers: { "content-type": "application/json" } });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({
      error_code: "LB4.CONFIG_INVALID",
      error_msg: expect.stringContaining("loadbalancers[0].vip_address: must be an IPv4 or IPv6 address"),
      problems: [{ path: "loadbalancers[0].vip_address", message: "must be an IPv4 or IPv6 address" }],
    });
    const withBody = await fetch(`${without.url}/v3/elb/reload`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"force": true}' });
    expect(withBody.status).toBe(400);
  });
});
