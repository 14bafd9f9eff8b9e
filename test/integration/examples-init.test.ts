/**
 * The shipped configs: every file in examples/ validates with `lb4 validate --no-state`, the
 * systemd unit has what an operator relies on, and `lb4 init` writes a commented starter
 * that validates and never overwrites a file unless told to.
 */
import { readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { removeDir, runCli, tempDir } from "../helpers/lb4-child.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const examples = path.join(root, "examples");
/** The placeholders the examples use, as an operator would export them. */
const env = { LB4_ADMIN_TOKEN: "example-token-0123456789", HOSTNAME: "lb4-a", LB4_ADVERTISE: "10.0.0.31:9870" };

const configs = readdirSync(examples).filter((f) => /\.(ya?ml|json)$/.test(f));

describe("examples/", () => {
  it("holds the four configs (TCP web pool, UDP DNS, cross-VPC, cluster) and the systemd unit", () => {
    expect(configs.sort()).toEqual(["cluster.yaml", "cross-vpc.yaml", "tcp-web.yaml", "udp-dns.yaml"]);
    expect(readdirSync(examples)).toContain("lb4.service");
  });

  for (const file of configs) {
    it(`${file} validates`, async () => {
      const r = await runCli(["validate", "--no-state", "--config", path.join(examples, file)], env);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(": valid (");
    });
  }

  it("lb4.service: Type=simple, ExecStart lb4 start, ExecReload SIGHUP, KillSignal SIGTERM, TimeoutStopSec above the grace, hardening, LimitNOFILE", async () => {
    const text = await readFile(path.join(examples, "lb4.service"), "utf8");
    const keys = new Map<string, string[]>();
    let section = "";
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const s = /^\[(\w+)\]$/.exec(line);
      if (s) {
        section = s[1]!;
        continue;
      }
      const i = line.indexOf("=");
      expect(i, `not key=value: ${line}`).toBeGreaterThan(0);
      const k = `${section}.${line.slice(0, i)}`;
      keys.set(k, [...(keys.get(k) ?? []), line.slice(i + 1)]);
    }
    const one = (k: string) => keys.get(k)?.at(-1);
    expect(one("Service.Type")).toBe("simple");
    const start = one("Service.ExecStart")!;
    expect(start).toMatch(/\blb4 start --config \S+/);
    expect(keys.get("Service.ExecReload")).toContain("/bin/kill -HUP $MAINPID");
    expect(one("Service.KillSignal")).toBe("SIGTERM");
    const grace = Number(/--grace (\d+)/.exec(start)?.[1] ?? 10);
    // lb4 exits within grace + 2 s (SPEC §5); systemd must not SIGKILL it before that.
    expect(Number(one("Service.TimeoutStopSec"))).toBeGreaterThan(grace + 2);
    expect(Number(one("Service.LimitNOFILE"))).toBeGreaterThanOrEqual(65536);
    for (const k of ["NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictAddressFamilies"]) expect(keys.has(`Service.${k}`), k).toBe(true);
    expect(one("Service.User")).not.toBe("root");
    // V8's JIT needs writable executable memory: this option would kill lb4 at start.
    expect(one("Service.MemoryDenyWriteExecute") ?? "no").toBe("no");
    expect(one("Install.WantedBy")).toBe("multi-user.target");
  });
});

describe("lb4 init", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir("lb4-init-");
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it("prints a starter config with a comment for each block, on loopback, that validates", async () => {
    const r = await runCli(["init"]);
    expect(r.code).toBe(0);
    const text = r.stdout;
    const lines = text.split("\n");
    // Every top-level key and every list of listeners/pools/members comes after a comment.
    for (const key of ["admin:", "state_dir:", "log:", "loadbalancers:", "    listeners:", "    pools:", "        members:"]) {
      const i = lines.findIndex((l) => l.startsWith(key));
      expect(i, key).toBeGreaterThan(0);
      expect(lines.slice(Math.max(0, i - 3), i).some((l) => l.trim().startsWith("#")), `a comment before ${key}`).toBe(true);
    }
    expect(text).toContain("listen: 127.0.0.1:9870");
    expect(text).toContain("vip_address: 127.0.0.1");
    const file = path.join(dir, "starter.yaml");
    await writeFile(file, text);
    const v = await runCli(["validate", "--config", file]);
    expect(v.stderr).toBe("");
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("valid (1 load balancer(s), 1 listener(s), 1 pool(s), 2 member(s))");
  });

  it("--out writes the file; a second run refuses to overwrite it (exit 1, file untouched) unless --force", async () => {
    const file = path.join(dir, "lb4.yaml");
    const first = await runCli(["init", "--out", file]);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain(`wrote ${file}`);
    expect((await runCli(["validate", "--no-state", "--config", file])).code).toBe(0);

    await writeFile(file, "# mine\n");
    const again = await runCli(["init", "--out", file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already exists; pass --force");
    expect(again.stderr).toContain("LB4.FILE_EXISTS");
    expect(await readFile(file, "utf8")).toBe("# mine\n");

    const forced = await runCli(["init", "--out", file, "--force"]);
    expect(forced.code).toBe(0);
    expect(await readFile(file, "utf8")).toBe((await runCli(["init"])).stdout);
  });

  it("says why when the folder does not exist", async () => {
    const r = await runCli(["init", "--out", path.join(dir, "missing", "lb4.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ENOENT");
  });
});
