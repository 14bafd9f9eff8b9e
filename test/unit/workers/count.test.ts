/** workers: auto | N (SPEC §10): auto follows the CPUs lb4 may use, a container's CPU quota included. */
import os from "node:os";
import { describe, expect, it } from "vitest";
import { cpuQuota, workerCount } from "../../../src/workers/count.js";

describe("worker count", () => {
  it.each([
    ["max 100000", undefined],
    ["200000 100000", 2],
    ["150000 100000", 2],
    ["50000 100000", 1],
    ["", undefined],
    ["garbage", undefined],
    [undefined, undefined],
  ])("cpu.max %j allows %j CPUs", (text, want) => {
    expect(cpuQuota(text)).toBe(want);
  });

  it("auto is the available CPUs, capped by the quota; a number is itself", () => {
    const cpus = os.availableParallelism();
    expect(workerCount("auto", "max 100000")).toBe(cpus);
    expect(workerCount("auto", "100000 100000")).toBe(1);
    expect(workerCount("auto", `${(cpus + 8) * 100000} 100000`)).toBe(cpus);
    expect(workerCount(3)).toBe(3);
    expect(workerCount(1)).toBe(1);
  });
});
