/**
 * Micro-benchmarks of the pure parts (tinybench): `npm run bench`.
 * Prints a table; figures go to bench/RESULTS.md by hand with the machine and command.
 */
import os from "node:os";
import { Bench } from "tinybench";
import { addAclBenches } from "./acl.bench.js";
import { addSchedulingBenches } from "./scheduling.bench.js";

const bench = new Bench({ time: Number(process.env.BENCH_MS ?? 300), warmupTime: 100 });
addSchedulingBenches(bench);
addAclBenches(bench);
try {
  const { addCodecBenches } = await import("./codecs.bench.js");
  addCodecBenches(bench);
} catch {
  // codecs not built in this tree
}
await bench.run();
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}, ${os.platform()} ${os.release()}`);
console.table(
  bench.tasks.map((t) => {
    const r = t.result as { throughput?: { mean: number }; latency?: { mean: number } } | undefined;
    return {
      task: t.name,
      "ops/s": r?.throughput ? Math.round(r.throughput.mean).toLocaleString("en-US") : "?",
      "mean ns": r?.latency ? Math.round(r.latency.mean * 1e6).toLocaleString("en-US") : "?",
    };
  }),
);
