/**
 * `lb4 state reset`: refuses while lb4 runs (pid file, admin API), says what it forgets,
 * needs --yes without a terminal, deletes state.json and health.json, and the next start
 * runs the file alone.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { adminConfig, api, namedEcho, runCli, startLb4, useChildFixture, writeConfig } from "../helpers/lb4-child.js";
import { freePort, waitFor } from "../helpers/net.js";

const fx = useChildFixture();

function config(adminPort: number, port: number, memberPort: number): Record<string, unknown> {
  return {
    ...adminConfig(adminPort, "./state", [
      {
        id: "lb-x",
        vpc_id: "vpc-a",
        vip_address: "127.0.0.1",
        elb_virsubnet_ids: ["sn"],
        ip_target_enable: true,
        listeners: [{ id: "ls", protocol: "TCP", protocol_port: port, default_pool_id: "p" }],
        pools: [
          {
            id: "p",
            protocol: "TCP",
            healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 },
            members: [
              { id: "m-1", address: "127.0.0.1", protocol_port: memberPort },
              { id: "m-2", address: "127.0.0.1", protocol_port: memberPort + 1 },
            ],
          },
        ],
      },
    ]),
    vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "sn", cidr: "127.0.10.0/24", used_ips: 40 }] }],
  };
}

describe("lb4 state reset", () => {
  it("refuses while lb4 runs, says what it forgets, needs --yes without a terminal, and the next start has no runtime members", async () => {
    const a = await namedEcho("a");
    fx.servers.push(a);
    const [adminPort, port] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    const stateDir = path.join(fx.dir, "state");
    await writeConfig(file, config(adminPort, port, a.port));
    const lb = await startLb4(file, adminPort);
    expect((await api(lb.url, "POST", "/v3/elb/pools/p/members", { body: { member: { id: "x-9", address: "10.1.0.9", protocol_port: 80 } } })).status).toBe(201);
    expect((await api(lb.url, "DELETE", "/v3/elb/pools/p/members/m-2")).status).toBe(204);
    await waitFor(() => existsSync(path.join(stateDir, "health.json")), 10_000, "health.json");

    // Running: refused by its pid file, and still by its admin API when the pid file is gone.
    expect((await readFile(path.join(stateDir, "lb4.pid"), "utf8")).trim()).toBe(String(lb.proc.pid));
    const busy = await runCli(["state", "reset", "--config", file, "--yes"]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`lb4 (pid ${lb.proc.pid}) is running`);
    expect(busy.stderr).toContain("LB4.STATE_IN_USE");
    await rm(path.join(stateDir, "lb4.pid"));
    const busy2 = await runCli(["state", "reset", "--config", file, "--yes"]);
    expect(busy2.code).toBe(1);
    expect(busy2.stderr).toContain(`an lb4 answers on this config's admin API (http://127.0.0.1:${adminPort})`);
    expect(existsSync(path.join(stateDir, "state.json"))).toBe(true);

    expect(await lb.stop()).toBe(0);
    expect(existsSync(path.join(stateDir, "lb4.pid"))).toBe(false);

    // No terminal, no --yes: it says what it would forget and deletes nothing.
    const ask = await runCli(["state", "reset", "--config", file]);
    expect(ask.code).toBe(1);
    expect(ask.stdout).toContain("2 runtime member change(s)");
    expect(ask.stdout).toContain("pool p: 1 member(s) added or changed at runtime: x-9 (10.1.0.9:80)");
    expect(ask.stdout).toContain("pool p: 1 member(s) removed at runtime (they come back from the file): m-2");
    expect(ask.stdout).toContain("cross-VPC ever enabled on lb-x: WARNING");
    expect(ask.stdout).toMatch(/last known health of \d+ member\(s\)/);
    expect(ask.stderr).toContain("pass --yes");
    expect(ask.stderr).toContain("LB4.CONFIRM_NEEDED");
    expect(existsSync(path.join(stateDir, "state.json"))).toBe(true);

    // A pid file left by a process that is gone does not count.
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    await writeFile(path.join(stateDir, "lb4.pid"), `${dead}\n`);
    const reset = await runCli(["state", "reset", "--config", file, "--yes"]);
    expect(reset.stderr).toBe("");
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain(`reset ${stateDir}`);
    expect(existsSync(path.join(stateDir, "state.json"))).toBe(false);
    expect(existsSync(path.join(stateDir, "health.json"))).toBe(false);

    const again = await runCli(["state", "reset", "--config", file, "--yes"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to reset");

    const lb2 = await startLb4(file, adminPort);
    const members = (await api(lb2.url, "GET", "/v3/elb/pools/p/members")).body.members as Array<{ id: string }>;
    expect(members.map((m) => m.id).sort()).toEqual(["m-1", "m-2"]);
  });

  it("works on a config that does not validate (reset is how a bad runtime state is cleared)", async () => {
    const file = path.join(fx.dir, "lb4.yaml");
    await writeFile(file, "state_dir: ./st\nloadbalancers: [{ id: lb, vip_address: not-an-ip }]\n");
    await mkdir(path.join(fx.dir, "st"));
    await writeFile(path.join(fx.dir, "st", "state.json"), JSON.stringify({ version: 1, cross_vpc_enabled: [], members: { p: { upsert: {}, deleted: ["m-1"] } } }));
    const r = await runCli(["state", "reset", "--config", file, "--yes"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("pool p: 1 member(s) removed at runtime");
    expect(existsSync(path.join(fx.dir, "st", "state.json"))).toBe(false);
  });
});
