/**
 * The things traffic goes through: direct (nothing), lb4, the naive Node pipe proxy,
 * HAProxy (mode tcp) and nginx stream. Each is started with a generated config in a temp
 * directory, pinned to the proxy CPU (the multi-core targets: on every CPU), and stopped
 * (process group killed) afterwards.
 */
import fs from "node:fs";
import path from "node:path";
import http from "node:http";
import { spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { childPids, cmdline, cpusAllowed, freePort, hasCommand, runTool, sleep, spawnTracked, stopChild, waitListening, type CpuSpec } from "./proc.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/**
 * lb4 runs its default TCP data plane (handles where the probe passes); lb4-net forces
 * LB4_DATAPLANE=net. raw: a bare proxy script on the same handles without lb4's features
 * (`node SCRIPT LISTEN_PORT UPSTREAM_PORT`, from LB4_BENCH_RAW) for what lb4 adds; for UDP,
 * bench/e2e/udp-handles-proxy.mjs, the same on udp_wrap handles instead of dgram.
 * lb4 and lb4-net run one process (--workers 1); lb4-w2 runs a primary and 2 workers
 * (--workers 2) and haproxy-t2 runs nbthread 2, both unpinned, next to each other;
 * lb4-w1u (--workers 1, unpinned) tells what placement alone changes; lb4-w2-limit is lb4-w2
 * with a connection_limit never reached, so every connection asks the primary (claim, release).
 */
export const TARGETS = ["direct", "lb4", "lb4-net", "lb4-w1u", "lb4-w2", "lb4-w2-limit", "naive", "raw", "haproxy", "haproxy-t2", "nginx"] as const;
export type TargetName = (typeof TARGETS)[number];

/** lb4's --workers per lb4 target (1: everything in one process). */
export const LB4_WORKERS: Partial<Record<TargetName, number>> = { lb4: 1, "lb4-net": 1, "lb4-w1u": 1, "lb4-w2": 2, "lb4-w2-limit": 2 };
/** Targets that get every CPU instead of the proxy CPU: the multi-core ones (and lb4-w1u to compare with). */
export const UNPINNED: ReadonlySet<TargetName> = new Set<TargetName>(["lb4-w1u", "lb4-w2", "lb4-w2-limit", "haproxy-t2"]);
/** lb4-w2-limit's connection_limit: far above what the load opens, so it only adds the primary's bookkeeping. */
export const NEVER_REACHED_LIMIT = 1_000_000;

export function isLb4(name: TargetName): boolean {
  return LB4_WORKERS[name] !== undefined;
}
export type Proto = "tcp" | "udp";

export interface StartCtx {
  proto: Proto;
  upstreamPort: number;
  tmp: string;
  cpu: CpuSpec;
  /** Profile the lb4 child (node --cpu-prof) into this directory. */
  cpuProfDir?: string | undefined;
}

export interface Running {
  name: TargetName;
  port: number;
  /** Process group id to measure CPU time of; undefined for direct. */
  pgid: number | undefined;
  child: ChildProcess | undefined;
  /** lb4 only: the file its stdout (JSON log lines, access log) goes to. */
  logFile?: string;
  /** lb4 with workers: the pgid's leader is the primary, and these are its workers. */
  workerPids?: number[];
  notes: string[];
  stop(): Promise<void>;
}

export interface Availability {
  ok: boolean;
  reason?: string;
}

export function available(name: TargetName, proto: Proto): Availability {
  switch (name) {
    case "direct":
    case "lb4":
    case "lb4-net":
    case "lb4-w1u":
    case "lb4-w2":
    case "lb4-w2-limit":
    case "naive":
      return { ok: true };
    case "raw":
      if (proto === "udp") return { ok: true }; // bench/e2e/udp-handles-proxy.mjs
      return process.env.LB4_BENCH_RAW ? { ok: true } : { ok: false, reason: "set LB4_BENCH_RAW to the script" };
    case "haproxy":
    case "haproxy-t2":
      if (proto === "udp") return { ok: false, reason: "HAProxy 2.6 has no UDP proxying" };
      return hasCommand("haproxy") ? { ok: true } : { ok: false, reason: "haproxy not installed (use --install-peers)" };
    case "nginx":
      if (!hasCommand("nginx")) return { ok: false, reason: "nginx not installed (use --install-peers)" };
      if (!fs.existsSync(NGINX_STREAM_MODULE) && !nginxHasBuiltinStream())
        return { ok: false, reason: "nginx stream module missing (libnginx-mod-stream)" };
      return { ok: true };
  }
}

export const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
let builtinStream: boolean | undefined;
function nginxHasBuiltinStream(): boolean {
  if (builtinStream === undefined) {
    // nginx -V prints configure arguments on stderr; a static stream module shows as --with-stream (not =dynamic).
    const r = spawnSyncText("nginx", ["-V"]);
    builtinStream = /--with-stream(\s|$)/.test(r);
  }
  return builtinStream;
}

function spawnSyncText(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 5000 });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`;
}

export function nginxLoadModuleLine(): string {
  return fs.existsSync(NGINX_STREAM_MODULE) && !nginxHasBuiltinStream() ? `load_module ${NGINX_STREAM_MODULE};\n` : "";
}

/** Whether this build of lb4 accepts (validate) and serves (/metrics) an admin listener. */
export interface AdminSupport {
  accepted: boolean;
  detail: string;
}

let adminSupport: AdminSupport | undefined;

/** lb4 config: "all features on" (ipgroup whitelist, info log with access log, admin/metrics when supported). */
export function lb4Config(o: { proto: Proto; port: number; upstreamPort: number; stateDir: string; adminPort?: number | undefined; connectionLimit?: number }): object {
  const protocol = o.proto === "tcp" ? "TCP" : "UDP";
  return {
    ...(o.adminPort !== undefined ? { admin: { listen: `127.0.0.1:${o.adminPort}` } } : {}),
    state_dir: o.stateDir,
    log: { level: "info" },
    loadbalancers: [
      {
        id: "lb-bench",
        name: "bench",
        vip_address: "127.0.0.1",
        listeners: [
          {
            id: "ls-bench",
            protocol,
            protocol_port: o.port,
            default_pool_id: "pool-bench",
            keepalive_timeout: 300,
            connection_limit: o.connectionLimit ?? 0,
            ipgroup: { type: "white", ip_list: ["127.0.0.0/8"] },
          },
        ],
        pools: [
          {
            id: "pool-bench",
            protocol,
            lb_algorithm: "ROUND_ROBIN",
            members: [{ id: "m-1", name: "backend", address: "127.0.0.1", protocol_port: o.upstreamPort, weight: 1 }],
          },
        ],
      },
    ],
  };
}

/**
 * Does `lb4 validate` accept an `admin: { listen }` block without a "not supported" note?
 * (Checked once per harness run.)
 */
export async function checkAdminSupport(tmp: string): Promise<AdminSupport> {
  if (adminSupport) return adminSupport;
  const file = path.join(tmp, "lb4-admin-check.json");
  fs.writeFileSync(file, JSON.stringify(lb4Config({ proto: "tcp", port: 18080, upstreamPort: 18081, stateDir: path.join(tmp, "state-check"), adminPort: 18082 }), null, 2));
  const r = await runTool(process.execPath, [path.join(ROOT, "bin/lb4"), "validate", "--config", file], { timeoutMs: 20_000, cwd: ROOT });
  const out = `${r.stdout}${r.stderr}`.trim();
  if (r.code === 0 && !/note:.*admin/i.test(out)) adminSupport = { accepted: true, detail: "lb4 validate accepts admin.listen" };
  else adminSupport = { accepted: false, detail: `lb4 validate refused admin.listen (exit ${r.code}): ${out.split("\n").slice(0, 3).join(" | ")}` };
  return adminSupport;
}

function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

async function waitLogLine(file: string, re: RegExp, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      if (re.test(fs.readFileSync(file, "utf8"))) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let tail = "";
  try {
    tail = fs.readFileSync(file, "utf8").slice(-2000);
  } catch {
    /* none */
  }
  throw new Error(`lb4 did not start (exit ${child.exitCode}): ${tail}`);
}

/** Add the tail of a log file to the error of a failed start. */
export async function withLogTail<T>(p: Promise<T>, file: string): Promise<T> {
  try {
    return await p;
  } catch (e) {
    let tail = "";
    try {
      tail = fs.readFileSync(file, "utf8").trim().split("\n").slice(-3).join(" | ");
    } catch {
      /* no log */
    }
    throw new Error(`${(e as Error).message}${tail ? `: ${tail}` : ""}`);
  }
}

export async function startTarget(name: TargetName, ctx: StartCtx): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(ctx.tmp, `${name}-${ctx.proto}-`));
  if (name === "direct") {
    return { name, port: ctx.upstreamPort, pgid: undefined, child: undefined, notes: [], stop: async () => {} };
  }
  const port = await freePort();
  const notes: string[] = [];
  let child: ChildProcess;
  let logFile: string | undefined;
  let workerPids: number[] | undefined;

  const workers = LB4_WORKERS[name];
  if (workers !== undefined) {
    const admin = await checkAdminSupport(ctx.tmp);
    const adminPort = admin.accepted ? await freePort() : undefined;
    if (!admin.accepted) notes.push(`admin block left out: ${admin.detail}`);
    const cfgFile = path.join(dir, "lb4.json");
    fs.writeFileSync(cfgFile, JSON.stringify(lb4Config({ proto: ctx.proto, port, upstreamPort: ctx.upstreamPort, stateDir: path.join(dir, "state"), adminPort, ...(name === "lb4-w2-limit" ? { connectionLimit: NEVER_REACHED_LIMIT } : {}) }), null, 2));
    logFile = path.join(dir, "lb4.log");
    // The node flags `lb4` runs with when executed as a program (bin/lb4's exec line).
    const shimFlags = /exec node (.*?) "\$0"/.exec(fs.readFileSync(path.join(ROOT, "bin/lb4"), "utf8"))?.[1]?.split(" ") ?? [];
    const nodeArgs = [...shimFlags, ...(ctx.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${ctx.cpuProfDir}`] : [])];
    child = spawnTracked(process.execPath, [...nodeArgs, path.join(ROOT, "bin/lb4"), "start", "--config", cfgFile, "--grace", "1", "--workers", String(workers)], {
      cpu: ctx.cpu,
      cwd: dir,
      env: { ...process.env, LB4_LOG_FORMAT: "json", ...(name === "lb4-net" ? { LB4_DATAPLANE: "net" } : {}) },
      stdout: logFile,
      stderr: path.join(dir, "lb4.stderr"),
    });
    await waitLogLine(logFile, /"ev":"start"/, 15_000, child);
    const said = startLineWorkers(logFile);
    if (said !== workers) throw new Error(`lb4 started with workers ${said ?? "(not in its start line)"}, asked for ${workers}: a build from before --workers?`);
    await waitListening(ctx.proto, port, 5000, child, "lb4");
    if (workers >= 2) {
      workerPids = await waitWorkers(child.pid!, workers, 10_000);
      const w0 = workerPids[0]!;
      notes.push(
        `primary pid ${child.pid} (CPUs ${cpusAllowed(child.pid!)}), workers ${workerPids.map((p) => `${p} (CPUs ${cpusAllowed(p)})`).join(", ")}; worker command line: ${cmdline(w0).replace(ROOT, ".")}`,
      );
    }
    if (adminPort !== undefined) {
      const m = await httpGet(`http://127.0.0.1:${adminPort}/metrics`, 2000);
      if (m && m.status === 200) notes.push(`metrics served on admin 127.0.0.1:${adminPort}/metrics`);
      else notes.push(`admin.listen accepted by validate but /metrics not served (${m ? `HTTP ${m.status}` : "no answer"})`);
    }
  } else if (name === "naive") {
    child = spawnTracked(process.execPath, [path.join(ROOT, "bench/e2e/naive-proxy.mjs"), ctx.proto, String(port), String(ctx.upstreamPort)], {
      cpu: ctx.cpu,
      stdout: path.join(dir, "naive.log"),
      stderr: path.join(dir, "naive.log"),
    });
    await withLogTail(waitListening(ctx.proto, port, 10_000, child, "naive proxy"), path.join(dir, "naive.log"));
  } else if (name === "raw") {
    const script = ctx.proto === "udp" ? path.join(ROOT, "bench/e2e/udp-handles-proxy.mjs") : process.env.LB4_BENCH_RAW!;
    child = spawnTracked(process.execPath, [script, String(port), String(ctx.upstreamPort)], {
      cpu: ctx.cpu,
      env: { ...process.env, UBUF: "1", FASTCLOSE: "1" },
      stdout: path.join(dir, "raw.log"),
      stderr: path.join(dir, "raw.log"),
    });
    await withLogTail(waitListening(ctx.proto, port, 10_000, child, "raw proxy"), path.join(dir, "raw.log"));
  } else if (name === "haproxy" || name === "haproxy-t2") {
    const cfg = `global
  nbthread ${name === "haproxy-t2" ? 2 : 1}
  maxconn 8000
  pidfile ${dir}/haproxy.pid

defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s

frontend fe
  bind 127.0.0.1:${port}
  default_backend be

backend be
  server s1 127.0.0.1:${ctx.upstreamPort}
`;
    const cfgFile = path.join(dir, "haproxy.cfg");
    fs.writeFileSync(cfgFile, cfg);
    const logPath = path.join(dir, "haproxy.log");
    child = spawnTracked("haproxy", ["-db", "-f", cfgFile], { cpu: ctx.cpu, stdout: logPath, stderr: logPath });
    await withLogTail(waitListening("tcp", port, 10_000, child, "haproxy"), logPath);
  } else {
    const listen = ctx.proto === "udp" ? `127.0.0.1:${port} udp` : `127.0.0.1:${port}`;
    const cfg = `${nginxLoadModuleLine()}daemon off;
worker_processes 1;
worker_rlimit_nofile 200000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 100000; }
stream {
  server {
    listen ${listen};
    proxy_pass 127.0.0.1:${ctx.upstreamPort};
    proxy_connect_timeout 5s;
    proxy_timeout 300s;
  }
}
`;
    const cfgFile = path.join(dir, "nginx.conf");
    fs.writeFileSync(cfgFile, cfg);
    const errLog = path.join(dir, "error.log");
    child = spawnTracked("nginx", ["-p", dir, "-e", errLog, "-c", cfgFile], { cpu: ctx.cpu, stdout: errLog, stderr: errLog });
    await withLogTail(waitListening(ctx.proto, port, 10_000, child, "nginx stream"), errLog);
  }

  const c = child;
  return {
    name,
    port,
    pgid: c.pid,
    child: c,
    ...(logFile ? { logFile } : {}),
    ...(workerPids ? { workerPids } : {}),
    notes,
    // lb4: SIGTERM = graceful stop (--grace 1), which also lets --cpu-prof write its profile.
    stop: () => stopChild(c, "SIGTERM", isLb4(name) ? 8000 : 3000),
  };
}

/** The `workers` field of lb4's start line. */
function startLineWorkers(file: string): number | undefined {
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.includes('"ev":"start"')) continue;
    try {
      const w = (JSON.parse(line) as { workers?: unknown }).workers;
      return typeof w === "number" ? w : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Wait (bounded) until the lb4 primary `pid` has `n` worker processes; their pids. */
async function waitWorkers(pid: number, n: number, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let found: number[] = [];
  while (Date.now() < deadline) {
    found = childPids(pid).filter((p) => cmdline(p).includes("worker-main"));
    if (found.length >= n) return found.sort((a, b) => a - b);
    await sleep(50);
  }
  throw new Error(`lb4 primary ${pid} has ${found.length} worker process(es) after ${timeoutMs} ms, expected ${n}`);
}

/** Summary of an lb4 log file: access-log lines by end reason, warnings and errors. */
export function summariseLb4Log(file: string): { lines: number; accessLines: number; ends: Record<string, number>; warnOrWorse: number; samples: string[] } {
  const out = { lines: 0, accessLines: 0, ends: {} as Record<string, number>, warnOrWorse: 0, samples: [] as string[] };
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    if (!line) continue;
    out.lines++;
    let o: { level?: number; ev?: string; end?: string };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      out.warnOrWorse++;
      if (out.samples.length < 5) out.samples.push(line.slice(0, 300));
      continue;
    }
    if (o.ev === "tcp_conn" || o.ev === "udp_flow") {
      out.accessLines++;
      const e = o.end ?? "?";
      out.ends[e] = (out.ends[e] ?? 0) + 1;
    }
    if ((o.level ?? 0) >= 40) {
      out.warnOrWorse++;
      if (out.samples.length < 5) out.samples.push(line.slice(0, 300));
    }
  }
  return out;
}
