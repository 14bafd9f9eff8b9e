/**
 * Helpers for the worker tests (SPEC §10): `lb4 start --workers N` as a child with its stdout
 * kept apart (access-log lines are checked whole), /metrics values, and process liveness.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { adminConfig, api, startLb4, writeConfig, type Lb4Child } from "./lb4-child.js";
import { freePort, waitFor } from "./net.js";

export interface WorkersLb4 {
  lb: Lb4Child;
  /** Everything the child wrote to stdout since it logged its start. */
  stdout(): string;
}

/** Write a config around `loadbalancers` into `dir` and start `lb4 start --grace S --workers N`. */
export async function startWorkers(dir: string, loadbalancers: unknown[], workers: number | "auto" = 2, graceS = 1): Promise<WorkersLb4> {
  const adminPort = await freePort();
  const file = path.join(dir, "lb4.yaml");
  await writeConfig(file, adminConfig(adminPort, "./state", loadbalancers));
  const lb = await startLb4(file, adminPort, {}, ["--grace", String(graceS), "--workers", String(workers)]);
  // stdout alone: the merged output() may cut a stdout line with a stderr chunk.
  let out = "";
  lb.proc.stdout!.on("data", (c: Buffer) => (out += c));
  return { lb, stdout: () => out };
}

/**
 * The complete lines of `text` (a trailing fragment still arriving is left out), each parsed
 * as JSON; throws naming the first line that is not JSON (a cut or interleaved line).
 */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  const parts = text.split("\n");
  parts.pop();
  return parts.map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`stdout line ${i + 1} is not JSON (cut or interleaved): ${JSON.stringify(l.slice(0, 300))}`);
    }
  });
}

/** The access-log lines of one TCP listener on stdout. */
export function tcpConnLines(text: string, listener: string): Array<Record<string, unknown>> {
  return jsonLines(text).filter((l) => l.ev === "tcp_conn" && l.listener === listener);
}

/** Wait until the listener has `n` access-log lines on stdout; returns them (all stdout lines are JSON). */
export async function waitForTcpConnLines(w: WorkersLb4, listener: string, n: number, timeoutMs = 5000): Promise<Array<Record<string, unknown>>> {
  await waitFor(() => tcpConnLines(w.stdout(), listener).length >= n, timeoutMs, `${n} tcp_conn lines of ${listener}`);
  return tcpConnLines(w.stdout(), listener);
}

/** One sample of a Prometheus text scrape, matched by name and a subset of labels. */
export function metricValue(text: string, metric: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{") && !line.startsWith(metric + " ")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").at(-1));
  }
  return undefined;
}

export async function scrape(lb: Lb4Child): Promise<string> {
  const r = await api(lb.url, "GET", "/metrics");
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.text}`);
  return r.text;
}

export interface WorkerRow {
  index: number;
  pid: number;
  ready: boolean;
  active_connections: number;
  uptime_s: number;
}

export async function workers(lb: Lb4Child): Promise<{ workers: WorkerRow[]; restarts: number }> {
  const r = await api(lb.url, "GET", "/v3/elb/workers");
  if (r.status !== 200) throw new Error(`/v3/elb/workers answered ${r.status}: ${r.text}`);
  return r.body as { workers: WorkerRow[]; restarts: number };
}

/** Whether a process with this pid exists (signal 0; ESRCH = gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/** Whether the process runs (Linux /proc: gone or a zombie waiting to be reaped is not running). */
export function running(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // "pid (comm) S ...": the state follows the last ")".
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}
