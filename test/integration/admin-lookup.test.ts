/**
 * Reverse lookup (SPEC §8): one backend address used in 2 load balancers and 3 pools, found
 * by address and by instance_id through the admin API of a running lb4 (live health:
 * ONLINE, OFFLINE, NO_MONITOR) and offline from the config file with `lb4 members find --config`.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitFor, type TestServer } from "../helpers/net.js";
import { TOKEN, adminConfig, api, killAll, namedEcho, removeDir, runCli, startLb4, tempDir, writeConfig, type Lb4Child } from "../helpers/lb4-child.js";

const HOST = "127.0.0.7"; // the backend looked up (Linux routes all of 127/8 to lo)
const monitor = { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 };

let dir: string;
let file: string;
let lb: Lb4Child;
let backend: TestServer;
let other: TestServer;
let closedPort: number;

interface Row {
  loadbalancer_id: string;
  pool_id: string;
  listener_ids: string[];
  member_id: string;
  operating_status: string;
  weight: number;
  protocol_port: number;
  address: string;
  instance_id: string;
}

const summary = (rows: Row[]) =>
  rows.map((r) => ({ lb: r.loadbalancer_id, pool: r.pool_id, listeners: r.listener_ids, member: r.member_id, status: r.operating_status, weight: r.weight, port: r.protocol_port }));

function expected(status: { a1: string; a2: string; b1: string }) {
  return [
    { lb: "lb-a", pool: "pool-a1", listeners: ["ls-a1", "ls-a2"], member: "m-a1-7", status: status.a1, weight: 3, port: backend.port },
    { lb: "lb-a", pool: "pool-a2", listeners: ["ls-a3"], member: "m-a2-7", status: status.a2, weight: 1, port: closedPort },
    { lb: "lb-b", pool: "pool-b1", listeners: ["ls-b1"], member: "m-b1-7", status: status.b1, weight: 5, port: backend.port },
  ];
}

beforeAll(async () => {
  dir = await tempDir();
  backend = await namedEcho("seven", HOST);
  other = await namedEcho("one");
  closedPort = await freePort(HOST);
  const [p1, p2, p3, p4, adminPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  file = path.join(dir, "lb4.yaml");
  await writeConfig(
    file,
    adminConfig(adminPort, "./state", [
      {
        id: "lb-a",
        vip_address: "127.0.0.1",
        listeners: [
          { id: "ls-a1", protocol: "TCP", protocol_port: p1, default_pool_id: "pool-a1" },
          { id: "ls-a2", protocol: "TCP", protocol_port: p2, default_pool_id: "pool-a1" },
          { id: "ls-a3", protocol: "TCP", protocol_port: p3, default_pool_id: "pool-a2" },
        ],
        pools: [
          {
            id: "pool-a1",
            protocol: "TCP",
            healthmonitor: monitor,
            members: [
              { id: "m-a1-7", address: HOST, protocol_port: backend.port, weight: 3, instance_id: "ecs-7" },
              { id: "m-a1-1", address: "127.0.0.1", protocol_port: other.port, instance_id: "ecs-1" },
            ],
          },
          { id: "pool-a2", protocol: "TCP", healthmonitor: monitor, members: [{ id: "m-a2-7", address: HOST, protocol_port: closedPort, instance_id: "ecs-7" }] },
        ],
      },
      {
        id: "lb-b",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-b1", protocol: "TCP", protocol_port: p4, default_pool_id: "pool-b1" }],
        pools: [
          {
            id: "pool-b1",
            protocol: "TCP",
            members: [
              { id: "m-b1-7", address: HOST, protocol_port: backend.port, weight: 5, instance_id: "ecs-7" },
              { id: "m-b1-1", address: "127.0.0.1", protocol_port: other.port },
            ],
          },
        ],
      },
    ]),
  );
  lb = await startLb4(file, adminPort);
});

afterAll(async () => {
  await killAll();
  await backend?.close();
  await other?.close();
  await removeDir(dir);
});

describe("reverse lookup through the admin API", () => {
  it("by address: every membership with its LB, pool, listeners, live status, weight and port", async () => {
    const online = { a1: "ONLINE", a2: "OFFLINE", b1: "NO_MONITOR" };
    await waitFor(
      async () => JSON.stringify(summary((await api(lb.url, "GET", `/v3/elb/members?address=${HOST}`)).body.members)) === JSON.stringify(expected(online)),
      8000,
      "health checks to settle",
    );
    const r = await api(lb.url, "GET", `/v3/elb/members?address=${HOST}`);
    expect(r.status).toBe(200);
    expect(summary(r.body.members)).toEqual(expected(online));
    for (const m of r.body.members as Row[]) expect(m).toMatchObject({ address: HOST, instance_id: "ecs-7" });
  });

  it("by instance_id: the same memberships", async () => {
    const r = await api(lb.url, "GET", "/v3/elb/members?instance_id=ecs-7");
    expect(r.status).toBe(200);
    expect(summary(r.body.members)).toEqual(expected({ a1: "ONLINE", a2: "OFFLINE", b1: "NO_MONITOR" }));
  });

  it("the load balancers a backend is bound to", async () => {
    const ids = async (q: string) => ((await api(lb.url, "GET", `/v3/elb/loadbalancers?${q}`)).body.loadbalancers as Array<{ id: string }>).map((l) => l.id);
    expect(await ids(`member_address=${HOST}`)).toEqual(["lb-a", "lb-b"]);
    expect(await ids("member_device_id=ecs-7")).toEqual(["lb-a", "lb-b"]);
    expect(await ids("member_device_id=ecs-1")).toEqual(["lb-a"]);
    expect(await ids("member_address=10.9.9.9")).toEqual([]);
  });

  it("an unknown backend is an empty list; a malformed address is a 400", async () => {
    const none = await api(lb.url, "GET", "/v3/elb/members?address=10.9.9.9");
    expect([none.status, none.body]).toEqual([200, { members: [] }]);
    const bad = await api(lb.url, "GET", "/v3/elb/members?address=not-an-ip");
    expect(bad.status).toBe(400);
    expect(bad.body.error_msg).toContain("not-an-ip");
  });

  it("GET /metrics serves the Prometheus text (with the token), agreeing with the lookup", async () => {
    const m = await api(lb.url, "GET", "/metrics");
    expect(m.status).toBe(200);
    expect(m.headers.get("content-type")).toContain("text/plain");
    expect(m.text).toMatch(/lb4_member_up\{lb="lb-a",pool="pool-a2",member="m-a2-7",[^}]*\} 0/);
    expect(m.text).toMatch(/lb4_member_up\{lb="lb-a",pool="pool-a1",member="m-a1-7",[^}]*\} 1/);
    expect((await api(lb.url, "GET", "/metrics", { token: null })).status).toBe(401);
  });

  it("lb4 members find through the API (table and --json)", async () => {
    const env = { LB4_ADMIN_URL: lb.url, LB4_ADMIN_TOKEN: TOKEN };
    const json = await runCli(["members", "find", "--instance-id", "ecs-7", "--json"], env);
    expect(json.stderr).toBe("");
    expect(json.code).toBe(0);
    expect(summary(JSON.parse(json.stdout).members)).toEqual(expected({ a1: "ONLINE", a2: "OFFLINE", b1: "NO_MONITOR" }));
    const text = await runCli(["members", "find", "--address", HOST], env);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^LOADBALANCER\s+POOL\s+LISTENERS\s+MEMBER\s+ADDRESS\s+WEIGHT\s+STATUS\s+INSTANCE$/);
    expect(lines[1]).toMatch(new RegExp(`^lb-a\\s+pool-a1\\s+ls-a1,ls-a2\\s+m-a1-7\\s+${HOST}:${backend.port}\\s+3\\s+ONLINE\\s+ecs-7$`));
    expect(lines[2]).toMatch(new RegExp(`^lb-a\\s+pool-a2\\s+ls-a3\\s+m-a2-7\\s+${HOST}:${closedPort}\\s+1\\s+OFFLINE\\s+ecs-7$`));
    expect(lines[3]).toMatch(new RegExp(`^lb-b\\s+pool-b1\\s+ls-b1\\s+m-b1-7\\s+${HOST}:${backend.port}\\s+5\\s+NO_MONITOR\\s+ecs-7$`));
  });
});

describe("lb4 members find --config (offline, no running lb4 needed)", () => {
  const offline = { a1: "UNKNOWN", a2: "UNKNOWN", b1: "NO_MONITOR" };
  it("by address and by instance_id, from the file alone", async () => {
    // An admin URL where nothing listens proves the API is not used.
    const env = { LB4_ADMIN_URL: "http://127.0.0.1:1" };
    for (const args of [["--address", HOST], ["--instance-id", "ecs-7"]]) {
      const r = await runCli(["members", "find", ...args, "--config", file, "--json"], env);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(summary(JSON.parse(r.stdout).members)).toEqual(expected(offline));
    }
    const text = await runCli(["members", "find", "--instance-id", "ecs-7", "--config", file], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/lb-a\s+pool-a1\s+ls-a1,ls-a2\s+m-a1-7/);
    expect(text.stdout).toMatch(/lb-b\s+pool-b1\s+ls-b1\s+m-b1-7/);
  });

  it("works when the file's admin token comes from an environment variable this shell lacks", async () => {
    const text = await readFile(file, "utf8");
    const other = path.join(dir, "with-env.yaml");
    await writeFile(other, text.replace(TOKEN, "${LB4_TEST_UNSET_ADMIN_TOKEN}"));
    const r = await runCli(["members", "find", "--instance-id", "ecs-7", "--config", other, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).members).toHaveLength(3);
  });

  it("exit 1 when the backend is in no pool; exit 2 without --address or --instance-id", async () => {
    const none = await runCli(["members", "find", "--address", "10.9.9.9", "--config", file]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no pool has a member with address 10.9.9.9");
    const usage = await runCli(["members", "find", "--config", file]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("exactly one of --address");
  });
});
