/** `lb4 validate --json`: one machine-readable document whatever the outcome; exit codes as without it. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli, useChildFixture } from "../helpers/lb4-child.js";

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const fx = useChildFixture();

describe("lb4 validate --json", () => {
  it("a valid file: valid true, no problems, the summary and the state it used; exit 0", async () => {
    const file = path.join(fixtures, "valid.yaml");
    const r = await runCli(["validate", "--config", file, "--json", "--no-state"], { LB4_TEST_PORT: "18081", LB4_TEST_MEMBER_PORT: "9001" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      valid: true,
      file,
      problems: [],
      summary: { loadbalancers: 1, listeners: 1, pools: 1, members: 1 },
      state: expect.stringContaining("checked the file alone (--no-state)"),
      notes: [],
    });
  });

  it("a file with a cluster: block says where its load balancers really live (etcd), as a note", async () => {
    const file = path.resolve(fixtures, "../../examples/cluster.yaml");
    const r = await runCli(["validate", "--config", file, "--json", "--no-state"], { LB4_ADMIN_TOKEN: "t0123456789", HOSTNAME: "lb-1", LB4_ADVERTISE: "10.0.0.31:9870" });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(true);
    expect(out.notes).toEqual([{ path: "loadbalancers", code: "LB4.CLUSTER_STORE", message: expect.stringContaining("etcd holds the load balancers") }]);
  });

  it("an invalid file: valid false, every problem with path, message and code; exit 1; nothing on stderr", async () => {
    const file = path.join(fixtures, "invalid", "01-weight-and-port.yaml");
    const r = await runCli(["validate", "--config", file, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ valid: false, file, summary: null, state: expect.any(String) });
    expect(out.problems).toEqual(
      expect.arrayContaining([
        { path: "loadbalancers[0].listeners[0].protocol_port", message: "must be an integer from 1 to 65535", code: expect.stringMatching(/^LB4\./) },
        { path: "loadbalancers[0].pools[0].members[0].weight", message: "must be an integer from 0 to 100", code: expect.stringMatching(/^LB4\./) },
      ]),
    );
    for (const p of out.problems) expect(Object.keys(p).sort()).toEqual(["code", "message", "path"]);
  });

  it("a file that does not parse, or a corrupt state file, is one problem with its code; with state, `state` says which", async () => {
    const bad = path.join(fx.dir, "bad.yaml");
    await writeFile(bad, "loadbalancers: [\n");
    const r = await runCli(["validate", "--config", bad, "--json", "--no-state"]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(false);
    expect(out.problems).toHaveLength(1);
    expect(out.problems[0]).toMatchObject({ path: "", code: "LB4.CONFIG_SYNTAX" });

    const file = path.join(fx.dir, "lb4.yaml");
    await writeFile(file, "state_dir: ./st\nloadbalancers: []\n");
    const ok = JSON.parse((await runCli(["validate", "--config", file, "--json"])).stdout);
    expect(ok.state).toBe(`no runtime state in ${path.join(fx.dir, "st")}: the file alone decides`);
    await mkdir(path.join(fx.dir, "st"));
    await writeFile(path.join(fx.dir, "st", "state.json"), "{ not json");
    const corrupt = await runCli(["validate", "--config", file, "--json"]);
    expect(corrupt.code).toBe(1);
    expect(JSON.parse(corrupt.stdout)).toMatchObject({ valid: false, state: null, problems: [{ path: "", code: "LB4.STATE_CORRUPT" }] });
  });
});
