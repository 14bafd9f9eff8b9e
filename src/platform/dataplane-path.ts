/**
 * Which TCP data plane runs: `handles` (libuv stream handles, stream-handles.ts) or `net`
 * (net.Socket). LB4_DATAPLANE=net|handles forces one; unset, handles run where the probe
 * passed. The probe runs once, when this module loads (top-level await), unless
 * LB4_DATAPLANE=net. The environment is read at each listener's creation, so a test can
 * start engines on either.
 */
import { probe } from "./stream-handles.js";

export type DataplanePath = "net" | "handles";

/** The path when LB4_DATAPLANE is unset. */
const DEFAULT: "auto" | DataplanePath = "auto";

const env = process.env.LB4_DATAPLANE;
const probeProblem: string | undefined = env === "net" ? "not probed (LB4_DATAPLANE=net)" : await probe();

/** The path TCP listeners created now use, and why when that is not what was asked for. */
export function dataplaneChoice(): { path: DataplanePath; note?: string } {
  const want = process.env.LB4_DATAPLANE ?? DEFAULT;
  if (want === "net") return { path: "net" };
  if (want !== "handles" && want !== "auto") return { path: "net", note: `LB4_DATAPLANE=${JSON.stringify(want)} is not net or handles` };
  if (probeProblem === undefined) return { path: "handles" };
  if (probeProblem.startsWith("not probed")) return { path: "net", note: "LB4_DATAPLANE was net when lb4 started; handles were not probed" };
  return { path: "net", note: `the handle data plane failed its start-up probe: ${probeProblem}` };
}

export function dataplanePath(): DataplanePath {
  return dataplaneChoice().path;
}

/** For the start log line: the path, and why it fell back when it did. */
export function describeDataplane(c: { path: DataplanePath; note?: string | undefined } = dataplaneChoice()): string {
  return c.note ? `${c.path} (${c.note})` : c.path;
}

/** The probe's finding: undefined when the handles passed it. */
export function handlesProblem(): string | undefined {
  return probeProblem;
}
