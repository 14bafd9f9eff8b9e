/** How many worker processes `workers: auto | N` means (SPEC §10). */
import os from "node:os";

export type WorkersSetting = "auto" | number;

/** auto = os.availableParallelism(); 1 = no workers (one process). */
export function workerCount(setting: WorkersSetting): number {
  return setting === "auto" ? os.availableParallelism() : setting;
}
