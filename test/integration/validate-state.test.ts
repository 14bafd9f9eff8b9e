/**
 * `lb4 validate` applies the runtime state under state_dir as `lb4 start` does (issue 11):
 * the cross-VPC "ever enabled" fact and the member overlay; `--no-state` checks the file alone.
 */
import { describe, expect, it } from "vitest";
import path from "node:path";
import { freePort } from "../helpers/net.js";
import { adminConfig, api, runCli, startLb4, useChildFixture, writeConfig } from "../helpers/lb4-child.js";

const fx = useChildFixture();

function config(adminPort: number, port: number, crossVpc: boolean): Record<string, unknown> {
  return {
    ...adminConfig(adminPort, path.join(fx.dir, "state"), [
      {
        id: "lb-x",
        vpc_id: "vpc-a",
        vip_address: "127.0.0.1",
        elb_virsubnet_ids: ["sn"],
        ip_target_enable: crossVpc,
        listeners: [{ id: "ls", protocol: "TCP", protocol_port: port, default_pool_id: "p" }],
        pools: [{ id: "p", protocol: "TCP", members: [{ id: "x-1", address: "10.1.0.5", protocol_port: 80 }] }],
      },
    ]),
    vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "sn", cidr: "127.0.10.0/24", used_ips: 40 }] }],
  };
}

describe("lb4 validate with state_dir", () => {
  it("after a run with ip_target_enable: true, a file that turns it off fails validate as it fails start, with both codes; --no-state checks the file alone", async () => {
    const [adminPort, port] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(file, config(adminPort, port, true));
    const lb = await startLb4(file, adminPort);
    // A runtime member, to show the overlay is applied too.
    const add = await api(lb.url, "POST", "/v3/elb/pools/p/members", { body: { member: { id: "x-2", address: "10.1.0.6", protocol_port: 80 } } });
    expect(add.status).toBe(201);
    expect(await lb.stop()).toBe(0);

    const ok = await runCli(["validate", "--config", file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("2 member(s)");
    expect(ok.stdout).toMatch(/checked with the runtime state in .*state\.json: 1 member change\(s\); cross-VPC ever enabled on lb-x/);

    await writeConfig(file, config(adminPort, port, false));
    const bad = await runCli(["validate", "--config", file]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("loadbalancers[0].ip_target_enable");
    expect(bad.stderr).toContain("can never be disabled");
    expect(bad.stderr).toContain("LB4.CROSSVPC_CANNOT_DISABLE");
    expect(bad.stderr).toContain("LB4.CROSSVPC_NOT_ENABLED");

    const start = await runCli(["start", "--config", file]);
    expect(start.code).toBe(1);
    expect(start.stderr).toContain("LB4.CROSSVPC_CANNOT_DISABLE");

    const alone = await runCli(["validate", "--config", file, "--no-state"]);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain("LB4.CROSSVPC_NOT_ENABLED");
    expect(alone.stderr).not.toContain("LB4.CROSSVPC_CANNOT_DISABLE");
  });

  it("a problem in a runtime-added member names the member id and says it comes from state_dir", async () => {
    const [adminPort, port] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    const cfg = config(adminPort, port, true);
    await writeConfig(file, cfg);
    const lb = await startLb4(file, adminPort);
    expect((await api(lb.url, "POST", "/v3/elb/pools/p/members", { body: { member: { id: "x-2", address: "10.1.0.6", protocol_port: 80 } } })).status).toBe(201);
    expect(await lb.stop()).toBe(0);

    // The file now holds the same address:port under another id: the runtime member collides.
    const lbs = cfg.loadbalancers as Array<{ pools: Array<{ members: unknown[] }> }>;
    lbs[0]!.pools[0]!.members.push({ id: "x-9", address: "10.1.0.6", protocol_port: 80 });
    await writeConfig(file, cfg);
    const r = await runCli(["validate", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pool "p" member "x-2"\.address: .*added or changed at runtime and is stored in .*state\.json/);
    expect(r.stderr).not.toMatch(/members\[2\]/);
  });
});
