import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/validate.js";
import { interpolateEnv } from "../../../src/config/load.js";
import type { Problem } from "../../../src/errors.js";

/** A minimal valid config; each case patches one thing. */
function base(): any {
  return {
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: 8080, default_pool_id: "pool-1" }],
        pools: [{ id: "pool-1", protocol: "TCP", members: [{ id: "m-1", address: "127.0.0.1", protocol_port: 9001 }] }],
      },
    ],
  };
}

function problems(patch: (c: any) => void, ctx = {}): Problem[] {
  const c = base();
  patch(c);
  const r = validateConfig(c, ctx);
  return r.ok ? [] : r.problems;
}

describe("validateConfig", () => {
  it("accepts the minimal config and fills SPEC §2 defaults", () => {
    const r = validateConfig(base());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const lb = r.config.loadbalancers[0]!;
    expect(lb.listeners[0]).toMatchObject({ keepalive_timeout: 300, connection_limit: 0, ipgroup: null });
    expect(lb.pools[0]).toMatchObject({
      lb_algorithm: "ROUND_ROBIN",
      session_persistence: null,
      slow_start: { enable: false, duration: 30 },
      connection_drain: { enable: false, timeout: 300 },
      pool_health: { minimum_healthy_member_count: 0 },
      client_ip: "auto",
      healthmonitor: null,
    });
    expect(lb.pools[0]!.members[0]).toMatchObject({ weight: 1, admin_state_up: true });
    expect(r.config.log.level).toBe("info");
    expect(r.config.state_dir).toBe("./lb4-state");
  });

  it.each<[string, (c: any) => void, string, string]>([
    ["weight above 100", (c) => (c.loadbalancers[0].pools[0].members[0].weight = 101), "loadbalancers[0].pools[0].members[0].weight", "0 to 100"],
    ["negative weight", (c) => (c.loadbalancers[0].pools[0].members[0].weight = -1), "loadbalancers[0].pools[0].members[0].weight", "0 to 100"],
    ["port 0", (c) => (c.loadbalancers[0].listeners[0].protocol_port = 0), "loadbalancers[0].listeners[0].protocol_port", "1 to 65535"],
    ["keepalive 9", (c) => (c.loadbalancers[0].listeners[0].keepalive_timeout = 9), "loadbalancers[0].listeners[0].keepalive_timeout", "10 to 4000"],
    ["keepalive 4001", (c) => (c.loadbalancers[0].listeners[0].keepalive_timeout = 4001), "loadbalancers[0].listeners[0].keepalive_timeout", "10 to 4000"],
    ["bad protocol", (c) => (c.loadbalancers[0].listeners[0].protocol = "SCTP"), "loadbalancers[0].listeners[0].protocol", "TCP or UDP"],
    ["bad member address", (c) => (c.loadbalancers[0].pools[0].members[0].address = "10.0.0.256"), "loadbalancers[0].pools[0].members[0].address", "IPv4 or IPv6"],
    ["CIDR as member address", (c) => (c.loadbalancers[0].pools[0].members[0].address = "10.0.0.0/8"), "loadbalancers[0].pools[0].members[0].address", "no prefix length"],
    ["missing vip", (c) => delete c.loadbalancers[0].vip_address, "loadbalancers[0].vip_address", "is required"],
    ["port as a string", (c) => (c.loadbalancers[0].listeners[0].protocol_port = "8080"), "loadbalancers[0].listeners[0].protocol_port", "must be an integer from 1 to 65535"],
    ["unknown field", (c) => (c.loadbalancers[0].pools[0].lb_algo = "x"), "loadbalancers[0].pools[0].lb_algo", "unknown field"],
    ["bad ipgroup entry", (c) => (c.loadbalancers[0].listeners[0].ipgroup = { type: "white", ip_list: ["10.0.0.0/33"] }), "loadbalancers[0].listeners[0].ipgroup.ip_list[0]", "address or CIDR"],
    ["persistence timeout 61", (c) => (c.loadbalancers[0].pools[0].session_persistence = { type: "SOURCE_IP", persistence_timeout: 61 }), "loadbalancers[0].pools[0].session_persistence.persistence_timeout", "1 to 60"],
    ["slow start 29 s", (c) => (c.loadbalancers[0].pools[0].slow_start = { enable: true, duration: 29 }), "loadbalancers[0].pools[0].slow_start.duration", "30 to 1200"],
    ["drain 4001 s", (c) => (c.loadbalancers[0].pools[0].connection_drain = { enable: true, timeout: 4001 }), "loadbalancers[0].pools[0].connection_drain.timeout", "10 to 4000"],
    ["health delay 51", (c) => (c.loadbalancers[0].pools[0].healthmonitor = { type: "TCP", delay: 51 }), "loadbalancers[0].pools[0].healthmonitor.delay", "1 to 50"],
    ["url_path without /", (c) => (c.loadbalancers[0].pools[0].healthmonitor = { type: "HTTP", url_path: "health" }), "loadbalancers[0].pools[0].healthmonitor.url_path", 'start with "/"'],
    ["expected_codes junk", (c) => (c.loadbalancers[0].pools[0].healthmonitor = { type: "HTTP", expected_codes: "2xx" }), "loadbalancers[0].pools[0].healthmonitor.expected_codes", '"200-299"'],
    ["unknown pool", (c) => (c.loadbalancers[0].listeners[0].default_pool_id = "nope"), "loadbalancers[0].listeners[0].default_pool_id", 'pool "nope" is not a pool'],
    ["protocol mismatch", (c) => (c.loadbalancers[0].pools[0].protocol = "UDP"), "loadbalancers[0].listeners[0].default_pool_id", "must match"],
    ["duplicate member id", (c) => c.loadbalancers[0].pools[0].members.push({ id: "m-1", address: "127.0.0.2", protocol_port: 9001 }), "loadbalancers[0].pools[0].members[1].id", 'duplicate member id "m-1"'],
    ["same backend twice", (c) => c.loadbalancers[0].pools[0].members.push({ id: "m-2", address: "127.0.0.1", protocol_port: 9001 }), "loadbalancers[0].pools[0].members[1].address", "already member"],
    ["duplicate listener port", (c) => c.loadbalancers[0].listeners.push({ id: "ls-2", protocol: "TCP", protocol_port: 8080, default_pool_id: "pool-1" }), "loadbalancers[0].listeners[1].protocol_port", "already used"],
    ["persistence with SOURCE_IP", (c) => Object.assign(c.loadbalancers[0].pools[0], { lb_algorithm: "SOURCE_IP", session_persistence: { type: "SOURCE_IP" } }), "loadbalancers[0].pools[0].session_persistence", "not allowed with SOURCE_IP"],
    ["slow start with LEAST_CONNECTIONS", (c) => Object.assign(c.loadbalancers[0].pools[0], { lb_algorithm: "LEAST_CONNECTIONS", slow_start: { enable: true } }), "loadbalancers[0].pools[0].slow_start.enable", "ROUND_ROBIN only"],
    ["UDP_CONNECT on TCP pool", (c) => (c.loadbalancers[0].pools[0].healthmonitor = { type: "UDP_CONNECT" }), "loadbalancers[0].pools[0].healthmonitor.type", "UDP_CONNECT is for UDP pools"],
    ["admin on a public address without token", (c) => (c.admin = { listen: "0.0.0.0:9870" }), "admin.token", "not a loopback address"],
    ["unknown vpc", (c) => (c.loadbalancers[0].vpc_id = "vpc-x"), "loadbalancers[0].vpc_id", 'VPC "vpc-x"'],
  ])("%s", (_name, patch, path, reason) => {
    const ps = problems(patch);
    const hit = ps.find((p) => p.path === path);
    expect(hit, `expected a problem at ${path}, got ${JSON.stringify(ps)}`).toBeDefined();
    expect(hit!.message).toContain(reason);
  });

  it("reports every problem at once", () => {
    const ps = problems((c) => {
      c.loadbalancers[0].pools[0].members[0].weight = 101;
      c.loadbalancers[0].listeners[0].protocol_port = 70000;
      c.loadbalancers[0].listeners[0].keepalive_timeout = 1;
    });
    expect(ps.map((p) => p.path).sort()).toEqual([
      "loadbalancers[0].listeners[0].keepalive_timeout",
      "loadbalancers[0].listeners[0].protocol_port",
      "loadbalancers[0].pools[0].members[0].weight",
    ]);
  });

  it("allows a TCP and a UDP listener on the same port number", () => {
    const ps = problems((c) => {
      c.loadbalancers[0].pools.push({ id: "pool-u", protocol: "UDP", members: [] });
      c.loadbalancers[0].listeners.push({ id: "ls-u", protocol: "UDP", protocol_port: 8080, default_pool_id: "pool-u" });
    });
    expect(ps).toEqual([]);
  });
});

describe("interpolateEnv", () => {
  it.each([
    ["${A}", { A: "8080" }, 8080],
    ["${A}", { A: "true" }, true],
    ["${A}", { A: "abc" }, "abc"],
    ["x-${A}-${B}", { A: "1", B: "2" }, "x-1-2"],
    ["$A", {}, "$A"],
  ])("%s with %j → %j", (input, env, out) => {
    const ps: Problem[] = [];
    expect(interpolateEnv(input, env, ps)).toEqual(out);
    expect(ps).toEqual([]);
  });

  it("names an unset variable with its path", () => {
    const ps: Problem[] = [];
    interpolateEnv({ admin: { token: "${TOKEN}" } }, {}, ps);
    expect(ps).toEqual([{ path: "admin.token", message: expect.stringContaining("environment variable TOKEN is not set"), code: "LB4.ENV_UNSET" }]);
  });
});
