/**
 * Validation output: every problem carries an LB4.* code, the printed line shows it, and an
 * unknown field suggests the nearest known one from the schema at that path.
 */
import { describe, expect, it } from "vitest";
import { validationError } from "../../../src/admin/routes.js";
import { configSchema, memberSchema } from "../../../src/config/schema.js";
import { knownFields, nearestField } from "../../../src/config/suggest.js";
import { schemaProblems, validateConfig } from "../../../src/config/validate.js";
import { ConfigError, formatProblem, type Problem } from "../../../src/errors.js";

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

function problems(patch: (c: any) => void): Problem[] {
  const c = base();
  patch(c);
  const r = validateConfig(c);
  return r.ok ? [] : r.problems;
}

const POOL = "loadbalancers[0].pools[0]";

describe("knownFields", () => {
  it.each<[PropertyKey[], string[] | undefined]>([
    [[], ["cluster", "admin", "state_dir", "workers", "log", "vpcs", "loadbalancers"]],
    [["admin"], ["listen", "token", "allowed_hosts"]],
    [["loadbalancers", 0, "pools", 3, "session_persistence"], ["type", "persistence_timeout"]],
    [["loadbalancers", 0, "listeners", 0, "ipgroup"], ["type", "ip_list"]],
    [["vpcs", 1, "subnets", 0], ["id", "cidr", "used_ips"]],
    [["loadbalancers", "x"], undefined],
    [["nope"], undefined],
    [["loadbalancers", 0, "vip_address"], undefined],
  ])("at %j", (path, expected) => {
    expect(knownFields(configSchema, path)).toEqual(expected);
  });

  it("reaches the health monitor through nullable and default", () => {
    expect(knownFields(configSchema, ["loadbalancers", 0, "pools", 0, "healthmonitor"])).toContain("expected_codes");
  });
});

describe("nearestField", () => {
  const pool = knownFields(configSchema, ["loadbalancers", 0, "pools", 0])!;
  const member = knownFields(configSchema, ["loadbalancers", 0, "pools", 0, "members", 0])!;
  const listener = knownFields(configSchema, ["loadbalancers", 0, "listeners", 0])!;
  it.each<[string, readonly string[], string | undefined]>([
    ["lb_algorithm", pool, "lb_algorithm"],
    ["lb_algoritm", pool, "lb_algorithm"],
    ["LB_Algorithm", pool, "lb_algorithm"],
    ["lb_algo", pool, "lb_algorithm"], // prefix
    ["healthmonitors", pool, "healthmonitor"],
    ["health_monitor", pool, "healthmonitor"],
    ["member", pool, "members"],
    ["wieght", member, "weight"], // transposition
    ["adress", member, "address"],
    ["port", member, undefined], // too short a fragment of protocol_port to guess
    ["protocol_prot", member, "protocol_port"],
    ["colour", member, undefined],
    ["x", member, undefined],
    ["ip", member, undefined],
    ["keepalive", listener, "keepalive_timeout"],
    ["default_pool", listener, "default_pool_id"],
  ])("%s → %s", (key, known, expected) => {
    expect(nearestField(key, known)).toBe(expected);
  });
});

describe("unknown fields", () => {
  it("suggest the nearest known field and point at the README, never SPEC", () => {
    const [p, ...rest] = problems((c) => (c.loadbalancers[0].pools[0].lb_algoritm = "SOURCE_IP"));
    expect(rest).toEqual([]);
    expect(p).toEqual({ path: `${POOL}.lb_algoritm`, message: "unknown field; did you mean `lb_algorithm`? (README.md lists the fields)", code: "LB4.UNKNOWN_FIELD" });
  });

  it("list the fields of that object when nothing is close", () => {
    const [p] = problems((c) => (c.loadbalancers[0].pools[0].members[0].colour = "blue"));
    expect(p!.code).toBe("LB4.UNKNOWN_FIELD");
    expect(p!.message).toBe("unknown field; this object takes id, name, address, protocol_port, weight, instance_id, admin_state_up (README.md lists the fields)");
  });

  it("at the top level and inside a nullable object", () => {
    const ps = problems((c) => {
      c.loadbalancer = [];
      c.loadbalancers[0].pools[0].healthmonitor = { type: "HTTP", expected_code: "200" };
    });
    expect(ps.map((p) => [p.path, p.message.split(";")[1]!.trim()]).sort()).toEqual([
      ["loadbalancer", "did you mean `loadbalancers`? (README.md lists the fields)"],
      [`${POOL}.healthmonitor.expected_code`, "did you mean `expected_codes`? (README.md lists the fields)"],
    ].sort());
    expect(ps).toHaveLength(2);
    for (const p of ps) expect(p.message).not.toContain("SPEC");
  });
});

describe("every problem has a code", () => {
  it.each<[string, (c: any) => void, string, string]>([
    ["a range", (c) => (c.loadbalancers[0].pools[0].members[0].weight = 101), `${POOL}.members[0].weight`, "LB4.CONFIG_INVALID"],
    ["a missing field", (c) => delete c.loadbalancers[0].vip_address, "loadbalancers[0].vip_address", "LB4.CONFIG_INVALID"],
    ["a bad address", (c) => (c.loadbalancers[0].pools[0].members[0].address = "10.0.0.256"), `${POOL}.members[0].address`, "LB4.CONFIG_INVALID"],
    ["an unknown field", (c) => (c.loadbalancers[0].pools[0].lb_algo = "x"), `${POOL}.lb_algo`, "LB4.UNKNOWN_FIELD"],
    ["expected_codes (the prober's parser and code)", (c) => (c.loadbalancers[0].pools[0].healthmonitor = { type: "HTTP", expected_codes: "299-200" }), `${POOL}.healthmonitor.expected_codes`, "LB4.HEALTH_EXPECTED_CODES_INVALID"],
    ["an unknown pool", (c) => (c.loadbalancers[0].listeners[0].default_pool_id = "nope"), "loadbalancers[0].listeners[0].default_pool_id", "LB4.UNKNOWN_REFERENCE"],
    ["an unknown VPC", (c) => (c.loadbalancers[0].vpc_id = "vpc-x"), "loadbalancers[0].vpc_id", "LB4.UNKNOWN_REFERENCE"],
    ["a subnet without vpc_id", (c) => (c.loadbalancers[0].elb_virsubnet_ids = ["sn-1"]), "loadbalancers[0].elb_virsubnet_ids[0]", "LB4.UNKNOWN_REFERENCE"],
    ["a protocol mismatch", (c) => (c.loadbalancers[0].pools[0].protocol = "UDP"), "loadbalancers[0].listeners[0].default_pool_id", "LB4.PROTOCOL_MISMATCH"],
    ["a port used twice", (c) => c.loadbalancers[0].listeners.push({ id: "ls-2", protocol: "TCP", protocol_port: 8080, default_pool_id: "pool-1" }), "loadbalancers[0].listeners[1].protocol_port", "LB4.DUPLICATE_LISTENER"],
    ["persistence with SOURCE_IP", (c) => Object.assign(c.loadbalancers[0].pools[0], { lb_algorithm: "SOURCE_IP", session_persistence: { type: "SOURCE_IP" } }), `${POOL}.session_persistence`, "LB4.INVALID_COMBINATION"],
    ["slow start with LEAST_CONNECTIONS", (c) => Object.assign(c.loadbalancers[0].pools[0], { lb_algorithm: "LEAST_CONNECTIONS", slow_start: { enable: true } }), `${POOL}.slow_start.enable`, "LB4.INVALID_COMBINATION"],
    ["UDP_CONNECT on a TCP pool", (c) => (c.loadbalancers[0].pools[0].healthmonitor = { type: "UDP_CONNECT" }), `${POOL}.healthmonitor.type`, "LB4.INVALID_COMBINATION"],
    ["no token on a public admin address", (c) => (c.admin = { listen: "0.0.0.0:9870" }), "admin.token", "LB4.ADMIN_TOKEN_REQUIRED"],
    ["a duplicate id", (c) => c.loadbalancers[0].pools[0].members.push({ id: "m-1", address: "127.0.0.2", protocol_port: 9001 }), `${POOL}.members[1].id`, "LB4.DUPLICATE_ID"],
    ["a cross-VPC rule", (c) => Object.assign(c, { vpcs: [{ id: "v", cidrs: ["10.0.0.0/16"] }] }) && (c.loadbalancers[0].vpc_id = "v"), `${POOL}.members[0].address`, "LB4.CROSSVPC_NOT_ENABLED"],
  ])("%s", (_name, patch, path, code) => {
    const ps = problems(patch);
    expect(ps.find((p) => p.path === path), JSON.stringify(ps)).toMatchObject({ code });
    for (const p of ps) expect(p.code, `${p.path}: ${p.message}`).toMatch(/^LB4\.[A-Z0-9_]+$/);
  });
});

describe("printing", () => {
  it("formatProblem ends each line with its code", () => {
    expect(formatProblem({ path: "a.b", message: "must be x", code: "LB4.CONFIG_INVALID" })).toBe("a.b: must be x [LB4.CONFIG_INVALID]");
    expect(formatProblem({ path: "", message: "not valid JSON", code: "LB4.CONFIG_SYNTAX" })).toBe("not valid JSON [LB4.CONFIG_SYNTAX]");
    expect(formatProblem({ path: "member", message: "is required" })).toBe("member: is required");
  });

  it("a ConfigError gives a code to a problem that came without one and prints one line each", () => {
    const e = new ConfigError([
      { path: `${POOL}.lb_algorithm`, message: "must be ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP" },
      { path: `${POOL}.members[0].address`, message: "cross-VPC members must be IPv4", code: "LB4.CROSSVPC_IPV4_ONLY" },
    ]);
    expect(e.problems.map((p) => p.code)).toEqual(["LB4.CONFIG_INVALID", "LB4.CROSSVPC_IPV4_ONLY"]);
    expect(e.message.split("\n")).toEqual([
      "invalid configuration (2 problems):",
      `  - ${POOL}.lb_algorithm: must be ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP [LB4.CONFIG_INVALID]`,
      `  - ${POOL}.members[0].address: cross-VPC members must be IPv4 [LB4.CROSSVPC_IPV4_ONLY]`,
    ]);
  });

  it("the admin API keeps its reply codes: a plain schema problem is LB4.INVALID_REQUEST, a rule's code is kept, a reload says LB4.CONFIG_INVALID", () => {
    const schema = new ConfigError(problems((c) => (c.loadbalancers[0].pools[0].members[0].weight = 101)));
    expect([validationError(schema).status, validationError(schema).code]).toEqual([400, "LB4.INVALID_REQUEST"]);
    expect(validationError(schema, { conflicts: false, defaultCode: "LB4.CONFIG_INVALID" }).code).toBe("LB4.CONFIG_INVALID");
    const dup = new ConfigError(problems((c) => c.loadbalancers[0].pools[0].members.push({ id: "m-2", address: "127.0.0.1", protocol_port: 9001 })));
    expect([validationError(dup).status, validationError(dup).code]).toEqual([409, "LB4.DUPLICATE_MEMBER"]);
    const rule = new ConfigError(problems((c) => (c.loadbalancers[0].listeners[0].default_pool_id = "nope")));
    expect(validationError(rule, { conflicts: false, defaultCode: "LB4.CONFIG_INVALID" }).code).toBe("LB4.UNKNOWN_REFERENCE");
  });
});

describe("schemaProblems (a member change parsed alone)", () => {
  it("suggests from the sub-schema it is given, under the member's path", () => {
    const r = memberSchema.safeParse({ address: "127.0.0.1", protocol_port: 80, id: "m-1", wieght: 2 });
    expect(r.success).toBe(false);
    if (r.success) return;
    const at = ["loadbalancers", 0, "pools", 0, "members", 3];
    expect(schemaProblems(r.error, at, memberSchema)).toEqual([{ path: `${POOL}.members[3].wieght`, message: "unknown field; did you mean `weight`? (README.md lists the fields)", code: "LB4.UNKNOWN_FIELD" }]);
    expect(schemaProblems(r.error, at)[0]!.message).toBe("unknown field; README.md lists the fields");
  });
});
