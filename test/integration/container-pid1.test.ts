/**
 * The container contract (SPEC §13): lb4 as PID 1 of a fresh PID namespace (what `docker run`
 * gives it: no init, so no default signal handlers), the config from LB4_CONFIG or from
 * /etc/lb4/lb4.yaml, the Dockerfile's shape and health check, and an image build where
 * podman (or a docker daemon) and a local Node base image exist.
 *
 * PID 1 ignores every signal it has no handler for, so these tests fail if lb4 ever stops
 * installing its own SIGTERM/SIGINT/SIGHUP handlers. Signals are sent from the parent
 * namespace to the namespace's init, as the container runtime does.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LineClient, TOKEN, namedEcho, runCli, startLb4, tempDir, whoAnswers, writeConfig, killAll } from "../helpers/lb4-child.js";
import { freePort, waitFor, type TestServer } from "../helpers/net.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "bin/lb4");

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** Why PID-namespace tests cannot run here, or undefined when they can. */
function namespaceUnavailable(): string | undefined {
  if (process.platform !== "linux") return "PID namespaces are Linux only";
  if (!has("unshare")) return "unshare (util-linux) not installed";
  if (process.getuid?.() !== 0) return "needs root for unshare --pid";
  const r = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { encoding: "utf8" });
  if (r.status !== 0) return `unshare --pid --fork --mount-proc fails here: ${(r.stderr || r.error?.message || "").trim()}`;
  return undefined;
}
const nsSkip = namespaceUnavailable();

/** Why an overlay on /etc (to give the namespace an /etc/lb4 without touching the host's) cannot be mounted here. */
function overlayUnavailable(): string | undefined {
  if (nsSkip) return nsSkip;
  const dir = mkdtempSync(path.join(os.tmpdir(), "lb4-ovl-"));
  try {
    mkdirSync(path.join(dir, "up"));
    mkdirSync(path.join(dir, "work"));
    const r = spawnSync("unshare", ["--mount", "sh", "-c", `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/up,workdir=${dir}/work /etc`], { encoding: "utf8" });
    return r.status === 0 ? undefined : `cannot mount an overlay on /etc here: ${(r.stderr || "").trim()}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const overlaySkip = overlayUnavailable();

/** Processes whose parent is `ppid` (host pids). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${d}/status`, "utf8"));
      if (m && Number(m[1]) === ppid) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Every process (host pid and state letter) in the PID namespace `ns` (a /proc/<pid>/ns/pid link). */
function processesIn(ns: string): Array<{ pid: number; state: string }> {
  const out: Array<{ pid: number; state: string }> = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/pid`) !== ns) continue;
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      out.push({ pid: Number(d), state: stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

interface Pid1 {
  /** The unshare process (host side). */
  proc: ChildProcess;
  /** lb4's pid as seen from this (the parent) namespace; it is 1 inside its own. */
  hostPid: number;
  /** Its PID namespace. */
  ns: string;
  output(): string;
  exited: Promise<number | null>;
  signal(sig: NodeJS.Signals): void;
}

const running = new Set<Pid1>();

/**
 * `lb4 start ARGS` as PID 1 of a new PID (and mount) namespace. `prelude` runs first in the
 * namespace's shell, which then execs lb4 — so lb4 itself, not the shell, is PID 1.
 */
async function startAsPid1(args: string[], opts: { env?: Record<string, string>; cwd: string; prelude?: string }): Promise<Pid1> {
  const script = `${opts.prelude ?? ""}\nexec "$0" "$@"`;
  const proc = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-ec", script, process.execPath, bin, "start", ...args], {
    cwd: opts.cwd,
    env: { ...process.env, LB4_LOG_FORMAT: "json", LB4_CONFIG: "", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c));
  proc.stderr!.on("data", (c: Buffer) => (out += c));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) => proc.on("close", (c) => r((code = c))));
  await waitFor(() => out.includes('"ev":"start"') || code !== undefined, 15_000, "lb4 (PID 1) to log its start");
  if (code !== undefined) throw new Error(`lb4 exited (${code}) before starting:\n${out}`);
  const [hostPid] = childrenOf(proc.pid!);
  if (hostPid === undefined) throw new Error("cannot find the namespace's init process");
  const p: Pid1 = {
    proc,
    hostPid,
    ns: readlinkSync(`/proc/${hostPid}/ns/pid`),
    output: () => out,
    exited,
    signal: (sig) => process.kill(hostPid, sig),
  };
  running.add(p);
  void exited.then(() => running.delete(p));
  return p;
}

/** A config with an admin API (token) and one TCP listener in front of `members`. */
function lbConfig(listen: number, admin: number, members: Array<{ id: string; port: number }>, stateDir?: string): Record<string, unknown> {
  return {
    admin: { listen: `127.0.0.1:${admin}`, token: TOKEN },
    ...(stateDir !== undefined ? { state_dir: stateDir } : {}),
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: listen, default_pool_id: "pool-1" }],
        pools: [{ id: "pool-1", protocol: "TCP", members: members.map((m) => ({ id: m.id, address: "127.0.0.1", protocol_port: m.port })) }],
      },
    ],
  };
}

describe.skipIf(nsSkip !== undefined)(`lb4 as PID 1 in a fresh PID namespace${nsSkip ? ` (SKIPPED: ${nsSkip})` : ""}`, () => {
  let dir: string;
  const servers: TestServer[] = [];
  const clients: LineClient[] = [];
  beforeEach(async () => {
    dir = await tempDir("lb4-pid1-");
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const p of running) {
      try {
        process.kill(p.hostPid, "SIGKILL");
      } catch {
        // gone already
      }
      await p.exited;
    }
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it("serves from LB4_CONFIG (state_dir relative to the working directory); SIGTERM with an idle client open exits 0 after the grace period", async () => {
    const a = await namedEcho("a");
    servers.push(a);
    const [port, admin] = [await freePort(), await freePort()];
    const lb = await startAsPid1(["--grace", "1"], { cwd: dir, env: { LB4_CONFIG: stringify(lbConfig(port, admin, [{ id: "m-a", port: a.port }])) } });
    expect(lb.output()).toContain('"config":"$LB4_CONFIG"');
    // It is PID 1 in its namespace: the pid file it keeps under ./lb4-state says so.
    expect((await readFile(path.join(dir, "lb4-state", "lb4.pid"), "utf8")).trim()).toBe("1");

    const idle = await LineClient.open(port);
    clients.push(idle);
    expect(await idle.line()).toBe("a");
    await idle.echo("still here");

    lb.signal("SIGTERM");
    // Bounded by grace + 2 s (SPEC §5) and generous slack for a loaded machine.
    const code = await Promise.race([lb.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 10_000))]);
    expect(code).toBe(0);
    await waitFor(() => idle.closed, 2000, "the idle client to be closed");
    const access = lb.output().split("\n").filter((l) => l.includes('"ev":"tcp_conn"'));
    expect(access.map((l) => JSON.parse(l).end)).toEqual(["shutdown"]);
    // The pid file goes with the process.
    await expect(readFile(path.join(dir, "lb4-state", "lb4.pid"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("SIGINT stops it too, exit 0", async () => {
    const a = await namedEcho("a");
    servers.push(a);
    const [port, admin] = [await freePort(), await freePort()];
    const lb = await startAsPid1(["--grace", "1"], { cwd: dir, env: { LB4_CONFIG: stringify(lbConfig(port, admin, [{ id: "m-a", port: a.port }])) } });
    expect(await whoAnswers(port)).toBe("a");
    lb.signal("SIGINT");
    expect(await lb.exited).toBe(0);
    expect(lb.output()).toContain('"signal":"SIGINT"');
  });

  it.skipIf(overlaySkip !== undefined)(`reads /etc/lb4/lb4.yaml (a volume) without --config or LB4_CONFIG, and SIGHUP reloads it${overlaySkip ? ` (SKIPPED: ${overlaySkip})` : ""}`, async () => {
    const [a, b] = [await namedEcho("a"), await namedEcho("b")];
    servers.push(a, b);
    const [port, admin] = [await freePort(), await freePort()];
    const conf = path.join(dir, "conf");
    const state = path.join(dir, "state");
    await mkdir(conf);
    await mkdir(path.join(dir, "up"));
    await mkdir(path.join(dir, "work"));
    const file = path.join(conf, "lb4.yaml");
    await writeConfig(file, lbConfig(port, admin, [{ id: "m-a", port: a.port }], state));
    // An overlay gives this namespace an /etc/lb4 without touching the host's /etc; the
    // config folder is bind-mounted read-only there, as `docker run -v ./conf:/etc/lb4:ro` does.
    const prelude = [
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/up,workdir=${dir}/work /etc`,
      "mkdir -p /etc/lb4",
      `mount --bind ${conf} /etc/lb4`,
      "mount -o remount,bind,ro /etc/lb4",
    ].join("\n");
    const lb = await startAsPid1(["--grace", "1"], { cwd: dir, prelude });
    expect(lb.output()).toContain('"config":"/etc/lb4/lb4.yaml"');
    expect(await whoAnswers(port)).toBe("a");

    await writeConfig(file, lbConfig(port, admin, [{ id: "m-b", port: b.port }], state));
    lb.signal("SIGHUP");
    await waitFor(() => lb.output().includes('"ev":"reload"'), 10_000, "the reload log line");
    expect(await whoAnswers(port)).toBe("b");
    lb.signal("SIGTERM");
    expect(await lb.exited).toBe(0);
  });

  it("leaves no process behind: lb4 and its 2 workers are the namespace's processes, a killed worker is reaped and replaced, nothing remains after it exits", async () => {
    const a = await namedEcho("a");
    servers.push(a);
    const [port, admin] = [await freePort(), await freePort()];
    const lb = await startAsPid1(["--grace", "1", "--workers", "2"], { cwd: dir, env: { LB4_CONFIG: stringify(lbConfig(port, admin, [{ id: "m-a", port: a.port }])) } });
    expect(await whoAnswers(port)).toBe("a");
    const live = /^[RS]$/;
    const workers = childrenOf(lb.hostPid);
    expect(workers).toHaveLength(2);
    expect(processesIn(lb.ns).sort((x, y) => x.pid - y.pid)).toEqual([lb.hostPid, ...workers].sort((x, y) => x - y).map((pid) => ({ pid, state: expect.stringMatching(live) })));
    // PID 1 reaps a worker that dies (no zombie) and starts another.
    process.kill(workers[0]!, "SIGKILL");
    await waitFor(() => {
      const now = childrenOf(lb.hostPid);
      return now.length === 2 && !now.includes(workers[0]!) && processesIn(lb.ns).every((p) => live.test(p.state));
    }, 10_000, "the killed worker to be reaped and replaced");
    expect(processesIn(lb.ns)).toHaveLength(3);
    expect(await whoAnswers(port)).toBe("a");
    lb.signal("SIGTERM");
    expect(await lb.exited).toBe(0);
    expect(processesIn(lb.ns)).toEqual([]);
  });
});

describe("config source without --config", () => {
  it.skipIf(existsSync("/etc/lb4/lb4.yaml"))(
    `lb4 start with neither LB4_CONFIG nor /etc/lb4/lb4.yaml is a usage error (exit 2) that names all three ways${existsSync("/etc/lb4/lb4.yaml") ? " (SKIPPED: this machine has an /etc/lb4/lb4.yaml)" : ""}`,
    async () => {
      const r = await runCli(["start"], { LB4_CONFIG: "" });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("--config FILE");
      expect(r.stderr).toContain("LB4_CONFIG");
      expect(r.stderr).toContain("/etc/lb4/lb4.yaml");
    },
  );

  it("LB4_CONFIG that is not YAML names the variable; --config wins over LB4_CONFIG", async () => {
    const bad = await runCli(["validate"], { LB4_CONFIG: "loadbalancers: [" });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("the LB4_CONFIG environment variable is not valid YAML");
    const dir = await tempDir("lb4-src-");
    try {
      const file = path.join(dir, "lb4.yaml");
      await writeConfig(file, lbConfig(18_080, 19_870, []));
      const r = await runCli(["validate", "--config", file, "--no-state"], { LB4_CONFIG: "loadbalancers: [" });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${file}: valid`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The Dockerfile with continuation lines joined. */
async function dockerfile(): Promise<string[]> {
  return (await readFile(path.join(root, "Dockerfile"), "utf8")).replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}

describe("Dockerfile", () => {
  it("is a multi-stage build on a Node 20 slim base: npm ci + build, then npm ci --omit=dev, a non-root USER, HEALTHCHECK, STOPSIGNAL SIGTERM, entrypoint lb4 start", async () => {
    const lines = await dockerfile();
    const arg = lines.find((l) => l.startsWith("ARG NODE_IMAGE="))?.split("=")[1];
    expect(arg).toMatch(/^node:20(-bookworm)?-slim$/);
    const froms = lines.filter((l) => l.startsWith("FROM "));
    expect(froms).toHaveLength(2);
    const runtimeStart = lines.indexOf(froms[1]!);
    const build = lines.slice(0, runtimeStart);
    const runtime = lines.slice(runtimeStart);
    expect(build.some((l) => /^RUN npm ci\b/.test(l))).toBe(true);
    expect(build).toContain("RUN npm run build");
    expect(runtime.some((l) => /^RUN npm ci .*--omit=dev/.test(l))).toBe(true);
    expect(runtime.some((l) => /^COPY --from=build \S*dist/.test(l))).toBe(true);
    expect(runtime).toContain("COPY bin ./bin");
    const user = runtime.filter((l) => l.startsWith("USER ")).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(runtime).toContain("STOPSIGNAL SIGTERM");
    expect(runtime.some((l) => l.startsWith("HEALTHCHECK ") && l.includes("/healthz"))).toBe(true);
    expect(runtime.at(-1)).toBe('ENTRYPOINT ["lb4", "start"]');
  });

  it("its HEALTHCHECK command (node -e, no curl in slim images) passes against a running lb4 and fails when nothing answers", async () => {
    const hc = (await dockerfile()).find((l) => l.startsWith("HEALTHCHECK "))!;
    const cmd = JSON.parse(hc.slice(hc.indexOf("CMD ") + 4)) as string[];
    expect(cmd.slice(0, 2)).toEqual(["node", "-e"]);
    const check = (url: string) => spawnSync(process.execPath, ["-e", cmd[2]!], { env: { ...process.env, LB4_HEALTHCHECK_URL: url }, timeout: 10_000 }).status;

    const dir = await tempDir("lb4-hc-");
    const a = await namedEcho("a");
    try {
      const [port, admin] = [await freePort(), await freePort()];
      const file = path.join(dir, "lb4.yaml");
      await writeConfig(file, lbConfig(port, admin, [{ id: "m-a", port: a.port }], "./state"));
      const lb = await startLb4(file, admin);
      expect(check(`${lb.url}/healthz`)).toBe(0);
      await lb.stop();
      expect(check(`${lb.url}/healthz`)).toBe(1);
    } finally {
      await killAll();
      await a.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the runtime stage needs no dev dependency: dist/ imports only node: builtins and package.json dependencies", async () => {
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
    const bare = new Set<string>();
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".js")) {
          const text = readFileSync(p, "utf8");
          // Statements only (tsc puts each at the start of a line), not examples in comments.
          const specs = [
            ...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm),
            ...text.matchAll(/^import\s*["']([^"']+)["']/gm),
            ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
          ];
          for (const m of specs) if (!m[1]!.startsWith(".")) bare.add(m[1]!);
        }
      }
    };
    walk(path.join(root, "dist"));
    expect(bare.size).toBeGreaterThan(0);
    const packages = [...bare].map((s) => (s.startsWith("node:") ? s.slice(5) : s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!));
    expect(packages.filter((p) => !allowed.has(p))).toEqual([]);
  });
});

/** A container engine that can build here, and the reason when none can. */
function containerEngine(): { engine?: string; reason?: string } {
  for (const engine of ["podman", "docker"]) {
    if (!has(engine)) continue;
    if (spawnSync(engine, ["info"], { timeout: 20_000 }).status !== 0) continue;
    const base = /ARG NODE_IMAGE=(\S+)/.exec(readFileSync(path.join(root, "Dockerfile"), "utf8"))?.[1] ?? "node:20-bookworm-slim";
    if (spawnSync(engine, ["image", "inspect", base], { timeout: 20_000 }).status !== 0) {
      return { reason: `${engine} works but the base image ${base} is not available locally (no registry access here); \`${engine} pull ${base}\` first` };
    }
    return { engine };
  }
  return { reason: "neither podman nor a running docker daemon is available" };
}
const built = containerEngine();

describe.skipIf(built.engine === undefined)(`the image${built.reason ? ` (SKIPPED: ${built.reason})` : ""}`, () => {
  it("builds, and lb4 validate in it reads LB4_CONFIG", { timeout: 600_000 }, async () => {
    const engine = built.engine!;
    const tag = `lb4-test:${process.pid}`;
    const b = spawnSync(engine, ["build", "--pull=false", "-t", tag, root], { encoding: "utf8", timeout: 590_000 });
    expect(b.status, b.stderr).toBe(0);
    try {
      const cfg = stringify(lbConfig(8080, 9870, [{ id: "m-1", port: 9001 }]));
      const r = spawnSync(engine, ["run", "--rm", "--entrypoint", "lb4", "-e", `LB4_CONFIG=${cfg}`, tag, "validate", "--no-state"], { encoding: "utf8", timeout: 60_000 });
      expect(r.stdout).toContain("$LB4_CONFIG: valid");
      const who = spawnSync(engine, ["run", "--rm", "--entrypoint", "id", tag, "-u"], { encoding: "utf8", timeout: 60_000 });
      expect(who.stdout.trim()).not.toBe("0");
    } finally {
      spawnSync(engine, ["rmi", "-f", tag]);
    }
  });
});
