/**
 * Load generators, all on the load CPU: wrk (keep-alive and one request per connection,
 * with --latency percentiles), iperf3 -c (-P 1 / -P 8, JSON) or the node bulk client, and
 * the UDP request/response client (bench/e2e/udp-rr.ts, run in its own process).
 */
import fs from "node:fs";
import path from "node:path";
import { runTool } from "./proc.js";
import { ROOT } from "./targets.js";

export interface Sample {
  /** The workload's headline figure (higher is better). */
  value: number;
  p50ms?: number;
  p99ms?: number;
  /** Socket errors / non-2xx responses (wrk), lost datagrams (UDP). */
  errors?: number;
  detail?: Record<string, unknown>;
}

export class SkipError extends Error {}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** "512.00us" → 0.512 (ms). */
export function parseDurationMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  return Number(m[1]) * (UNIT_MS[m[2]!] ?? NaN);
}

export interface WrkResult {
  requests: number;
  rps: number;
  p50ms: number;
  p75ms: number;
  p90ms: number;
  p99ms: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(out);
    return m ? parseDurationMs(m[1]!) : NaN;
  };
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50ms: pct("50"),
    p75ms: pct("75"),
    p90ms: pct("90"),
    p99ms: pct("99"),
    socketErrors: {
      connect: se ? Number(se[1]) : 0,
      read: se ? Number(se[2]) : 0,
      write: se ? Number(se[3]) : 0,
      timeout: se ? Number(se[4]) : 0,
    },
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
  };
}

export async function runWrk(o: { port: number; connections: number; durationS: number; close: boolean; cpu: number | undefined }): Promise<Sample> {
  const args = ["-t1", `-c${o.connections}`, `-d${o.durationS}s`, "--latency", "--timeout", "5s"];
  if (o.close) args.push("-H", "Connection: close");
  args.push(`http://127.0.0.1:${o.port}/`);
  const r = await runTool("wrk", args, { cpu: o.cpu, timeoutMs: (o.durationS + 15) * 1000 });
  if (r.timedOut) throw new Error(`wrk did not finish within ${o.durationS + 15} s`);
  if (r.code !== 0) throw new Error(`wrk exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  const w = parseWrk(r.stdout);
  if (!Number.isFinite(w.rps)) throw new Error(`cannot parse wrk output: ${r.stdout.slice(0, 300)}`);
  const se = w.socketErrors;
  const errors = se.connect + se.read + se.write + se.timeout + w.non2xx;
  return { value: w.rps, p50ms: w.p50ms, p99ms: w.p99ms, errors, detail: { ...w } };
}

interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number; bytes?: number };
    sum_received?: { bits_per_second?: number; bytes?: number; seconds?: number };
  };
}

export async function runIperf(o: { port: number; streams: number; durationS: number; cpu: number | undefined }): Promise<Sample> {
  const args = ["-c", "127.0.0.1", "-p", String(o.port), "-P", String(o.streams), "-t", String(o.durationS), "-J", "--connect-timeout", "3000"];
  let last = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await runTool("iperf3", args, { cpu: o.cpu, timeoutMs: (o.durationS + 20) * 1000 });
    if (r.timedOut) throw new Error(`iperf3 did not finish within ${o.durationS + 20} s`);
    let j: IperfJson;
    try {
      j = JSON.parse(r.stdout) as IperfJson;
    } catch {
      throw new Error(`iperf3 exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    }
    if (j.error) {
      last = j.error;
      // The server still finishing the previous test answers "busy": wait and retry.
      if (/busy/i.test(j.error)) {
        await new Promise((res) => setTimeout(res, 1000));
        continue;
      }
      throw new Error(`iperf3: ${j.error}`);
    }
    const bps = j.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error("iperf3 JSON without end.sum_received");
    return { value: bps / 1e9, detail: { sentGbps: (j.end?.sum_sent?.bits_per_second ?? NaN) / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? null, bytes: j.end?.sum_received?.bytes ?? null } };
  }
  throw new Error(`iperf3: ${last}`);
}

export async function runBulkNode(o: { port: number; streams: number; durationS: number; cpu: number | undefined }): Promise<Sample> {
  const r = await runTool(process.execPath, [path.join(ROOT, "bench/e2e/bulk-node.mjs"), "client", String(o.port), String(o.streams), String(o.durationS * 1000)], { cpu: o.cpu, timeoutMs: (o.durationS + 20) * 1000 });
  if (r.timedOut || r.code !== 0) throw new Error(`bulk client failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.trim().slice(0, 300)}`);
  const j = JSON.parse(r.stdout) as { bitsPerSecond: number; bytes: number };
  return { value: j.bitsPerSecond / 1e9, detail: { bytes: j.bytes } };
}

export const UDP_RR_PATH = path.join(ROOT, "bench/e2e/udp-rr.ts");

export function udpRrAvailable(): boolean {
  return fs.existsSync(UDP_RR_PATH);
}

export async function runUdp(o: { port: number; flows: number; inflight: number; payloadBytes: number; durationS: number; cpu: number | undefined }): Promise<Sample> {
  const opts = { host: "127.0.0.1", port: o.port, flows: o.flows, inflight: o.inflight, payloadBytes: o.payloadBytes, durationMs: o.durationS * 1000 };
  const r = await runTool(process.execPath, ["--import", "tsx", path.join(ROOT, "bench/e2e/udp-load.ts"), JSON.stringify(opts)], { cpu: o.cpu, cwd: ROOT, timeoutMs: (o.durationS + 30) * 1000 });
  if (r.timedOut) throw new Error(`UDP client did not finish within ${o.durationS + 30} s`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  let j: { skipped?: string; error?: string; requests?: number; perSecond?: number; lost?: number };
  try {
    j = JSON.parse(line) as typeof j;
  } catch {
    throw new Error(`UDP client exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  }
  if (j.skipped) throw new SkipError(j.skipped);
  if (j.error || j.perSecond === undefined) throw new Error(`UDP client: ${j.error ?? "no result"}`);
  return { value: j.perSecond, errors: j.lost ?? 0, detail: { requests: j.requests, lost: j.lost } };
}
