/**
 * The reliability suite (`npm run test:reliability`): faults, descriptor limits, abuse,
 * fuzzing and a soak against the real `lb4` CLI. Apart from `npm test` (vitest.config.ts
 * excludes test/reliability); its figures go to RELIABILITY.md.
 */
import os from "node:os";
import path from "node:path";
import { defineConfig } from "vitest/config";

// One figures file per run, shared by the global setup (which prints the table) and the workers.
process.env.LB4_RELIABILITY_FIGURES ??= path.join(os.tmpdir(), `lb4-reliability-figures-${process.pid}.jsonl`);

const soakSeconds = Number(process.env.LB4_SOAK_SECONDS ?? 60);

export default defineConfig({
  test: {
    include: ["test/reliability/**/*.test.ts"],
    globalSetup: ["test/reliability/global-setup.ts"],
    // Every case bounds its own waits; these are the outer bounds.
    testTimeout: 120_000 + soakSeconds * 1000,
    hookTimeout: 60_000,
    // Two cores: two files at a time keeps the whole suite within 5 minutes.
    fileParallelism: true,
    maxWorkers: 2,
    // A failure in one fault case must not hide the figures of the others.
    bail: 0,
  },
});
