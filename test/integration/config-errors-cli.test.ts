/**
 * What `lb4 validate` and `lb4 start` print for a bad file, as a real child process (dist/):
 * each problem on its own line with its LB4.* code, a suggestion for a misspelt field, and
 * a clean message — never a stack trace — for hostile input.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import net from "node:net";
import { runCli, useChildFixture } from "../helpers/lb4-child.js";
import { freePort } from "../helpers/net.js";

const fx = useChildFixture();

function config(pool: Record<string, unknown> = {}, member: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: 18080, default_pool_id: "pool-1" }],
        pools: [{ id: "pool-1", protocol: "TCP", ...pool, members: [{ id: "m-1", address: "127.0.0.1", protocol_port: 9001, ...member }] }],
      },
    ],
  };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

async function file(name: string, text: string): Promise<string> {
  const f = path.join(fx.dir, name);
  await writeFile(f, text);
  return f;
}

describe("validation problems on the command line", () => {
  it.each(["validate", "start"])("lb4 %s prints each problem with its code and suggests the field a typo meant", async (cmd) => {
    const f = await file("lb4.json", JSON.stringify(config({ lb_algoritm: "SOURCE_IP" }, { weight: 101 })));
    const r = await runCli([cmd, "--config", f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("lb4: invalid configuration (2 problems):\n");
    expect(r.stderr).toContain("\n  - loadbalancers[0].pools[0].lb_algoritm: unknown field; did you mean `lb_algorithm`? (README.md lists the fields) [LB4.UNKNOWN_FIELD]\n");
    expect(r.stderr).toContain("\n  - loadbalancers[0].pools[0].members[0].weight: must be an integer from 0 to 100 [LB4.CONFIG_INVALID]");
    expect(r.stderr).not.toContain("SPEC");
  });

  it("a cross-field rule prints its own code", async () => {
    const f = await file("lb4.yaml", JSON.stringify(config({ lb_algorithm: "SOURCE_IP", session_persistence: { type: "SOURCE_IP" } })));
    const r = await runCli(["validate", "--config", f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("loadbalancers[0].pools[0].session_persistence: is not allowed with SOURCE_IP, which is sticky already; use ROUND_ROBIN or LEAST_CONNECTIONS, or remove it [LB4.INVALID_COMBINATION]");
  });
});

describe("hostile config files", () => {
  it.each([
    ["lb4.json", (port: number) => `{"__proto__": {"admin": {"listen": "127.0.0.1:${port}"}}, "loadbalancers": []}`],
    ["lb4.yaml", (port: number) => `__proto__:\n  admin: { listen: "127.0.0.1:${port}" }\nloadbalancers: []\n`],
  ])("%s with __proto__: validate and start refuse it by path and code; nothing listens", async (name, text) => {
    const port = await freePort();
    const f = await file(name, text(port));
    for (const cmd of ["validate", "start"]) {
      const r = await runCli([cmd, "--config", f]);
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain('  - __proto__: "__proto__" is not allowed as a field name; remove it [LB4.FORBIDDEN_KEY]');
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(await refused(port)).toBe(true);
  });
});


describe("a deeply nested config file (issue 12 item 3)", () => {
  it.each([
    ["deep.json", `{"loadbalancers": ${"[".repeat(1_999)}${"]".repeat(1_999)}}`, `  - loadbalancers${"[0]".repeat(31)}: nests deeper than 32 levels of objects and lists; lb4 needs 7 at most [LB4.CONFIG_TOO_DEEP]`],
    ["deep.yaml", `loadbalancers: ${"[".repeat(2_000)}${"]".repeat(2_000)}\n`, "nests too deep to read; lb4 accepts 32 levels of objects and lists [LB4.CONFIG_TOO_DEEP]"],
  ])("lb4 validate on a 2,000-deep %s exits 1 with one clean line and no stack trace", async (name, text, line) => {
    const f = await file(name, text);
    const r = await runCli(["validate", "--config", f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("lb4: invalid ");
    expect(r.stderr).toContain(line);
    expect(r.stderr).not.toContain("RangeError");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(2);
  });
});
