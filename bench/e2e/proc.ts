/**
 * Child processes of the end-to-end harness: every process is spawned in its own process
 * group, tracked, and killed (the whole group) on exit, SIGINT/SIGTERM or an error. Every
 * wait is bounded.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import dgram from "node:dgram";

const children = new Set<ChildProcess>();
let hooksInstalled = false;

/** Which CPU a process is pinned to; undefined = inherit (no taskset). */
export interface Pinning {
  proxyCpu: number | undefined;
  loadCpu: number | undefined;
  /**
   * A CPU list for the unpinned targets (all CPUs): the harness pins itself, so a child
   * spawned without taskset would inherit the load CPU. undefined when nothing is pinned.
   */
  allCpus: string | undefined;
  note: string;
}

/** A taskset CPU list: one CPU, or a list such as "0-1". */
export type CpuSpec = number | string | undefined;

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

export interface SpawnOpts {
  cpu?: CpuSpec;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** A file to send stdout to; "ignore" drops it; "pipe" keeps it on child.stdout. */
  stdout?: string | "ignore" | "pipe";
  stderr?: string | "ignore" | "pipe";
}

function sink(spec: string | undefined): "ignore" | "pipe" | number {
  if (spec === undefined || spec === "ignore") return "ignore";
  if (spec === "pipe") return "pipe";
  return fs.openSync(spec, "a");
}

/** Spawn a tracked child (optionally pinned with taskset) in its own process group. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOpts = {}): ChildProcess {
  installHooks();
  const [file, argv] = opts.cpu === undefined ? [cmd, args] : ["taskset", ["-c", String(opts.cpu), cmd, ...args]];
  const out = sink(opts.stdout);
  const err = sink(opts.stderr);
  const stdio: StdioOptions = ["ignore", out, err];
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio, detached: true });
  if (typeof out === "number") fs.closeSync(out);
  if (typeof err === "number") fs.closeSync(err);
  children.add(child);
  child.once("exit", () => children.delete(child));
  child.once("error", () => children.delete(child));
  return child;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Wait (bounded) for a child to exit. Resolves true if it exited. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

/** Stop a child: `signal` to its group, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 3000): Promise<void> {
  if (!exited(child)) {
    killGroup(child, signal);
    if (!(await waitExit(child, graceMs))) {
      killGroup(child, "SIGKILL");
      await waitExit(child, 2000);
    }
  }
  // The group may hold more processes than the leader (nginx workers): make sure.
  killGroup(child, "SIGKILL");
  children.delete(child);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, "SIGTERM", 2000)));
}

function killAllSync(): void {
  for (const c of children) killGroup(c, "SIGKILL");
  children.clear();
}

export function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\ne2e: ${sig}: stopping ${children.size} child process(es)\n`);
      void stopAll().finally(() => process.exit(130));
      setTimeout(() => {
        killAllSync();
        process.exit(130);
      }, 4000).unref();
    });
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Run a tool to completion (bounded by timeoutMs), capturing its output. */
export function runTool(cmd: string, args: string[], opts: { cpu?: CpuSpec; timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  const child = spawnTracked(cmd, args, { cpu: opts.cpu, cwd: opts.cwd, env: opts.env, stdout: "pipe", stderr: "pipe" });
  const started = performance.now();
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      void stopChild(child, "SIGTERM", 1000);
    }, opts.timeoutMs);
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, timedOut, ms: performance.now() - started });
    };
    child.once("error", (e) => {
      stderr += String(e);
      done(-1, null);
    });
    child.once("close", done);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port free for both TCP and UDP on 127.0.0.1 (bound, read back, released). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        const p = a && typeof a === "object" ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    const udpOk = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (udpOk) return port;
  }
  throw new Error("no free port");
}

/** Sockets (ss) listening/bound on 127.0.0.1:port. */
function boundCount(proto: "tcp" | "udp", port: number): number {
  const flag = proto === "tcp" ? "-Hltn" : "-Hlun";
  const r = spawnSync("ss", [flag, `sport = :${port}`], { encoding: "utf8", timeout: 3000 });
  if (r.status !== 0) return 0;
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

/** Established TCP connections with local port `port` (to find connections left open). */
export function establishedOn(port: number): number {
  const r = spawnSync("ss", ["-Htn", "state", "established", `sport = :${port}`], { encoding: "utf8", timeout: 3000 });
  if (r.status !== 0) return -1;
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

/**
 * Wait until something listens on port (checked with ss, so no probe connection reaches
 * the backend: iperf3 would take a probe for a test). Fails early if `child` exits.
 */
export async function waitListening(proto: "tcp" | "udp", port: number, timeoutMs: number, child?: ChildProcess, what = `port ${port}`): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && exited(child)) throw new Error(`${what}: process exited (code ${child.exitCode}, signal ${child.signalCode}) before listening`);
    if (boundCount(proto, port) > 0) return;
    await sleep(50);
  }
  throw new Error(`${what}: nothing listening on ${proto} ${port} after ${timeoutMs} ms`);
}

const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** user + system CPU, in clock ticks */
  ticks: number;
}

/** One line of /proc/PID/stat per process; empty where there is no /proc. */
function procStats(): ProcStat[] {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  const out: ProcStat[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
    } catch {
      continue;
    }
    // Fields after the ")" of comm: state(3) ppid(4) pgrp(5) ... utime(14) stime(15)
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({ pid: Number(e), ppid: Number(rest[1]), pgrp: Number(rest[2]), ticks: Number(rest[11]) + Number(rest[12]) });
  }
  return out;
}

/** CPU seconds (user+system) used so far by every process in process group `pgid`. */
export function groupCpuSeconds(pgid: number): number {
  const stats = procStats();
  if (stats.length === 0) return NaN;
  let ticks = 0;
  for (const p of stats) if (p.pgrp === pgid) ticks += p.ticks;
  return ticks / CLK_TCK;
}

/** CPU seconds (user+system) so far of each process in process group `pgid`, by pid. */
export function groupCpuByPid(pgid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of procStats()) if (p.pgrp === pgid) out.set(p.pid, p.ticks / CLK_TCK);
  return out;
}

/**
 * CPU seconds between two groupCpuByPid snapshots: of `leader`, and of every other process
 * (a process that started meanwhile counts from zero; one that exited meanwhile is lost).
 */
export function splitCpuSeconds(before: Map<number, number>, after: Map<number, number>, leader: number): { leader: number; others: number } {
  let l = 0;
  let o = 0;
  for (const [pid, s] of after) {
    const d = s - (before.get(pid) ?? 0);
    if (pid === leader) l += d;
    else o += d;
  }
  return { leader: l, others: o };
}

/** Pids whose parent is `pid`. */
export function childPids(pid: number): number[] {
  return procStats()
    .filter((p) => p.ppid === pid)
    .map((p) => p.pid);
}

/** A process's command line (NUL-separated arguments joined with spaces), or "" when gone. */
export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
}

/** The CPUs a process may run on (Cpus_allowed_list), or "?" when gone. */
export function cpusAllowed(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "?";
  } catch {
    return "?";
  }
}

/** Pin the current process (all threads) to one CPU. */
export function pinSelf(cpu: number): boolean {
  const r = spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(process.pid)], { stdio: "ignore", timeout: 3000 });
  return r.status === 0;
}

/**
 * CPU ticks of every process that is not this harness, one of its children's process
 * groups, or a kernel thread: a snapshot to tell how much CPU something else on the
 * machine used during a run (other people's benchmarks make figures noisy).
 */
export function foreignCpuSnapshot(): Map<number, number> {
  const procs = procStats();
  const ours = new Set<number>([process.pid]);
  for (const p of procs) if (p.ppid === process.pid) ours.add(p.pid);
  const out = new Map<number, number>();
  for (const p of procs) {
    if (ours.has(p.pid) || ours.has(p.pgrp) || p.pid === 2 || p.ppid === 2) continue;
    out.set(p.pid, p.ticks);
  }
  return out;
}

/** CPU seconds other processes used between two snapshots. */
export function foreignCpuSeconds(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks / CLK_TCK;
}
