/**
 * UDP proxy throughput, end to end on loopback: `npm run build && node --import tsx bench/udp.ts`.
 *
 * A node UDP echo backend runs in a child process; the load (bench/e2e/udp-rr.ts: 8 flows ×
 * 16 in flight, 64-byte datagrams) runs here. Measured, each a median of 3 runs of ~5 s:
 * direct to the backend, through lb4 (`node bin/lb4 start`, built dist/, log level warn) and
 * through nginx's stream module (`listen ... udp; proxy_responses 1`) when nginx is installed.
 * With taskset and 2+ CPUs the proxy runs on CPU 0, load and backend on CPU 1.
 *
 * Env: BENCH_UDP_MS (run length, default 5000), BENCH_UDP_RUNS (default 3),
 * BENCH_UDP_TARGETS (default "direct,lb4,nginx"),
 * BENCH_UDP_PROFILE=<dir> (lb4 runs with --cpu-prof, profiles written there).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { udpRequestResponse } from "./e2e/udp-rr.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RUN_MS = Number(process.env.BENCH_UDP_MS ?? 5000);
const RUNS = Number(process.env.BENCH_UDP_RUNS ?? 3);
const PROFILE_DIR = process.env.BENCH_UDP_PROFILE;
const TARGETS = new Set((process.env.BENCH_UDP_TARGETS ?? "direct,lb4,nginx").split(",").map((t) => t.trim()));
const LOAD = { flows: 8, inflight: 16, payloadBytes: 64 };
const NGINX_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

const tmp = mkdtempSync(path.join(os.tmpdir(), "lb4-bench-udp-"));
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.clear();
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

const pin = which("taskset") !== undefined && os.cpus().length >= 2;
/** Prefix a command with `taskset -c <cpu>` when pinning. */
function onCpu(cpu: number, cmd: string, args: string[]): [string, string[]] {
  return pin ? ["taskset", ["-c", String(cpu), cmd, ...args]] : [cmd, args];
}

function start(name: string, cmd: string, args: string[]): ChildProcess {
  const log = path.join(tmp, `${name}.log`);
  writeFileSync(log, "");
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.stdout!.on("data", (d: Buffer) => writeFileSync(log, d, { flag: "a" }));
  child.stderr!.on("data", (d: Buffer) => writeFileSync(log, d, { flag: "a" }));
  child.on("exit", () => children.delete(child));
  return child;
}

function logTail(name: string): string {
  try {
    return readFileSync(path.join(tmp, `${name}.log`), "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(t);
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolve once something at host:port answers a datagram; bounded. */
async function waitForEcho(port: number, what: string, timeoutMs = 10_000): Promise<void> {
  const s = dgram.createSocket("udp4");
  s.on("error", () => undefined);
  const deadline = Date.now() + timeoutMs;
  try {
    const answered = new Promise<void>((r) => s.once("message", () => r()));
    while (Date.now() < deadline) {
      s.send("ready?", port, "127.0.0.1");
      const ok = await Promise.race([answered.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]);
      if (ok) return;
    }
    throw new Error(`${what} did not answer on 127.0.0.1:${port} within ${timeoutMs} ms\n${logTail(what)}`);
  } finally {
    s.close();
  }
}

/** The fastest plain node echo: dgram resolves every send through `lookup`; answer literals at once. */
const ECHO_SRC = `
const d = require("node:dgram");
const s = d.createSocket({ type: "udp4", lookup: (a, f, cb) => cb(null, a, typeof f === "number" ? f : 4) });
s.on("message", (m, r) => s.send(m, r.port, r.address));
s.bind(0, "127.0.0.1", () => console.log("port " + s.address().port));
`;

async function startBackend(): Promise<{ child: ChildProcess; port: number }> {
  const child = start("backend", process.execPath, ["-e", ECHO_SRC]); // inherits CPU 1
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`echo backend did not start\n${logTail("backend")}`)), 5000);
    child.stdout!.on("data", (d: Buffer) => {
      const m = /port (\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });
  return { child, port };
}

async function startLb4(backendPort: number): Promise<{ child: ChildProcess; port: number }> {
  const port = await freeUdpPort();
  const file = path.join(tmp, "lb4.yaml");
  writeFileSync(
    file,
    `log: { level: warn }
loadbalancers:
  - id: lb-bench
    vip_address: 127.0.0.1
    listeners:
      - { id: ls-udp, protocol: UDP, protocol_port: ${port}, default_pool_id: pool-udp, keepalive_timeout: 60 }
    pools:
      - id: pool-udp
        protocol: UDP
        lb_algorithm: ROUND_ROBIN
        members:
          - { id: m-echo, address: 127.0.0.1, protocol_port: ${backendPort}, weight: 1 }
`,
  );
  const nodeArgs = PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`] : [];
  const [cmd, args] = onCpu(0, process.execPath, [...nodeArgs, path.join(ROOT, "bin/lb4"), "start", "--config", file, "--grace", "1"]);
  const child = start("lb4", cmd, args);
  await waitForEcho(port, "lb4");
  return { child, port };
}

async function startNginx(backendPort: number): Promise<{ child: ChildProcess; port: number }> {
  const port = await freeUdpPort();
  const conf = path.join(tmp, "nginx.conf");
  writeFileSync(
    conf,
    `load_module ${NGINX_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid ${tmp}/nginx.pid;
error_log ${tmp}/nginx-error.log warn;
events { worker_connections 4096; }
stream {
  server {
    listen 127.0.0.1:${port} udp;
    proxy_pass 127.0.0.1:${backendPort};
    proxy_responses 1;
    proxy_timeout 60s;
  }
}
`,
  );
  const [cmd, args] = onCpu(0, which("nginx")!, ["-p", tmp, "-c", conf, "-e", path.join(tmp, "nginx-error.log")]);
  const child = start("nginx", cmd, args);
  await waitForEcho(port, "nginx");
  return { child, port };
}

interface Row {
  target: string;
  runs: number[];
  median: number;
  lost: number;
}

async function measure(target: string, port: number): Promise<Row> {
  await udpRequestResponse({ host: "127.0.0.1", port, ...LOAD, durationMs: Math.min(1000, RUN_MS) }); // warm-up
  const runs: number[] = [];
  let lost = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = await udpRequestResponse({ host: "127.0.0.1", port, ...LOAD, durationMs: RUN_MS });
    runs.push(r.perSecond);
    lost += r.lost;
    process.stdout.write(`  ${target} run ${i + 1}/${RUNS}: ${r.perSecond.toLocaleString("en-US")} req/s, ${r.lost} lost\n`);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  return { target, runs, median: sorted[Math.floor(sorted.length / 2)]!, lost };
}

async function main(): Promise<void> {
  if (!existsSync(path.join(ROOT, "dist/cli/main.js"))) {
    console.error("bench/udp.ts: dist/ is missing; run `npm run build` first");
    process.exit(1);
  }
  if (pin) spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" }); // load (and the backend, by inheritance) on CPU 1
  const nginx = which("nginx") !== undefined && existsSync(NGINX_MODULE);
  console.log(
    `node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}, ${os.platform()} ${os.release()}; ` +
      `${LOAD.flows} flows x ${LOAD.inflight} in flight, ${LOAD.payloadBytes}-byte datagrams, ${RUNS} x ${RUN_MS} ms each; ` +
      (pin ? "proxy on CPU 0, load + backend on CPU 1" : "no CPU pinning (taskset or a 2nd CPU missing)"),
  );
  const backend = await startBackend();
  const rows: Row[] = [];
  if (TARGETS.has("direct")) rows.push(await measure("direct", backend.port));

  if (TARGETS.has("lb4")) {
    const lb4 = await startLb4(backend.port);
    rows.push(await measure("lb4", lb4.port));
    await stop(lb4.child, "SIGTERM", 10_000);
  }

  if (!TARGETS.has("nginx")) {
    // not asked for
  } else if (nginx) {
    const ng = await startNginx(backend.port);
    rows.push(await measure("nginx", ng.port));
    await stop(ng.child, "SIGTERM");
  } else {
    console.log("  nginx: skipped (nginx or its stream module is not installed)");
  }
  await stop(backend.child);

  const by = (t: string) => rows.find((r) => r.target === t)?.median;
  const ratio = (a?: number, b?: number) => (a && b ? (a / b).toFixed(2) : "-");
  console.log("\nround trips per second (each is 2 datagrams through the proxy), median of runs:");
  console.table(
    rows.map((r) => ({
      target: r.target,
      "req/s (median)": r.median.toLocaleString("en-US"),
      runs: r.runs.map((x) => x.toLocaleString("en-US")).join(" / "),
      lost: r.lost,
    })),
  );
  console.log(`lb4/nginx: ${ratio(by("lb4"), by("nginx"))}   lb4/direct: ${ratio(by("lb4"), by("direct"))}   nginx/direct: ${ratio(by("nginx"), by("direct"))}`);
  if (PROFILE_DIR) console.log(`lb4 CPU profile(s) in ${path.resolve(PROFILE_DIR)}`);
}

const watchdog = setTimeout(() => {
  console.error("bench/udp.ts: gave up after 5 minutes");
  process.exit(1);
}, 300_000);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench/udp.ts: ${err.message}`);
    process.exit(1);
  },
);
