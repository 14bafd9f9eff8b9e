/**
 * Hostile input through the real entry points: an object handed to startLoadBalancer and an
 * admin API body over HTTP. Refused with the path and code; nothing runs or changes.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startAdminServer, type AdminServer } from "../../src/admin/server.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { ConfigError } from "../../src/errors.js";
import { silentLogger } from "../../src/log.js";
import { freePort } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(handles.splice(0).map((h) => h.close({ graceMs: 0 })));
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

async function lb(): Promise<{ h: LoadBalancerHandle; url: string }> {
  const port = await freePort();
  const h = await startLoadBalancer({
    log: { level: "silent" },
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
  const s = await startAdminServer({ engine: h.engine, listen: "127.0.0.1:0", logger: silentLogger(), reload: async () => undefined });
  servers.push(s);
  return { h, url: `http://127.0.0.1:${s.address.port}` };
}

describe("startLoadBalancer", () => {
  it("refuses a config whose __proto__ would add fields, and listens nowhere", async () => {
    const port = await freePort();
    const doc = JSON.parse(
      JSON.stringify({
        loadbalancers: [{ id: "lb-1", vip_address: "127.0.0.1", listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }], pools: [{ id: "pool-1", protocol: "TCP", members: [] }] }],
      }).replace(/^\{/, '{"__proto__": {"state_dir": "/tmp/elsewhere"},'),
    );
    const err = await startLoadBalancer(doc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([expect.objectContaining({ path: "__proto__", code: "LB4.FORBIDDEN_KEY" })]);
    expect(await refused(port)).toBe(true);
  });

  it("refuses an object whose prototype carries the load balancers (they would have been read as set)", async () => {
    const port = await freePort();
    const inherited = { loadbalancers: [{ id: "lb-1", vip_address: "127.0.0.1", listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }], pools: [{ id: "pool-1", protocol: "TCP", members: [] }] }] };
    const err = await startLoadBalancer({ __proto__: inherited, log: { level: "silent" } } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([expect.objectContaining({ path: "", code: "LB4.FORBIDDEN_KEY", message: expect.stringContaining("plain data") })]);
    expect(await refused(port)).toBe(true);
  });
});

describe("admin API bodies", () => {
  it.each([
    ['{"member": {"address": "127.0.0.1", "protocol_port": 10, "__proto__": {"weight": 100}}}', "member.__proto__"],
    ['{"__proto__": {"x": 1}, "member": {"address": "127.0.0.1", "protocol_port": 10}}', "__proto__"],
    ['{"member": {"address": "127.0.0.1", "protocol_port": 10, "constructor": {}}}', "member.constructor"],
  ])("%s → 400, nothing added", async (body, at) => {
    const { h, url } = await lb();
    const r = await fetch(`${url}/v3/elb/pools/pool-1/members`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(r.status).toBe(400);
    const reply = (await r.json()) as { error_code: string; problems: Array<{ path: string; code: string }> };
    expect(reply.error_code).toBe("LB4.INVALID_REQUEST");
    expect(reply.problems).toEqual([expect.objectContaining({ path: at, code: "LB4.FORBIDDEN_KEY" })]);
    expect(h.config.loadbalancers[0]!.pools[0]!.members.map((m) => m.id)).toEqual(["m-1"]);
  });
});
