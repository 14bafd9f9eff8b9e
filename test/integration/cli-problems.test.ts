/**
 * The CLI's rendering of an admin API refusal that lists validation problems (`lb4 reload`
 * of an invalid file, `lb4 members add` of a bad member): one problem per line with its
 * path, message and code, not the API's error_msg with every problem on one line.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.js";
import { useChildFixture, TOKEN, adminConfig, api, namedEcho, runCli, startLb4, writeConfig } from "../helpers/lb4-child.js";

const fx = useChildFixture();

interface ApiProblem {
  path: string;
  message: string;
  code?: string;
}

const line = (p: ApiProblem) => `  - ${p.path ? `${p.path}: ` : ""}${p.message}${p.code ? ` [${p.code}]` : ""}`;

/**
 * A config with `n` members; `broken` gives them all one id and one address:port, so each
 * member after the first breaks two coded rules (duplicate id, duplicate member).
 */
function config(adminPort: number, port: number, memberPort: number, n: number, broken: boolean): Record<string, unknown> {
  return adminConfig(adminPort, "./state", [
    {
      id: "lb-1",
      vip_address: "127.0.0.1",
      listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
      pools: [
        {
          id: "pool-1",
          protocol: "TCP",
          members: Array.from({ length: n }, (_, i) => ({
            id: broken ? "m-dup" : `m-${i}`,
            address: "127.0.0.1",
            protocol_port: broken ? memberPort : memberPort + i,
          })),
        },
      ],
    },
  ]);
}

describe("CLI: admin API validation problems", () => {
  it("lb4 reload of a file with 300 problems exits 1 and prints one line per problem, each with its path, message and code", async () => {
    const a = await namedEcho("a");
    fx.servers.push(a);
    const [adminPort, port] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(file, config(adminPort, port, a.port, 1, false));
    const lb = await startLb4(file, adminPort);
    await writeConfig(file, config(adminPort, port, a.port, 151, true));

    // What the API reports is what the CLI must print, problem by problem.
    const reply = await api(lb.url, "POST", "/v3/elb/reload");
    expect(reply.status).toBe(400);
    const problems = reply.body.problems as ApiProblem[];
    expect(problems).toHaveLength(300);
    expect(problems.filter((p) => p.code === "LB4.DUPLICATE_ID")).toHaveLength(150);
    expect(problems.filter((p) => p.code === "LB4.DUPLICATE_MEMBER")).toHaveLength(150);

    const r = await runCli(["reload", "--admin", lb.url, "--token", TOKEN]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(
      `lb4: POST /v3/elb/reload refused (HTTP 400) [${reply.body.error_code}]: reload refused, the running configuration stays; invalid configuration file (300 problems):`,
    );
    expect(lines.slice(1)).toEqual(problems.map(line));
    expect(lines).toHaveLength(301);
    expect(lines[1]).toMatch(/^ {2}- loadbalancers\[0\]\.pools\[0\]\.members\[1\]\.\w+: .+ \[LB4\.DUPLICATE_(ID|MEMBER)\]$/);
  });

  it("lb4 members add with two bad fields exits 1 and prints each problem on its own line", async () => {
    const a = await namedEcho("a");
    fx.servers.push(a);
    const [adminPort, port] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(file, config(adminPort, port, a.port, 1, false));
    const lb = await startLb4(file, adminPort);
    const body = { member: { address: "127.0.0.1", protocol_port: 0, weight: 101 } };
    const reply = await api(lb.url, "POST", "/v3/elb/pools/pool-1/members", { body });
    expect(reply.status).toBe(400);
    const problems = reply.body.problems as ApiProblem[];
    expect(problems.map((p) => p.path).sort()).toEqual(["member.protocol_port", "member.weight"]);

    const r = await runCli(["members", "add", "--pool", "pool-1", "--address", "127.0.0.1", "--port", "0", "--weight", "101", "--admin", lb.url, "--token", TOKEN]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^lb4: POST /v3/elb/pools/pool-1/members refused \\(HTTP 400\\) \\[${reply.body.error_code}\\]: .*:$`));
    expect(lines.slice(1)).toEqual(problems.map(line));
  });
});
