/**
 * The admin API against a real `lb4 start` child process (dist/ is built by `npm test`):
 * member changes reach traffic, refusals change nothing, acknowledged changes survive kill -9.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { unsupportedFeatures } from "../../src/config/support.js";
import { parseConfig } from "../../src/config/validate.js";
import { freePort, waitFor, type TestServer } from "../helpers/net.js";
import { useChildFixture, TOKEN, adminConfig, api, connectTo, namedEcho, startLb4, whoAnswers, writeConfig } from "../helpers/lb4-child.js";

const fx = useChildFixture();
const { servers, clients } = fx;

async function backend(name: string): Promise<TestServer> {
  const s = await namedEcho(name);
  servers.push(s);
  return s;
}

function tally(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

async function names(port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await whoAnswers(port));
  return out;
}

async function readState(): Promise<string> {
  try {
    return await readFile(path.join(fx.dir, "state", "state.json"), "utf8");
  } catch {
    return "";
  }
}

function lbWith(port: number, pools: unknown[], listenerPool = "pool-1"): unknown {
  return {
    id: "lb-1",
    vip_address: "127.0.0.1",
    listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: listenerPool }],
    pools,
  };
}

describe("member changes through the admin API reach traffic", () => {
  it("add → traffic reaches it; weight 0 → no new connections, open ones continue; DELETE → the open connection drains, then closes", async () => {
    const a = await backend("a");
    const b = await backend("b");
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, "./state", [
        lbWith(port, [{ id: "pool-1", protocol: "TCP", connection_drain: { enable: true, timeout: 10 }, members: [{ id: "m-a", address: "127.0.0.1", protocol_port: a.port }] }]),
      ]),
    );
    const lb = await startLb4(file, adminPort);
    expect(await names(port, 3)).toEqual(["a", "a", "a"]);

    const add = await api(lb.url, "POST", "/v3/elb/pools/pool-1/members", { body: { member: { id: "m-b", address: "127.0.0.1", protocol_port: b.port, weight: 1, instance_id: "ecs-b" } } });
    expect(add.status).toBe(201);
    expect(add.body.member).toMatchObject({
      id: "m-b",
      address: "127.0.0.1",
      protocol_port: b.port,
      weight: 1,
      admin_state_up: true,
      instance_id: "ecs-b",
      operating_status: "NO_MONITOR",
      pool_id: "pool-1",
      effective_weight: 1,
      active_connections: 0,
    });
    // Each worker process round-robins on its own (SPEC §10: weights are an instance-wide
    // proportion), so 6 connections split 3:3 in one process and within one per worker otherwise.
    const t = tally(await names(port, 6));
    expect(t.a! + t.b!).toBe(6);
    expect(Math.abs(t.a! - t.b!)).toBeLessThanOrEqual(2);

    // A long-lived connection on b.
    const long = await connectTo(port, "b");
    clients.push(long);
    await long.echo("hello");

    const zero = await api(lb.url, "PUT", "/v3/elb/pools/pool-1/members/m-b", { body: { member: { weight: 0 } } });
    expect(zero.status).toBe(200);
    expect(zero.body.member).toMatchObject({ id: "m-b", weight: 0, effective_weight: 0, active_connections: 1 });
    expect(await names(port, 6)).toEqual(["a", "a", "a", "a", "a", "a"]);
    await long.echo("still flowing at weight 0");

    // Back to 1 (ends the weight-0 drain clock), then delete: drain 10 s applies from now.
    expect((await api(lb.url, "PUT", "/v3/elb/pools/pool-1/members/m-b", { body: { member: { weight: 1 } } })).status).toBe(200);
    await long.echo("weight 1 again");
    const del = await api(lb.url, "DELETE", "/v3/elb/pools/pool-1/members/m-b");
    const deletedAt = Date.now();
    expect(del.status).toBe(204);
    expect(del.text).toBe("");
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-1/members/m-b")).status).toBe(404);
    const list = await api(lb.url, "GET", "/v3/elb/pools/pool-1/members");
    expect(list.body.members.map((m: { id: string }) => m.id)).toEqual(["m-a"]);
    expect(await names(port, 4)).toEqual(["a", "a", "a", "a"]);

    await new Promise((r) => setTimeout(r, 2000));
    await long.echo("draining, still flowing");
    await waitFor(() => long.closed, 16_000, "the drained connection to be closed");
    const after = Date.now() - deletedAt;
    expect(after).toBeGreaterThanOrEqual(9_500);
    expect(after).toBeLessThanOrEqual(14_000);
    await waitFor(() => lb.output().includes('"member_id":"m-b"') && /"member_id":"m-b"[^\n]*"end":"drained"/.test(lb.output()), 2000, "the access log to say drained");
  }, 30_000);
});

describe("refused requests change nothing", () => {
  it("each invalid request class gets its 4xx and leaves members and state.json as they were", async () => {
    const a = await backend("a");
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, "./state", [
        lbWith(port, [
          { id: "pool-1", protocol: "TCP", members: [{ id: "m-a", address: "127.0.0.1", protocol_port: a.port }] },
          { id: "pool-2", protocol: "TCP", members: [{ id: "m-x", address: "127.0.0.9", protocol_port: 9 }] },
        ]),
      ]),
    );
    const lb = await startLb4(file, adminPort);
    // One accepted change first, so state.json exists and must stay byte-identical.
    expect((await api(lb.url, "PUT", "/v3/elb/pools/pool-1/members/m-a", { body: { member: { weight: 2 } } })).status).toBe(200);

    const snapshot = async () => ({
      pool1: (await api(lb.url, "GET", "/v3/elb/pools/pool-1/members")).body,
      all: (await api(lb.url, "GET", "/v3/elb/members")).body,
      state: await readState(),
    });
    const before = await snapshot();
    expect(before.state).toContain('"weight": 2');
    const big = JSON.stringify({ member: { address: "127.0.0.1", protocol_port: 9, name: "x".repeat(70 * 1024) } });

    const cases: Array<{ name: string; method: string; path: string; opts: Parameters<typeof api>[3]; status: number; code: string; msg?: string[] }> = [
      { name: "malformed JSON", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { raw: '{"member": {"address": ' }, status: 400, code: "LB4.MALFORMED_JSON" },
      { name: "empty body", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { raw: "" }, status: 400, code: "LB4.EMPTY_BODY" },
      { name: "unknown pool", method: "POST", path: "/v3/elb/pools/nope/members", opts: { body: { member: { address: "127.0.0.1", protocol_port: 9 } } }, status: 404, code: "LB4.NOT_FOUND", msg: ["nope"] },
      { name: "weight 101 on create", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { address: "127.0.0.1", protocol_port: 9, weight: 101 } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.weight", "0 to 100"] },
      { name: "weight 101 on update", method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", opts: { body: { member: { weight: 101 } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.weight"] },
      { name: "weight of the wrong type", method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", opts: { body: { member: { weight: "5" } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.weight"] },
      { name: "not an IP address", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { address: "backend-1", protocol_port: 9 } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.address"] },
      { name: "missing port", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { address: "127.0.0.1" } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.protocol_port: is required"] },
      { name: "duplicate id (used in another pool)", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { id: "m-x", address: "127.0.0.1", protocol_port: 9 } } }, status: 409, code: "LB4.DUPLICATE_ID", msg: ["member.id", "m-x"] },
      { name: "duplicate id and a bad weight: the bad field decides (400)", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { id: "m-x", address: "127.0.0.1", protocol_port: 9, weight: 101 } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.weight"] },
      { name: "same address:port already in the pool", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { address: "127.0.0.1", protocol_port: a.port } } }, status: 409, code: "LB4.DUPLICATE_MEMBER", msg: ["m-a"] },
      { name: "no token", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { token: null, body: { member: { address: "127.0.0.1", protocol_port: 9 } } }, status: 401, code: "LB4.UNAUTHORIZED" },
      { name: "wrong token", method: "DELETE", path: "/v3/elb/pools/pool-1/members/m-a", opts: { token: `${TOKEN}x` }, status: 401, code: "LB4.UNAUTHORIZED" },
      { name: "wrong bearer token", method: "GET", path: "/v3/elb/pools", opts: { token: null, headers: { authorization: "Bearer nope" } }, status: 401, code: "LB4.UNAUTHORIZED" },
      { name: "body too large", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { raw: big }, status: 413, code: "LB4.BODY_TOO_LARGE" },
      { name: "unknown field on create", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { member: { address: "127.0.0.1", protocol_port: 9, colour: "blue" } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.colour"] },
      { name: "address on update", method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", opts: { body: { member: { weight: 3, address: "127.0.0.2" } } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member.address"] },
      { name: "body not wrapped in member", method: "POST", path: "/v3/elb/pools/pool-1/members", opts: { body: { address: "127.0.0.1", protocol_port: 9 } }, status: 400, code: "LB4.INVALID_REQUEST", msg: ["member: is required"] },
      { name: "unknown member on update", method: "PUT", path: "/v3/elb/pools/pool-1/members/m-404", opts: { body: { member: { weight: 3 } } }, status: 404, code: "LB4.NOT_FOUND" },
      { name: "unknown member on delete", method: "DELETE", path: "/v3/elb/pools/pool-1/members/m-404", opts: {}, status: 404, code: "LB4.NOT_FOUND" },
      { name: "member of another pool", method: "DELETE", path: "/v3/elb/pools/pool-1/members/m-x", opts: {}, status: 404, code: "LB4.NOT_FOUND" },
      { name: "unknown path", method: "GET", path: "/v3/elb/nothing", opts: {}, status: 404, code: "LB4.NOT_FOUND" },
      { name: "wrong method", method: "DELETE", path: "/v3/elb/pools/pool-1", opts: {}, status: 405, code: "LB4.METHOD_NOT_ALLOWED" },
      { name: "misspelt filter", method: "GET", path: "/v3/elb/members?adress=127.0.0.1", opts: {}, status: 400, code: "LB4.INVALID_REQUEST", msg: ["adress"] },
    ];
    for (const c of cases) {
      const r = await api(lb.url, c.method, c.path, c.opts);
      expect.soft({ case: c.name, status: r.status, code: r.body?.error_code }).toEqual({ case: c.name, status: c.status, code: c.code });
      expect.soft(typeof r.body?.error_msg, c.name).toBe("string");
      for (const m of c.msg ?? []) expect.soft(r.body?.error_msg, c.name).toContain(m);
      expect(await snapshot(), `state after "${c.name}"`).toEqual(before);
    }
    // The 405 names what is allowed; the 401 says how to authenticate.
    expect((await api(lb.url, "DELETE", "/v3/elb/pools/pool-1")).headers.get("allow")).toBe("GET, HEAD");
    expect((await api(lb.url, "GET", "/v3/elb/pools", { token: null })).headers.get("www-authenticate")).toContain("Bearer");
    // /healthz needs no token; Bearer works like X-Auth-Token.
    const hz = await api(lb.url, "GET", "/healthz", { token: null });
    expect([hz.status, hz.body]).toEqual([200, { status: "ok", dataplane: expect.stringMatching(/^(handles|net)$/) }]);
    expect((await api(lb.url, "GET", "/v3/elb/pools", { token: null, headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // The connection is still usable after a refusal (keep-alive), and traffic is untouched.
    expect(await whoAnswers(port)).toBe("a");
  });

  // Cross-VPC rule 2 through the API. Needs a build that serves ip_target_enable.
  const crossVpcConfig = {
    vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "subnet-backend", cidr: "127.0.10.0/24", used_ips: 40 }] }],
    loadbalancers: [
      {
        id: "lb-x",
        vpc_id: "vpc-a",
        vip_address: "127.0.0.1",
        elb_virsubnet_ids: ["subnet-backend"],
        ip_target_enable: true,
        listeners: [{ id: "ls-x", protocol: "TCP", protocol_port: 1, default_pool_id: "pool-x" }],
        pools: [{ id: "pool-x", protocol: "TCP", members: [{ id: "m-1", address: "127.0.0.1", protocol_port: 9 }] }],
      },
    ],
  };
  const crossVpcServed = unsupportedFeatures(parseConfig(crossVpcConfig)).length === 0;
  it.skipIf(!crossVpcServed)(
    `an IPv6 cross-VPC member is refused with 400 and changes nothing${crossVpcServed ? "" : " (SKIPPED: this build refuses ip_target_enable as not supported yet)"}`,
    async () => {
      const [port, adminPort] = [await freePort(), await freePort()];
      const file = path.join(fx.dir, "lb4.yaml");
      const lbCfg = { ...crossVpcConfig.loadbalancers[0]!, listeners: [{ id: "ls-x", protocol: "TCP", protocol_port: port, default_pool_id: "pool-x" }] };
      await writeConfig(file, adminConfig(adminPort, "./state", [lbCfg], { vpcs: crossVpcConfig.vpcs }));
      const lb = await startLb4(file, adminPort);

      const lbView = await api(lb.url, "GET", "/v3/elb/loadbalancers/lb-x");
      expect(lbView.status).toBe(200);
      expect(lbView.body.loadbalancer).toMatchObject({
        ip_target_enable: true,
        backend_subnet_cidrs: ["127.0.10.0/24"],
        source_addresses: ["127.0.10.42", "127.0.10.43", "127.0.10.44", "127.0.10.45"],
      });
      const before = (await api(lb.url, "GET", "/v3/elb/pools/pool-x/members")).body;
      const stateBefore = await readState();
      const r = await api(lb.url, "POST", "/v3/elb/pools/pool-x/members", { body: { member: { address: "fd00::5", protocol_port: 80 } } });
      expect(r.status).toBe(400);
      expect(r.body.error_code).toBe("LB4.CROSSVPC_IPV4_ONLY");
      expect(r.body.error_msg).toContain("member.address: cross-VPC members must be IPv4");
      expect((await api(lb.url, "GET", "/v3/elb/pools/pool-x/members")).body).toEqual(before);
      expect(await readState()).toBe(stateBefore);
      // An IPv4 cross-VPC member is fine, and shows as an IP-type member.
      const ok = await api(lb.url, "POST", "/v3/elb/pools/pool-x/members", { body: { member: { address: "10.1.2.3", protocol_port: 80 } } });
      expect(ok.status).toBe(201);
      expect(ok.body.member).toMatchObject({ address: "10.1.2.3", member_type: "ip" });
    },
  );
});

describe("acknowledged changes survive kill -9", () => {
  it("add, weight change and delete are each there after kill -9 right after the reply and a restart", async () => {
    const a = await backend("a");
    const b = await backend("b");
    const c = await backend("c");
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, "./state", [
        lbWith(port, [
          {
            id: "pool-1",
            protocol: "TCP",
            members: [
              { id: "m-a", address: "127.0.0.1", protocol_port: a.port },
              { id: "m-b", address: "127.0.0.1", protocol_port: b.port },
            ],
          },
        ]),
      ]),
    );
    const members = async (url: string) =>
      ((await api(url, "GET", "/v3/elb/pools/pool-1/members")).body.members as Array<{ id: string; weight: number; protocol_port: number }>).map((m) => ({
        id: m.id,
        weight: m.weight,
        port: m.protocol_port,
      }));

    let lb = await startLb4(file, adminPort);
    const added = await api(lb.url, "POST", "/v3/elb/pools/pool-1/members", { body: { member: { address: "127.0.0.1", protocol_port: c.port, weight: 3 } } });
    expect(added.status).toBe(201);
    const cId: string = added.body.member.id;
    expect(cId).toMatch(/^m-[0-9a-f]{8}$/);
    await lb.kill9();
    lb = await startLb4(file, adminPort);
    expect(await members(lb.url)).toEqual([
      { id: "m-a", weight: 1, port: a.port },
      { id: "m-b", weight: 1, port: b.port },
      { id: cId, weight: 3, port: c.port },
    ]);

    expect((await api(lb.url, "PUT", "/v3/elb/pools/pool-1/members/m-a", { body: { member: { weight: 7, name: "alpha" } } })).status).toBe(200);
    await lb.kill9();
    lb = await startLb4(file, adminPort);
    expect(await members(lb.url)).toEqual([
      { id: "m-a", weight: 7, port: a.port },
      { id: "m-b", weight: 1, port: b.port },
      { id: cId, weight: 3, port: c.port },
    ]);
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-1/members/m-a")).body.member.name).toBe("alpha");

    expect((await api(lb.url, "DELETE", "/v3/elb/pools/pool-1/members/m-b")).status).toBe(204);
    await lb.kill9();
    lb = await startLb4(file, adminPort);
    expect(await members(lb.url)).toEqual([
      { id: "m-a", weight: 7, port: a.port },
      { id: cId, weight: 3, port: c.port },
    ]);
    // And traffic follows the restored set: weights 7:3 over a cycle of 10.
    // Within one per worker of 7:3 (each worker round-robins on its own, SPEC §10).
    const t = tally(await names(port, 10));
    expect(t.a! + t.c!).toBe(10);
    expect(Math.abs(t.a! - 7)).toBeLessThanOrEqual(1);
  });
});
