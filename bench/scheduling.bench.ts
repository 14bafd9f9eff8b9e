/**
 * Scheduler micro-benchmarks: pick() on pre-built schedulers (the per-connection hot
 * path) and the Maglev table build (off the hot path, on every membership change).
 * bench/micro.ts calls addSchedulingBenches.
 */
import type { Bench } from "tinybench";
import { buildMaglevTable } from "../src/scheduling/maglev.js";
import { ALGORITHMS, createScheduler } from "../src/scheduling/registry.js";
import type { ClientInfo, Schedulable } from "../src/scheduling/types.js";

const SIZES = [10, 100, 1000] as const;
const CLIENTS = 1024; // power of two: the index wraps with a mask

/** mulberry32: seeded, so every run benchmarks the same members and clients. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeMembers(n: number, rng: () => number): Schedulable[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `10.${(i >> 8) & 255}.${i & 255}.1:8080`,
    effectiveWeight: 1 + Math.floor(rng() * 100),
    active: Math.floor(rng() * 50),
  }));
}

function makeClients(rng: () => number): ClientInfo[] {
  return Array.from({ length: CLIENTS }, (_, i) => {
    const o = () => Math.floor(rng() * 256);
    const ip =
      i % 4 === 3
        ? `2001:db8:${o().toString(16)}::${o().toString(16)}:${o().toString(16)}`
        : `${1 + Math.floor(rng() * 223)}.${o()}.${o()}.${o()}`;
    return { ip, port: 1024 + Math.floor(rng() * 60000) };
  });
}

export function addSchedulingBenches(bench: Bench): void {
  const rng = mulberry32(0xbe7c4);
  const clients = makeClients(rng);
  for (const algorithm of ALGORITHMS) {
    for (const n of SIZES) {
      const scheduler = createScheduler(algorithm);
      scheduler.update(makeMembers(n, rng));
      let i = 0;
      bench.add(`${algorithm} pick, ${n} members`, () => {
        i = (i + 1) & (CLIENTS - 1);
        return scheduler.pick(clients[i]!);
      });
    }
  }
  for (const n of [100, 1000]) {
    const keys = makeMembers(n, rng)
      .map((m) => m.key)
      .sort();
    bench.add(`maglev table build ${n} members`, () => buildMaglevTable(keys));
  }
}
