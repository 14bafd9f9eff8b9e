/**
 * Cost of one runtime member change at N members (issue 12 item 6): wall time of
 * addMember/updateMember/removeMember through the engine with persistence on, and the longest
 * event-loop stall seen meanwhile (what a new data-plane connection would wait). Wall time
 * includes the fsync before the acknowledgement; CPU time is the process's (all threads).
 * Runs the built engine (dist/, as lb4 start does; tsx-compiled closures cost more):
 * npm run build && node --import tsx bench/admin-writes.ts [100,1000,3000,10000]
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startLoadBalancer } from "../dist/engine.js";
import type { ConfigInput } from "../dist/config/schema.js";

const sizes = (process.argv[2] ?? "100,1000,3000,10000").split(",").map(Number);
const WRITES = Number(process.env.WRITES ?? 60);
const POOL_SIZE = 100;

function config(n: number, dir: string): ConfigInput {
  const pools = [];
  for (let p = 0; p * POOL_SIZE < n; p++) {
    const members = [];
    for (let i = p * POOL_SIZE; i < Math.min(n, (p + 1) * POOL_SIZE); i++) {
      members.push({ id: `m-${i}`, address: `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, protocol_port: 9000 });
    }
    pools.push({ id: `pool-${p}`, protocol: "TCP" as const, members });
  }
  return { state_dir: dir, log: { level: "silent" }, loadbalancers: [{ id: "lb-1", vip_address: "127.0.0.1", listeners: [], pools }] };
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

for (const n of sizes) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lb4-bench-writes-"));
  const h = await startLoadBalancer(config(n, dir), { persistState: true });
  const times: number[] = [];
  const cpu: number[] = [];
  const h2 = monitorEventLoopDelay({ resolution: 1 });
  h2.enable();
  for (let i = 0; i < WRITES; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const k = i % 3;
    if (k === 0) await h.addMember("pool-0", { id: `new-${i}`, address: `127.200.0.${i % 250}`, protocol_port: 9100 + i });
    else if (k === 1) await h.updateMember("pool-0", `new-${i - 1}`, { weight: 5 });
    else await h.removeMember("pool-0", `new-${i - 2}`);
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  h2.disable();
  console.log(
    `members=${n} writes=${WRITES} wall median=${pct(times, 0.5).toFixed(2)}ms p90=${pct(times, 0.9).toFixed(2)}ms max=${Math.max(...times).toFixed(2)}ms ` +
      `cpu median=${pct(cpu, 0.5).toFixed(2)}ms p90=${pct(cpu, 0.9).toFixed(2)}ms ` +
      `loop-stall max=${(h2.max / 1e6).toFixed(2)}ms p99=${(h2.percentile(99) / 1e6).toFixed(2)}ms`,
  );
  await h.close({ graceMs: 0 });
  await rm(dir, { recursive: true, force: true });
}
