/**
 * The runtime-control CLI (`lb4 status`, `lb4 members …`) against a real `lb4 start` child,
 * and its exit codes: 0 ok, 1 refused / not found / unreachable, 2 usage error.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unsupportedFeatures } from "../../src/config/support.js";
import { parseConfig } from "../../src/config/validate.js";
import { freePort, waitFor, type TestServer } from "../helpers/net.js";
import { TOKEN, adminConfig, api, killAll, namedEcho, removeDir, runCli, startLb4, tempDir, whoAnswers, writeConfig, type Lb4Child } from "../helpers/lb4-child.js";

let dir: string;
let lb: Lb4Child;
let a: TestServer;
let b: TestServer;
let port: number;
let env: Record<string, string>;

const vpcs = [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "subnet-backend", cidr: "127.0.10.0/24", used_ips: 40 }] }];
const crossVpcLb = (p: number) => ({
  id: "lb-x",
  vpc_id: "vpc-a",
  vip_address: "127.0.0.1",
  elb_virsubnet_ids: ["subnet-backend"],
  ip_target_enable: true,
  listeners: [{ id: "ls-x", protocol: "TCP", protocol_port: p, default_pool_id: "pool-x" }],
  pools: [{ id: "pool-x", protocol: "TCP", members: [] }],
});
const crossVpcServed = unsupportedFeatures(parseConfig({ vpcs, loadbalancers: [crossVpcLb(1)] })).length === 0;

beforeAll(async () => {
  dir = await tempDir();
  a = await namedEcho("a");
  b = await namedEcho("b");
  port = await freePort();
  const [xPort, adminPort] = [await freePort(), await freePort()];
  const file = path.join(dir, "lb4.yaml");
  await writeConfig(
    file,
    adminConfig(
      adminPort,
      "./state",
      [
        {
          id: "lb-1",
          name: "web",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [
            {
              id: "pool-1",
              protocol: "TCP",
              healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 },
              members: [{ id: "m-a", name: "alpha", address: "127.0.0.1", protocol_port: a.port, weight: 2, instance_id: "ecs-a" }],
            },
          ],
        },
        ...(crossVpcServed ? [crossVpcLb(xPort)] : []),
      ],
      { vpcs },
    ),
  );
  lb = await startLb4(file, adminPort);
  env = { LB4_ADMIN_URL: lb.url, LB4_ADMIN_TOKEN: TOKEN };
  await waitFor(async () => (await api(lb.url, "GET", "/v3/elb/pools/pool-1/members/m-a")).body.member.operating_status === "ONLINE", 5000, "m-a ONLINE");
});

afterAll(async () => {
  await killAll();
  await a?.close();
  await b?.close();
  await removeDir(dir);
});

describe("lb4 status", () => {
  it("shows load balancers, listeners and the members table", async () => {
    const r = await runCli(["status"], env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Load balancer lb-1 (web)  vip 127.0.0.1");
    expect(r.stdout).toMatch(new RegExp(`ls-1\\s+TCP\\s+127\\.0\\.0\\.1:${port}\\s+pool-1\\s+0\\s+\\d+`));
    expect(r.stdout).toContain("Pool pool-1 (TCP, ROUND_ROBIN, health monitor pool-1-hm)  listeners: ls-1");
    expect(r.stdout).toMatch(/ID\s+NAME\s+ADDRESS\s+WEIGHT\s+EFFECTIVE\s+STATUS\s+ADMIN\s+ACTIVE\s+INSTANCE/);
    expect(r.stdout).toMatch(new RegExp(`m-a\\s+alpha\\s+127\\.0\\.0\\.1:${a.port}\\s+2\\s+2\\s+ONLINE\\s+up\\s+0\\s+ecs-a`));
  });

  it.skipIf(!crossVpcServed)(`shows the backend subnet CIDRs and source addresses of a cross-VPC load balancer${crossVpcServed ? "" : " (SKIPPED: ip_target_enable not served by this build yet)"}`, async () => {
    const r = await runCli(["status"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cross-VPC backends: on");
    expect(r.stdout).toMatch(/backend subnet CIDRs.*: 127\.0\.10\.0\/24/);
    expect(r.stdout).toContain("127.0.10.42, 127.0.10.43, 127.0.10.44, 127.0.10.45");
  });

  it("--json gives the nested objects", async () => {
    const r = await runCli(["status", "--json"], env);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.loadbalancers[0]).toMatchObject({ id: "lb-1", listeners: [{ id: "ls-1", protocol_port: port }], pools: [{ id: "pool-1", members: [{ id: "m-a", operating_status: "ONLINE" }] }] });
  });
});

describe("lb4 members", () => {
  it("add / list / set-weight / remove round trip, with traffic following", async () => {
    const add = await runCli(["members", "add", "--pool", "pool-1", "--address", "127.0.0.1", "--port", String(b.port), "--weight", "2", "--id", "m-b", "--name", "beta", "--instance-id", "ecs-b"], env);
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    expect(add.stdout).toContain(`added to pool pool-1: m-b 127.0.0.1:${b.port} weight 2`);
    await waitFor(async () => (await api(lb.url, "GET", "/v3/elb/pools/pool-1/members/m-b")).body.member.operating_status === "ONLINE", 5000, "m-b ONLINE");
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await whoAnswers(port));
    expect([...seen].sort()).toEqual(["a", "b"]);

    const list = await runCli(["members", "list", "--pool", "pool-1"], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`m-b\\s+beta\\s+127\\.0\\.0\\.1:${b.port}\\s+2\\s+2\\s+ONLINE\\s+up\\s+0\\s+ecs-b`));

    const zero = await runCli(["members", "set-weight", "--pool", "pool-1", "--id", "m-b", "--weight", "0"], env);
    expect(zero.code).toBe(0);
    expect(zero.stdout).toContain("m-b");
    expect(zero.stdout).toContain("weight 0, effective 0");
    const json = JSON.parse((await runCli(["members", "list", "--pool", "pool-1", "--json"], env)).stdout);
    expect(json.members.map((m: { id: string; weight: number }) => [m.id, m.weight])).toEqual([
      ["m-a", 2],
      ["m-b", 0],
    ]);
    for (let i = 0; i < 4; i++) expect(await whoAnswers(port)).toBe("a");

    const tooHeavy = await runCli(["members", "set-weight", "--pool", "pool-1", "--id", "m-b", "--weight", "101"], env);
    expect(tooHeavy.code).toBe(1);
    expect(tooHeavy.stderr).toContain("member.weight: must be an integer from 0 to 100");

    const rm = await runCli(["members", "remove", "--pool", "pool-1", "--id", "m-b"], env);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain("removed member m-b from pool pool-1");
    const after = await runCli(["members", "list", "--pool", "pool-1", "--json"], env);
    expect(JSON.parse(after.stdout).members.map((m: { id: string }) => m.id)).toEqual(["m-a"]);
    const again = await runCli(["members", "remove", "--pool", "pool-1", "--id", "m-b"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('member "m-b" does not exist');
  });

  it("usage errors exit 2; refusals and an unknown pool exit 1", async () => {
    const noSub = await runCli(["members"], env);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain("Usage: lb4 members");
    const noPort = await runCli(["members", "add", "--pool", "pool-1", "--address", "127.0.0.1"], env);
    expect(noPort.code).toBe(2);
    expect(noPort.stderr).toContain("--port");
    const notInt = await runCli(["members", "set-weight", "--pool", "pool-1", "--id", "m-a", "--weight", "heavy"], env);
    expect(notInt.code).toBe(2);
    expect(notInt.stderr).toContain('--weight: expected an integer, got "heavy"');
    const unknownPool = await runCli(["members", "list", "--pool", "nope"], env);
    expect(unknownPool.code).toBe(1);
    expect(unknownPool.stderr).toContain('pool "nope" does not exist');
    const dup = await runCli(["members", "add", "--pool", "pool-1", "--address", "127.0.0.1", "--port", String(a.port)], env);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain("LB4.DUPLICATE_MEMBER");
  });

  it("a missing or wrong token exits 1 and says how to pass one", async () => {
    const r = await runCli(["members", "list", "--pool", "pool-1", "--admin", lb.url, "--token", "wrong"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("HTTP 401");
    expect(r.stderr).toContain("--token or set LB4_ADMIN_TOKEN");
    const none = await runCli(["status", "--admin", lb.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("LB4.UNAUTHORIZED");
  });

  it("an unreachable admin API exits 1 with the reason and what to check", async () => {
    const closed = await freePort();
    for (const args of [["status"], ["members", "list", "--pool", "pool-1"], ["reload"], ["members", "find", "--address", "127.0.0.1"]]) {
      const r = await runCli([...args, "--admin", `http://127.0.0.1:${closed}`]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(`cannot reach the lb4 admin API at http://127.0.0.1:${closed} (ECONNREFUSED); is lb4 start running with admin.listen set?`);
    }
  });

  it("every command has --help with examples", async () => {
    for (const args of [["status"], ["reload"], ["members"], ["members", "list"], ["members", "add"], ["members", "remove"], ["members", "set-weight"], ["members", "find"]]) {
      const r = await runCli([...args, "--help"]);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout, args.join(" ")).toMatch(/Examples?:/);
      expect(r.stdout, args.join(" ")).toContain(`lb4 ${args.join(" ")}`);
    }
    expect((await runCli(["members", "add", "--help"])).stdout).toContain("--instance-id <id>");
    expect((await runCli(["members", "find", "--help"])).stdout).toContain("--config <file>");
    expect((await runCli(["--help"])).stdout).toMatch(/status[\s\S]*members[\s\S]*reload/);
  });
});
