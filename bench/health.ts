/**
 * Health checks at scale: 1,000 members checked with TCP every second (delay: 1).
 * Measures (1) the CPU lb4 spends on checks alone (no traffic) and (2) the new-connection
 * rate through lb4 with those checks on vs off, in the same run.
 *
 *   npm run build && node --import tsx bench/health.ts
 *
 * Needs nginx (the 1,000 members are 1,000 listening ports of one nginx) and wrk; lb4 is
 * pinned to CPU 0, nginx and wrk to CPU 1. Loopback only; every child is killed on exit.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MEMBERS = Number(process.env.BENCH_HEALTH_MEMBERS ?? 1000);
const SECONDS = Number(process.env.BENCH_HEALTH_SECONDS ?? 10);
const tmp = mkdtempSync(path.join(os.tmpdir(), "lb4-health-"));
const children: ChildProcess[] = [];
const cleanup = () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
};
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function run(cpu: number, cmd: string, args: string[], out = "ignore"): ChildProcess {
  const c = spawn("taskset", ["-c", String(cpu), cmd, ...args], { stdio: ["ignore", out === "ignore" ? "ignore" : "pipe", "ignore"] });
  children.push(c);
  return c;
}

async function waitPort(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1");
      s.on("connect", () => (s.destroy(), r(true)));
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} did not open in ${ms} ms`);
}

/** CPU seconds (user+system) of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100/s)
}

function wrk(port: number): number {
  const r = spawnSync("taskset", ["-c", "1", "wrk", "-t1", "-c50", `-d${Math.min(SECONDS, 5)}s`, "-H", "Connection: close", `http://127.0.0.1:${port}/`], { encoding: "utf8" });
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
}

async function main(): Promise<void> {
  for (const tool of ["nginx", "wrk", "taskset"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      console.log(`skipped: ${tool} is not installed (npm run bench:e2e -- --install-peers installs the peers)`);
      return;
    }
  }
  const ports: number[] = [];
  while (ports.length < MEMBERS) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  writeFileSync(
    path.join(tmp, "nginx.conf"),
    `daemon off; master_process off; worker_processes 1; pid ${tmp}/nginx.pid; error_log ${tmp}/error.log error;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  server { ${ports.map((p) => `listen 127.0.0.1:${p};`).join(" ")} location / { return 200 "ok"; } } }
`,
  );
  run(1, "nginx", ["-p", tmp, "-c", path.join(tmp, "nginx.conf")]);
  await waitPort(ports[0]!);

  const lb = async (name: string, monitored: boolean) => {
    const port = await freePort();
    const cfg = {
      log: { level: "warn" },
      state_dir: path.join(tmp, `state-${name}`),
      loadbalancers: [
        {
          id: "lb",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls", protocol: "TCP", protocol_port: port, default_pool_id: "p" }],
          pools: [
            {
              id: "p",
              protocol: "TCP",
              ...(monitored ? { healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 } } : {}),
              members: ports.map((p, i) => ({ id: `m${i}`, address: "127.0.0.1", protocol_port: p })),
            },
          ],
        },
      ],
    };
    const file = path.join(tmp, `${name}.json`);
    writeFileSync(file, JSON.stringify(cfg));
    const child = run(0, process.execPath, ["--initial-old-space-size=64", path.join(ROOT, "bin/lb4"), "start", "--config", file]);
    await waitPort(port);
    return { port, child };
  };

  // One lb4 at a time on CPU 0, so the idle one's checks never share the core.
  const on = await lb("checks-on", true);
  await new Promise((r) => setTimeout(r, 3000)); // every member checked at least twice
  const pid = on.child.pid!; // taskset execs the command, so this pid is lb4's
  const c0 = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const checksCpu = (cpuSeconds(pid) - c0) / SECONDS;
  const rates: Record<string, number[]> = { on: [], off: [] };
  for (let i = 0; i < 3; i++) rates.on!.push(wrk(on.port));
  on.child.kill("SIGKILL");
  const off = await lb("checks-off", false);
  for (let i = 0; i < 3; i++) rates.off!.push(wrk(off.port));
  off.child.kill("SIGKILL");
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(`health checks: ${MEMBERS} members, TCP, delay 1 s (${MEMBERS} checks/s), lb4 on CPU 0`);
  console.log(`  CPU used by checks alone (no traffic, ${SECONDS} s): ${(checksCpu * 100).toFixed(1)}% of one core`);
  console.log(`  new connections/s, checks off: ${median(rates.off!).toFixed(0)}  (runs: ${rates.off!.map((r) => r.toFixed(0)).join(", ")})`);
  console.log(`  new connections/s, checks on:  ${median(rates.on!).toFixed(0)}  (runs: ${rates.on!.map((r) => r.toFixed(0)).join(", ")})`);
  console.log(`  change: ${(((median(rates.on!) - median(rates.off!)) / median(rates.off!)) * 100).toFixed(1)}%`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
