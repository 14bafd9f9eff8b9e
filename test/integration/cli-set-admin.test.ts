/** `lb4 members set-admin --pool P --id M up|down` against a real `lb4 start` child. */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TOKEN, adminConfig, api, namedEcho, runCli, startLb4, useChildFixture, whoAnswers, writeConfig } from "../helpers/lb4-child.js";
import { freePort } from "../helpers/net.js";

const fx = useChildFixture();

describe("lb4 members set-admin", () => {
  it("down takes a member out of rotation through the API, up brings it back; both persisted; usage and unknown ids are errors", async () => {
    const [a, b] = [await namedEcho("a"), await namedEcho("b")];
    fx.servers.push(a, b);
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, "./state", [
        {
          id: "lb-1",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [
            {
              id: "pool-1",
              protocol: "TCP",
              members: [
                { id: "m-a", address: "127.0.0.1", protocol_port: a.port },
                { id: "m-b", address: "127.0.0.1", protocol_port: b.port },
              ],
            },
          ],
        },
      ]),
    );
    const lb = await startLb4(file, adminPort);
    const env = { LB4_ADMIN_URL: lb.url, LB4_ADMIN_TOKEN: TOKEN };

    const down = await runCli(["members", "set-admin", "--pool", "pool-1", "--id", "m-a", "down"], env);
    expect(down.stderr).toBe("");
    expect(down.code).toBe(0);
    expect(down.stdout).toContain("pool pool-1: m-a");
    expect(down.stdout).toContain("admin down");
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-1/members/m-a")).body.member).toMatchObject({ admin_state_up: false, effective_weight: 0 });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await whoAnswers(port));
    expect(answers).toEqual(["b", "b", "b", "b"]);

    const json = await runCli(["members", "set-admin", "--pool", "pool-1", "--id", "m-a", "up", "--json"], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).member).toMatchObject({ id: "m-a", admin_state_up: true });
    const after = new Set<string>();
    for (let i = 0; i < 4; i++) after.add(await whoAnswers(port));
    expect([...after].sort()).toEqual(["a", "b"]);

    // Persisted like every member change: a restart keeps it.
    expect((await runCli(["members", "set-admin", "--pool", "pool-1", "--id", "m-b", "down"], env)).code).toBe(0);
    expect(await lb.stop()).toBe(0);
    const again = await startLb4(file, adminPort);
    expect((await api(again.url, "GET", "/v3/elb/pools/pool-1/members/m-b")).body.member.admin_state_up).toBe(false);

    const bad = await runCli(["members", "set-admin", "--pool", "pool-1", "--id", "m-a", "sideways"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("up, down");
    const missing = await runCli(["members", "set-admin", "--pool", "pool-1", "--id", "m-zz", "down"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("LB4.NOT_FOUND");
    const noState = await runCli(["members", "set-admin", "--pool", "pool-1", "--id", "m-a"], env);
    expect(noState.code).toBe(2);
  });
});
