/** How many worker processes `workers: auto | N` means (SPEC §10). */
import { readFileSync } from "node:fs";
import os from "node:os";

export type WorkersSetting = "auto" | number;

/**
 * The CPUs a cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD") allows, rounded up;
 * undefined when unlimited or unreadable. A container run with `--cpus 2` on a 16-core host
 * sees 16 CPUs in availableParallelism() but may use 2.
 */
export function cpuQuota(cpuMax: string | undefined): number | undefined {
  if (!cpuMax) return undefined;
  const [quota, period] = cpuMax.trim().split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  if (quota === "max" || !Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return Math.max(1, Math.ceil(q / p));
}

function readCpuMax(): string | undefined {
  try {
    return readFileSync("/sys/fs/cgroup/cpu.max", "utf8");
  } catch {
    return undefined;
  }
}

/** auto = the CPUs this process may run on (affinity), capped by a cgroup CPU quota; 1 = no workers (one process). */
export function workerCount(setting: WorkersSetting, cpuMax: string | undefined = setting === "auto" ? readCpuMax() : undefined): number {
  if (setting !== "auto") return setting;
  const cpus = os.availableParallelism();
  return Math.min(cpus, cpuQuota(cpuMax) ?? cpus);
}
