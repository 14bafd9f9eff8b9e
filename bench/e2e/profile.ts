/** Top self-time functions of a V8 .cpuprofile (node --cpu-prof). */
import fs from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  selfMs: number;
  percent: number;
}

/** Percentages are of the busy time: "(idle)" is reported apart, not in the list. */
export function topSelfTime(file: string, n = 15): { totalMs: number; busyMs: number; idleMs: number; top: SelfTime[] } {
  const p = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  // Self time per node from the samples and their time deltas (more exact than hitCount × interval).
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const next = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + next);
  }
  const byFn = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (const node of p.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    total += us;
    const cf = node.callFrame;
    const fn = cf.functionName || "(anonymous)";
    const url = cf.url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "node_modules/").replace(/^.*\/work\/main\//, "");
    const where = url ? `${url}:${cf.lineNumber + 1}` : "";
    const key = `${fn}@${where}`;
    const e = byFn.get(key) ?? { fn, where, us: 0 };
    e.us += us;
    byFn.set(key, e);
  }
  const idle = [...byFn.values()].filter((e) => e.fn === "(idle)").reduce((a, e) => a + e.us, 0);
  const busy = total - idle;
  const top = [...byFn.values()]
    .filter((e) => e.fn !== "(idle)")
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 100) / 10, percent: Math.round((e.us / Math.max(busy, 1)) * 1000) / 10 }));
  return { totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), idleMs: Math.round(idle / 1000), top };
}
