/**
 * End-to-end benchmark (npm run bench:e2e): loopback only, bounded in time.
 *
 * Workloads: bulk TCP throughput (iperf3 -P 1 and -P 8), HTTP keep-alive request rate and
 * latency (wrk, nginx backend), new-connection rate (wrk, "Connection: close"), UDP
 * request/response (8 flows × 16 in flight, 64-byte payloads). Targets, in the same
 * session, interleaved per repetition: direct (no proxy), lb4 ("all features on", one
 * process: --workers 1), a naive Node pipe proxy, HAProxy (mode tcp, nbthread 1) and nginx
 * stream (worker_processes 1) when installed. The proxy runs on CPU 0, backends and load
 * generators (and this harness) on CPU 1. Multi-core targets, unpinned (every CPU) under
 * the same load: lb4-w2 (--workers 2: a primary and 2 workers) and haproxy-t2 (nbthread 2).
 * For lb4-w2 the primary's CPU and the workers' CPU per unit are reported apart; lb4-w1u
 * (--workers 1, unpinned) separates what placement changes from what a second worker does;
 * lb4-w2-limit adds a connection_limit never reached (each connection asks the primary).
 *
 *   node --import tsx bench/e2e.ts [--quick] [--reps N] [--duration S] [--only w1,w2]
 *        [--targets direct,lb4,lb4-net,lb4-w2,haproxy-t2,raw,...] [--install-peers] [--cpu-prof WORKLOAD]
 *        [--quiet-wait S] [--out FILE]
 *
 * --cpu-prof W: one extra lb4 run of workload W under node --cpu-prof (not in the table);
 *   the profile goes to bench/results/ and its top self-time functions are printed.
 * --quiet-wait S: before each measured run, wait up to S s for other processes on the
 *   machine to go quiet (< 20% of a core). Every run records how much CPU others used.
 *
 * Prints a Markdown table (medians over the repetitions, ratios vs direct, HAProxy and
 * nginx) and writes bench/results/e2e-<timestamp>.json.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { hasCommand, installHooks, groupCpuByPid, groupCpuSeconds, establishedOn, exited, foreignCpuSeconds, foreignCpuSnapshot, pinSelf, runTool, sleep, splitCpuSeconds, stopAll, type Pinning } from "./e2e/proc.js";
import { LB4_WORKERS, ROOT, TARGETS, UNPINNED, available, checkAdminSupport, isLb4, startTarget, summariseLb4Log, type Proto, type Running, type TargetName } from "./e2e/targets.js";
import { startBulkBackend, startHttpBackend, startUdpEcho, type Backend } from "./e2e/backends.js";
import { SkipError, runBulkNode, runIperf, runUdp, runWrk, udpRrAvailable, type Sample } from "./e2e/load.js";
import { machineInfo } from "./e2e/machine.js";
import { topSelfTime } from "./e2e/profile.js";

const WORKLOADS = ["bulk-1", "bulk-8", "http-keepalive", "http-newconn", "udp-rr"] as const;
type WorkloadId = (typeof WORKLOADS)[number];

const HTTP_CONNECTIONS = 50;
const UDP = { flows: 8, inflight: 16, payloadBytes: 64 };

interface Workload {
  id: WorkloadId;
  title: string;
  unit: string;
  proto: Proto;
  hasLatency: boolean;
  /** Why it cannot run here, or undefined. */
  missing(): string | undefined;
  startBackend(tmp: string, cpu: number | undefined): Promise<Backend>;
  run(port: number, durationS: number, cpu: number | undefined): Promise<Sample>;
}

let bulkTool: "iperf3" | "node" = hasCommand("iperf3") ? "iperf3" : "node";

function bulk(id: WorkloadId, streams: number): Workload {
  return {
    id,
    title: `bulk TCP, ${streams} stream${streams > 1 ? "s" : ""}`,
    unit: "Gbit/s",
    proto: "tcp",
    hasLatency: false,
    missing: () => undefined,
    startBackend: async (tmp, cpu) => {
      const b = await startBulkBackend(tmp, cpu);
      bulkTool = b.tool;
      return b;
    },
    run: (port, durationS, cpu) => (bulkTool === "iperf3" ? runIperf({ port, streams, durationS, cpu }) : runBulkNode({ port, streams, durationS, cpu })),
  };
}

function http(id: WorkloadId, close: boolean): Workload {
  return {
    id,
    title: close ? `new connections (1 request/conn, wrk -c${HTTP_CONNECTIONS})` : `HTTP keep-alive (wrk -c${HTTP_CONNECTIONS})`,
    unit: close ? "conn/s" : "req/s",
    proto: "tcp",
    hasLatency: true,
    missing: () => (hasCommand("wrk") ? undefined : "wrk not installed (use --install-peers)"),
    startBackend: startHttpBackend,
    run: (port, durationS, cpu) => runWrk({ port, connections: HTTP_CONNECTIONS, durationS, close, cpu }),
  };
}

const ALL_WORKLOADS: Record<WorkloadId, Workload> = {
  "bulk-1": bulk("bulk-1", 1),
  "bulk-8": bulk("bulk-8", 8),
  "http-keepalive": http("http-keepalive", false),
  "http-newconn": http("http-newconn", true),
  "udp-rr": {
    id: "udp-rr",
    title: `UDP request/response (${UDP.flows} flows × ${UDP.inflight} in flight, ${UDP.payloadBytes} B)`,
    unit: "req/s",
    proto: "udp",
    hasLatency: false,
    missing: () => (udpRrAvailable() ? undefined : "skipped: bench/e2e/udp-rr.ts missing"),
    startBackend: startUdpEcho,
    run: (port, durationS, cpu) => runUdp({ port, durationS, cpu, ...UDP }),
  },
};

interface RunRecord {
  rep: number;
  value?: number;
  p50ms?: number;
  p99ms?: number;
  errors?: number;
  proxyCpuPercent?: number;
  /** Proxy CPU per unit of work: µs per request/connection, ms per GB for bulk. */
  cpuCost?: number;
  /** CPU (% of one core) used by processes outside this benchmark during the run. */
  otherCpuPercent?: number;
  /** lb4 with workers: the primary's CPU (% of one core) during the run. */
  primaryCpuPercent?: number;
  /** lb4 with workers: the workers' CPU alone per unit of work. */
  workersCpuCost?: number;
  leftOpen?: number;
  error?: string;
  detail?: Record<string, unknown>;
}

interface TargetResult {
  target: TargetName;
  status: "ok" | "skipped" | "failed";
  reason?: string;
  notes: string[];
  runs: RunRecord[];
  median?: number;
  min?: number;
  max?: number;
  p50ms?: number;
  p99ms?: number;
  proxyCpuPercent?: number;
  cpuCost?: number;
  otherCpuPercent?: number;
  primaryCpuPercent?: number;
  workersCpuCost?: number;
  errors?: number;
  lb4Log?: ReturnType<typeof summariseLb4Log>;
}

interface WorkloadResult {
  id: WorkloadId;
  title: string;
  unit: string;
  status: "ok" | "skipped";
  reason?: string;
  backend?: string;
  targets: TargetResult[];
  profile?: { file: string } & ReturnType<typeof topSelfTime>;
}

function median(xs: number[]): number | undefined {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

function fmtValue(v: number | undefined, unit: string): string {
  if (v === undefined) return "–";
  if (unit === "Gbit/s") return v.toFixed(2);
  return Math.round(v).toLocaleString("en-US");
}
function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  return v < 1 ? `${(v * 1000).toFixed(0)} µs` : `${v.toFixed(2)} ms`;
}
/** Proxy CPU per unit of work: µs per request/connection/datagram pair; ms per GB for bulk. */
function costPerUnit(cpuPercent: number, value: number, unit: string): number | undefined {
  if (!(value > 0) || !Number.isFinite(cpuPercent)) return undefined;
  const cpuFraction = cpuPercent / 100;
  return unit === "Gbit/s" ? (cpuFraction / (value / 8)) * 1000 : (cpuFraction / value) * 1e6;
}
function fmtCost(v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  return unit === "Gbit/s" ? `${v.toFixed(0)} ms/GB` : `${v.toFixed(1)} µs/${unit === "conn/s" ? "conn" : "req"}`;
}
function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0) return "–";
  return `${(a / b).toFixed(2)}×`;
}

function table(results: WorkloadResult[]): string {
  const rows = [
    "| workload | target | median | min–max | p50 | p99 | vs direct | vs HAProxy | vs nginx | proxy CPU | CPU per unit | errors |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const w of results) {
    if (w.status === "skipped") {
      rows.push(`| ${w.title} | – | ${w.reason ?? "skipped"} | | | | | | | | | |`);
      continue;
    }
    const by = (t: TargetName) => w.targets.find((x) => x.target === t && x.status === "ok")?.median;
    const direct = by("direct");
    // Multi-core targets against HAProxy with as many threads.
    const haproxyFor = (t: TargetName) => ((LB4_WORKERS[t] ?? 1) >= 2 || t === "haproxy-t2" ? by("haproxy-t2") : by("haproxy"));
    const nginx = by("nginx");
    for (const t of w.targets) {
      const label = `${w.title} [${w.unit}]`;
      if (t.status !== "ok") {
        rows.push(`| ${label} | ${t.target} | ${t.status}: ${t.reason ?? ""} | | | | | | | | | |`);
        continue;
      }
      rows.push(
        `| ${label} | ${t.target} | ${fmtValue(t.median, w.unit)} | ${fmtValue(t.min, w.unit)}–${fmtValue(t.max, w.unit)} | ${fmtMs(t.p50ms)} | ${fmtMs(t.p99ms)} | ` +
          `${t.target === "direct" ? "1.00×" : ratio(t.median, direct)} | ${ratio(t.median, haproxyFor(t.target))} | ${ratio(t.median, nginx)} | ` +
          `${t.proxyCpuPercent === undefined ? "–" : `${Math.round(t.proxyCpuPercent)}%`} | ${fmtCost(t.cpuCost, w.unit)} | ${t.errors ?? 0} |`,
      );
    }
  }
  return rows.join("\n");
}

const PRIMARY_CPU_GOAL_PERCENT = 5;
const CPU_PER_UNIT_GOAL = 0.1;

/** CPU per unit of `t` against `base`: "+x.y% (goal ±10%: met)". */
function costChange(t: number | undefined, base: number | undefined): string {
  if (t === undefined || base === undefined) return "–";
  const d = t / base - 1;
  return `${d >= 0 ? "+" : ""}${(d * 100).toFixed(1)}% ${Math.abs(d) <= CPU_PER_UNIT_GOAL ? "(goal ±10%: met)" : "(goal ±10%: MISSED)"}`;
}

/** lb4 with workers: the primary apart from the workers, and CPU per unit against lb4 with one worker. */
function workersTable(results: WorkloadResult[]): string | undefined {
  const rows = [
    "| workload | target | median | vs lb4 (1 worker) | vs HAProxy nbthread 2 | CPU per unit, all | workers alone | primary CPU (% of a core) | all vs lb4 (1 worker, pinned) | all vs lb4-w1u (1 worker, unpinned) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  let any = false;
  for (const w of results) {
    if (w.status !== "ok") continue;
    const ok = (t: TargetName) => w.targets.find((x) => x.target === t && x.status === "ok");
    const one = ok("lb4");
    const oneU = ok("lb4-w1u");
    const ht2 = ok("haproxy-t2");
    for (const t of w.targets) {
      if (t.status !== "ok" || (LB4_WORKERS[t.target] ?? 1) < 2) continue;
      any = true;
      const p = t.primaryCpuPercent;
      const primary = p === undefined ? "–" : `${p.toFixed(1)}% ${p < PRIMARY_CPU_GOAL_PERCENT ? "(goal < 5%: met)" : "(goal < 5%: MISSED)"}`;
      rows.push(
        `| ${w.title} [${w.unit}] | ${t.target} | ${fmtValue(t.median, w.unit)} | ${ratio(t.median, one?.median)} | ${ratio(t.median, ht2?.median)} | ` +
          `${fmtCost(t.cpuCost, w.unit)} | ${fmtCost(t.workersCpuCost, w.unit)} | ${primary} | ${costChange(t.cpuCost, one?.cpuCost)} | ${costChange(t.cpuCost, oneU?.cpuCost)} |`,
      );
    }
  }
  return any ? rows.join("\n") : undefined;
}

async function installPeers(): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  log("--install-peers: apt-get update");
  const u = await runTool("apt-get", ["update"], { timeoutMs: 300_000, env });
  if (u.code !== 0) log(`apt-get update failed (exit ${u.code}): ${u.stderr.trim().slice(0, 300)}`);
  const pkgs = ["haproxy", "nginx", "libnginx-mod-stream", "wrk", "iperf3"];
  log(`--install-peers: apt-get install -y ${pkgs.join(" ")}`);
  const i = await runTool("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], { timeoutMs: 600_000, env });
  if (i.code !== 0) log(`apt-get install failed (exit ${i.code}): ${i.stderr.trim().slice(0, 500)}`);
}

function parseList<T extends string>(arg: string | undefined, all: readonly T[], what: string): T[] {
  if (!arg) return [...all];
  const out: T[] = [];
  for (const x of arg.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(all as readonly string[]).includes(x)) throw new Error(`unknown ${what} "${x}" (one of ${all.join(", ")})`);
    out.push(x as T);
  }
  return out;
}

async function main(): Promise<void> {
  installHooks();
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      duration: { type: "string" },
      only: { type: "string" },
      targets: { type: "string" },
      "install-peers": { type: "boolean", default: false },
      "cpu-prof": { type: "string" },
      "quiet-wait": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      "usage: node --import tsx bench/e2e.ts [--quick] [--reps N] [--duration S] [--only " +
        WORKLOADS.join(",") +
        "] [--targets " +
        TARGETS.join(",") +
        "] [--install-peers] [--cpu-prof WORKLOAD] [--quiet-wait S] [--out FILE]",
    );
    return;
  }
  const reps = Math.max(1, Number(values.reps ?? (values.quick ? 1 : 3)) | 0);
  const durationS = Math.max(1, Math.round(Number(values.duration ?? (values.quick ? 2 : 5))));
  const warmupS = values.quick ? 0 : 1;
  const workloads = parseList(values.only, WORKLOADS, "workload");
  const targets = parseList(values.targets, TARGETS, "target");
  const quietWaitS = Math.max(0, Number(values["quiet-wait"] ?? 0) || 0);
  const profWorkload = values["cpu-prof"] ? parseList(values["cpu-prof"], WORKLOADS, "workload")[0] : undefined;

  if (values["install-peers"]) await installPeers();

  const unpinnedNote = (cpus: string) => {
    const u = targets.filter((t) => UNPINNED.has(t));
    return u.length ? ` (${u.join(", ")}: CPUs ${cpus})` : "";
  };
  // Pinning: proxy on CPU 0; backends, load generators and this harness on CPU 1.
  // The multi-core targets (lb4-w2, haproxy-t2) may run on every CPU, under the same load.
  const ncpu = os.cpus().length;
  let pinning: Pinning;
  if (ncpu >= 2 && hasCommand("taskset") && pinSelf(1)) {
    const allCpus = `0-${ncpu - 1}`;
    pinning = { proxyCpu: 0, loadCpu: 1, allCpus, note: `taskset: proxy on CPU 0${unpinnedNote(allCpus)}; backends, load generators and harness on CPU 1` };
  } else {
    pinning = { proxyCpu: undefined, loadCpu: undefined, allCpus: undefined, note: `no pinning (${ncpu} CPU(s)${hasCommand("taskset") ? "" : ", taskset missing"})` };
  }

  const machine = machineInfo();
  const distAtStart = newestMtime(path.join(ROOT, "dist"));
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  if ((loadAtStart[0] ?? 0) > 0.5) log(`warning: load average ${loadAtStart.join(" ")} — something else is running; figures will be noisy`);
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, "-").replace(/Z$/, "");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lb4-e2e-"));
  tmpDir = tmp;
  process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
  const resultsDir = path.join(ROOT, "bench/results");
  fs.mkdirSync(resultsDir, { recursive: true });
  const admin = await checkAdminSupport(tmp);

  const runsPlanned = workloads.reduce((n, w) => n + targets.filter((t) => available(t, ALL_WORKLOADS[w].proto).ok).length, 0);
  log(`lb4 e2e: ${workloads.length} workload(s), targets ${targets.join(",")}, ${reps} rep(s) × ${durationS} s; ~${Math.ceil((runsPlanned * (reps * (durationS + 0.6) + warmupS + 1)) / 60)} min`);
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, kernel ${machine.kernel}; ${pinning.note}`);
  log(`lb4 admin: ${admin.detail}`);

  const results: WorkloadResult[] = [];
  for (const wid of workloads) {
    const w = ALL_WORKLOADS[wid];
    const missing = w.missing();
    if (missing) {
      log(`${w.id}: ${missing}`);
      results.push({ id: w.id, title: w.title, unit: w.unit, status: "skipped", reason: missing, targets: [] });
      continue;
    }
    const wr: WorkloadResult = { id: w.id, title: w.title, unit: w.unit, status: "ok", targets: [] };
    results.push(wr);
    let backend: Backend | undefined;
    const running = new Map<TargetName, Running>();
    try {
      backend = await w.startBackend(tmp, pinning.loadCpu);
      wr.backend = backend.kind;
      log(`${w.id}: backend ${backend.kind} on 127.0.0.1:${backend.port}`);
      for (const t of targets) {
        const tr: TargetResult = { target: t, status: "ok", notes: [], runs: [] };
        wr.targets.push(tr);
        const av = available(t, w.proto);
        if (!av.ok) {
          tr.status = "skipped";
          tr.reason = av.reason ?? "not available";
          continue;
        }
        try {
          const r = await startTarget(t, { proto: w.proto, upstreamPort: backend.port, tmp, cpu: UNPINNED.has(t) ? pinning.allCpus : pinning.proxyCpu });
          running.set(t, r);
          tr.notes.push(...r.notes);
        } catch (e) {
          tr.status = "failed";
          tr.reason = `did not start: ${(e as Error).message}`;
          log(`${w.id}/${t}: ${tr.reason}`);
        }
      }

      // Warm-up (JIT, caches), not recorded.
      if (warmupS > 0) {
        for (const [t, r] of running) {
          try {
            await w.run(r.port, warmupS, pinning.loadCpu);
          } catch (e) {
            if (e instanceof SkipError) throw e;
            log(`${w.id}/${t}: warm-up failed: ${(e as Error).message}`);
          }
          await sleep(300);
        }
      }

      for (let rep = 1; rep <= reps; rep++) {
        for (const tr of wr.targets) {
          const r = running.get(tr.target);
          if (!r || tr.status !== "ok") continue;
          if (quietWaitS > 0) await waitQuiet(quietWaitS);
          const rec: RunRecord = { rep };
          const cpu0 = r.pgid !== undefined ? groupCpuSeconds(r.pgid) : NaN;
          const split0 = r.workerPids && r.pgid !== undefined ? groupCpuByPid(r.pgid) : undefined;
          const foreign0 = foreignCpuSnapshot();
          const t0 = performance.now();
          try {
            const s = await w.run(r.port, durationS, pinning.loadCpu);
            const elapsed = (performance.now() - t0) / 1000;
            rec.value = s.value;
            if (s.p50ms !== undefined) rec.p50ms = s.p50ms;
            if (s.p99ms !== undefined) rec.p99ms = s.p99ms;
            if (s.errors !== undefined) rec.errors = s.errors;
            if (s.detail) rec.detail = s.detail;
            if (r.pgid !== undefined) {
              // With workers, the total comes from the same per-process reading as its two parts.
              const d = split0 ? splitCpuSeconds(split0, groupCpuByPid(r.pgid), r.pgid) : undefined;
              rec.proxyCpuPercent = ((d ? d.leader + d.others : groupCpuSeconds(r.pgid) - cpu0) / elapsed) * 100;
              rec.cpuCost = costPerUnit(rec.proxyCpuPercent, s.value, w.unit);
              if (d) {
                rec.primaryCpuPercent = (d.leader / elapsed) * 100;
                rec.workersCpuCost = costPerUnit((d.others / elapsed) * 100, s.value, w.unit);
              }
            }
            rec.otherCpuPercent = Math.round((foreignCpuSeconds(foreign0, foreignCpuSnapshot()) / elapsed) * 100);
          } catch (e) {
            if (e instanceof SkipError) throw e;
            rec.error = (e as Error).message;
          }
          if (r.child && exited(r.child)) {
            rec.error = `${rec.error ? `${rec.error}; ` : ""}${r.name} process exited (code ${r.child.exitCode}, signal ${r.child.signalCode})`;
            tr.status = "failed";
            tr.reason = rec.error;
          }
          await sleep(300);
          if (w.proto === "tcp" && r.pgid !== undefined) {
            // Connections the proxy still holds after the load generator has finished.
            const open = establishedOn(r.port);
            if (open > 0) {
              await sleep(1500);
              rec.leftOpen = establishedOn(r.port);
              if (rec.leftOpen > 0) tr.notes.push(`rep ${rep}: ${rec.leftOpen} client connection(s) still established 1.8 s after the load ended`);
            }
          }
          tr.runs.push(rec);
          const v = rec.value === undefined ? `error: ${rec.error}` : `${fmtValue(rec.value, w.unit)} ${w.unit}`;
          log(
            `${w.id} rep ${rep}/${reps} ${tr.target.padEnd(10)} ${v}` +
              (rec.p50ms !== undefined ? ` p50 ${fmtMs(rec.p50ms)} p99 ${fmtMs(rec.p99ms)}` : "") +
              (rec.proxyCpuPercent !== undefined ? ` cpu ${Math.round(rec.proxyCpuPercent)}%` : "") +
              (rec.primaryCpuPercent !== undefined ? ` (primary ${rec.primaryCpuPercent.toFixed(1)}%)` : "") +
              (rec.errors ? ` errors ${rec.errors}` : "") +
              ((rec.otherCpuPercent ?? 0) >= 10 ? ` [other processes used ${rec.otherCpuPercent}% CPU meanwhile]` : ""),
          );
        }
      }

      // Optional: one extra, unrecorded lb4 run under node --cpu-prof.
      if (profWorkload === w.id && targets.includes("lb4")) {
        const profDir = fs.mkdtempSync(path.join(tmp, "prof-"));
        const lbRunning = running.get("lb4");
        if (lbRunning) {
          await lbRunning.stop();
          running.delete("lb4");
        }
        const p = await startTarget("lb4", { proto: w.proto, upstreamPort: backend.port, tmp, cpu: pinning.proxyCpu, cpuProfDir: profDir });
        try {
          await w.run(p.port, durationS, pinning.loadCpu);
        } finally {
          await p.stop();
        }
        const f = fs.readdirSync(profDir).find((x) => x.endsWith(".cpuprofile"));
        if (f) {
          const dest = path.join(resultsDir, `lb4-${w.id}-${stamp}.cpuprofile`);
          fs.copyFileSync(path.join(profDir, f), dest);
          const prof = topSelfTime(dest, 20);
          wr.profile = { file: path.relative(ROOT, dest), ...prof };
          log(`${w.id}: lb4 CPU profile ${wr.profile.file}`);
        } else log(`${w.id}: lb4 wrote no CPU profile`);
      }
    } catch (e) {
      if (e instanceof SkipError) {
        wr.status = "skipped";
        wr.reason = e.message;
        wr.targets = [];
        log(`${w.id}: ${e.message}`);
      } else throw e;
    } finally {
      for (const [t, r] of running) {
        await r.stop();
        const tr = wr.targets.find((x) => x.target === t);
        if (isLb4(t) && r.logFile && tr) tr.lb4Log = summariseLb4Log(r.logFile);
      }
      await backend?.stop();
    }

    for (const tr of wr.targets) {
      const ok = tr.runs.filter((r) => r.value !== undefined);
      if (tr.status === "ok" && ok.length === 0) {
        tr.status = "failed";
        tr.reason = tr.runs.map((r) => r.error).filter(Boolean).join("; ") || "no successful run";
      }
      if (ok.length === 0) continue;
      const vals = ok.map((r) => r.value!);
      tr.median = median(vals);
      tr.min = Math.min(...vals);
      tr.max = Math.max(...vals);
      tr.p50ms = median(ok.map((r) => r.p50ms ?? NaN));
      tr.p99ms = median(ok.map((r) => r.p99ms ?? NaN));
      tr.proxyCpuPercent = median(ok.map((r) => r.proxyCpuPercent ?? NaN));
      tr.cpuCost = median(ok.map((r) => r.cpuCost ?? NaN));
      tr.otherCpuPercent = median(tr.runs.map((r) => r.otherCpuPercent ?? NaN));
      const primary = median(ok.map((r) => r.primaryCpuPercent ?? NaN));
      if (primary !== undefined) tr.primaryCpuPercent = primary;
      const workersCost = median(ok.map((r) => r.workersCpuCost ?? NaN));
      if (workersCost !== undefined) tr.workersCpuCost = workersCost;
      const disturbed = tr.runs.filter((r) => (r.otherCpuPercent ?? 0) >= 10);
      if (disturbed.length) tr.notes.push(`other processes used ≥ 10% of a core during rep(s) ${disturbed.map((r) => `${r.rep} (${r.otherCpuPercent}%)`).join(", ")}`);
      tr.errors = tr.runs.reduce((n, r) => n + (r.errors ?? 0), 0);
      const failed = tr.runs.filter((r) => r.error);
      if (failed.length) tr.notes.push(`${failed.length} run(s) failed: ${failed.map((r) => r.error).join("; ")}`);
    }
  }

  const finished = new Date();
  const distAtEnd = newestMtime(path.join(ROOT, "dist"));
  const distRebuilt = distAtEnd > distAtStart;
  if (distRebuilt) log("warning: dist/ was rebuilt during the run: the lb4 figures may mix two builds");
  const command = `node --import tsx bench/e2e.ts ${process.argv.slice(2).join(" ")}`.trim();
  const report = {
    kind: "lb4-e2e",
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: Math.round((finished.getTime() - started.getTime()) / 1000),
    command,
    machine,
    distRebuiltDuringRun: distRebuilt,
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    pinning,
    settings: { reps, durationS, warmupS, httpConnections: HTTP_CONNECTIONS, udp: UDP, bulkTool, statistic: "median over reps" },
    lb4Features: {
      ipgroup: "white [127.0.0.0/8]",
      log: "info, access log on, stdout (JSON lines) redirected to a file",
      admin: admin.accepted ? "admin.listen 127.0.0.1:<port> (metrics)" : `left out: ${admin.detail}`,
    },
    peers: {
      haproxy: "mode tcp, nbthread 1, no logging",
      "haproxy-t2": "mode tcp, nbthread 2, no logging, unpinned (every CPU)",
      "lb4-w2": "lb4 start --workers 2 (a primary and 2 node:cluster workers, SCHED_NONE), unpinned (every CPU); lb4 and lb4-net run --workers 1",
      "lb4-w1u": "lb4 start --workers 1, unpinned (every CPU)",
      "lb4-w2-limit": "as lb4-w2 with connection_limit 1000000 (never reached): every connection claims and releases a slot at the primary",
      nginx: "stream, worker_processes 1, no access log",
      naive: "bench/e2e/naive-proxy.mjs: net.createServer + two pipes (UDP: one socket per flow)",
      raw: "TCP: LB4_BENCH_RAW, a bare proxy on libuv stream handles, run with UBUF=1 FASTCLOSE=1; UDP: bench/e2e/udp-handles-proxy.mjs, a bare proxy on udp_wrap handles (no lb4 features)",
    },
    results,
  };
  const outFile = values.out ? path.resolve(values.out) : path.join(resultsDir, `e2e-${stamp}.json`);
  fs.writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);

  const md = table(results);
  console.log(`\n## lb4 end-to-end benchmark — ${started.toISOString()}\n`);
  console.log(`Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.os}, kernel ${machine.kernel}, ${machine.memoryGiB} GiB`);
  console.log(`Versions: node ${machine.versions.node}; ${machine.versions.haproxy ?? "haproxy: not installed"}; ${machine.versions.nginx ?? "nginx: not installed"}; ${machine.versions.wrk ?? "wrk: not installed"}; ${machine.versions.iperf3 ?? "iperf3: not installed"}`);
  console.log(`lb4: ${machine.lb4.version} @ ${machine.lb4.commit ?? "?"}${machine.lb4.uncommittedFiles ? ` (+${machine.lb4.uncommittedFiles} uncommitted files)` : ""}; features: ipgroup whitelist, info log + access log to a file, ${report.lb4Features.admin}`);
  console.log(`Pinning: ${pinning.note}; load average at start ${loadAtStart.join(" ")}, at end ${report.loadAverage.atEnd.join(" ")}`);
  console.log(`Command: ${command}; ${reps} rep(s) × ${durationS} s per target, interleaved; medians; ${report.seconds} s in all\n`);
  console.log(md);
  const wt = workersTable(results);
  if (wt) {
    console.log(`\nlb4 with workers (unpinned), the primary apart from the workers, against lb4 with 1 worker in the same run:\n`);
    console.log(wt);
  }
  const notes: string[] = [];
  for (const w of results)
    for (const t of w.targets) {
      for (const n of new Set(t.notes)) notes.push(`- ${w.id}/${t.target}: ${n}`);
      if (t.lb4Log) {
        const l = t.lb4Log;
        notes.push(`- ${w.id}/${t.target} log: ${l.lines} lines, ${l.accessLines} access-log lines, ends ${JSON.stringify(l.ends)}, ${l.warnOrWorse} warn/error${l.samples.length ? ` e.g. ${l.samples[0]}` : ""}`);
      }
    }
  if (distRebuilt) notes.push("- dist/ was rebuilt while this ran (someone ran the build): the lb4 figures may mix two builds");
  if (notes.length) console.log(`\nNotes:\n${notes.join("\n")}`);
  for (const w of results) {
    if (!w.profile) continue;
    console.log(`\nlb4 CPU profile under ${w.id} (${w.profile.file}; ${w.profile.busyMs} ms busy, ${w.profile.idleMs} ms idle), top self time, % of busy:`);
    for (const f of w.profile.top) console.log(`  ${String(f.percent).padStart(5)}%  ${f.fn}  ${f.where}`);
  }
  console.log(`\nJSON: ${path.relative(ROOT, outFile)}`);
}

let tmpDir: string | undefined;

/** Wait (at most maxS seconds) until other processes use less than 20% of a core. */
async function waitQuiet(maxS: number): Promise<void> {
  const deadline = Date.now() + maxS * 1000;
  let warned = false;
  for (;;) {
    const a = foreignCpuSnapshot();
    await sleep(500);
    const busy = foreignCpuSeconds(a, foreignCpuSnapshot()) / 0.5;
    if (busy < 0.2) return;
    if (Date.now() >= deadline) {
      log(`other processes still use ${Math.round(busy * 100)}% CPU after waiting ${maxS} s; measuring anyway`);
      return;
    }
    if (!warned) log(`other processes use ${Math.round(busy * 100)}% CPU; waiting up to ${maxS} s for quiet`);
    warned = true;
  }
}

/** Newest modification time (ms) of any file under dir. */
function newestMtime(dir: string): number {
  let newest = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          newest = Math.max(newest, fs.statSync(p).mtimeMs);
        } catch {
          /* vanished */
        }
      }
    }
  };
  walk(dir);
  return newest;
}

main()
  .catch((e: unknown) => {
    console.error(`e2e: ${(e as Error)?.stack ?? String(e)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  });
