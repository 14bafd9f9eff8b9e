/**
 * `lb4 start` as a real child process for the reliability suite, optionally inside a
 * network namespace (`ip netns exec`) and under a descriptor limit (`prlimit`); both exec
 * the program, so the child's pid is lb4's own (kill -9, /proc/PID/status). Its JSON log
 * lines are parsed as they come: start, health transitions and the access log.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import http from "node:http";
import { stringify } from "yaml";
import { lb4Main } from "./env.js";
import { waitFor } from "../../helpers/net.js";

export const TOKEN = "reliability-admin-token-0123456789";

/** The top of every suite config: the admin API on loopback with TOKEN, state_dir, info logs. */
export function adminBase(adminPort: number, stateDir: string): Record<string, unknown> {
  return { admin: { listen: `127.0.0.1:${adminPort}`, token: TOKEN }, state_dir: stateDir, log: { level: "info" } };
}

export interface Reply {
  status: number;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as is (with Content-Type: application/json unless `headers` says otherwise). */
  raw?: string | Buffer;
  /** Extra or replaced headers; "" removes one (e.g. no Content-Type). */
  headers?: Record<string, string>;
  token?: string | null;
  timeoutMs?: number;
}

/** One HTTP request on a fresh connection (no pooling: each request is its own socket), bounded. */
export function httpRequest(base: string, method: string, p: string, opts: RequestOptions = {}): Promise<Reply> {
  const u = new URL(p, base);
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers["x-auth-token"] = token;
  let payload: Buffer | undefined;
  if (opts.raw !== undefined) payload = Buffer.isBuffer(opts.raw) ? opts.raw : Buffer.from(opts.raw);
  else if (opts.body !== undefined) payload = Buffer.from(JSON.stringify(opts.body));
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(payload.length);
  }
  // A header given as "" is not sent at all (e.g. no Content-Type).
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    delete headers[k.toLowerCase()];
    if (v !== "") headers[k.toLowerCase()] = v;
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, body });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${p}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(payload);
  });
}

export interface AccessLine {
  member_id: string;
  end: string;
  bytes_in: number;
  bytes_out: number;
}

export interface StartOptions {
  /** Config object, written as YAML to `file`. */
  config: unknown;
  file: string;
  /** Admin API base URL the test uses, e.g. http://127.0.0.1:9870 */
  adminUrl: string;
  netns?: string;
  /** RLIMIT_NOFILE (soft = hard) for the child. */
  nofile?: number;
  startTimeoutMs?: number;
}

const running = new Set<Lb4Proc>();

export class Lb4Proc {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly url: string;
  /** Exit code (or signal name) once exited. */
  exit: number | string | undefined;
  readonly exited: Promise<void>;
  /** Client port → the last access-log line for it. */
  readonly access = new Map<number, AccessLine>();
  /** Every parsed log line with `ev` other than tcp_conn (health, start, errors…). */
  readonly events: Array<Record<string, unknown>> = [];
  accessLines = 0;
  /** Last lines of raw output, for failure messages. */
  private tail: string[] = [];
  private carry = "";

  private constructor(proc: ChildProcess, url: string) {
    this.proc = proc;
    this.pid = proc.pid!;
    this.url = url;
    this.exited = new Promise((resolve) =>
      proc.on("close", (code, signal) => {
        this.exit = code ?? signal ?? "unknown";
        running.delete(this);
        resolve();
      }),
    );
    proc.stdout!.on("data", (c: Buffer) => this.onData(c));
    proc.stderr!.on("data", (c: Buffer) => this.keep(c.toString()));
  }

  static async start(opts: StartOptions): Promise<Lb4Proc> {
    await writeFile(opts.file, stringify(opts.config));
    return Lb4Proc.spawn(opts);
  }

  /** Start on an existing config file (restarts). */
  static async spawn(opts: Omit<StartOptions, "config">): Promise<Lb4Proc> {
    const argv = ["--initial-old-space-size=64", lb4Main, "start", "--config", opts.file, "--grace", "1"];
    let cmd = process.execPath;
    let args = argv;
    if (opts.nofile !== undefined) {
      args = [`--nofile=${opts.nofile}:${opts.nofile}`, "--", cmd, ...args];
      cmd = "prlimit";
    }
    if (opts.netns !== undefined) {
      args = ["netns", "exec", opts.netns, cmd, ...args];
      cmd = "ip";
    }
    const proc = spawn(cmd, args, { env: { ...process.env, LB4_LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "pipe"] });
    const lb = new Lb4Proc(proc, opts.adminUrl);
    running.add(lb);
    await waitFor(() => lb.events.some((e) => e.ev === "start") || lb.exit !== undefined, opts.startTimeoutMs ?? 20_000, "lb4 to log its start");
    if (lb.exit !== undefined) throw new Error(`lb4 exited (${lb.exit}) before starting:\n${lb.output()}`);
    return lb;
  }

  private keep(text: string): void {
    for (const l of text.split("\n")) if (l) this.tail.push(l.length > 2000 ? l.slice(0, 2000) + "…" : l);
    if (this.tail.length > 400) this.tail.splice(0, this.tail.length - 200);
  }

  private onData(c: Buffer): void {
    const text = this.carry + c.toString("utf8");
    const lines = text.split("\n");
    this.carry = lines.pop() ?? "";
    for (const l of lines) {
      if (!l) continue;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(l) as Record<string, unknown>;
      } catch {
        this.keep(l);
        continue;
      }
      if (o.ev === "tcp_conn") {
        this.accessLines++;
        const port = Number(String(o.client).split(":").pop());
        this.access.set(port, { member_id: String(o.member_id ?? ""), end: String(o.end), bytes_in: Number(o.bytes_in), bytes_out: Number(o.bytes_out) });
      } else {
        this.keep(l);
        if (this.events.length < 20_000) this.events.push(o);
      }
    }
  }

  output(): string {
    return this.tail.join("\n");
  }

  alive(): boolean {
    return this.exit === undefined;
  }

  api(method: string, p: string, opts: RequestOptions = {}): Promise<Reply> {
    return httpRequest(this.url, method, p, opts);
  }

  /** Sum of lb4_connections_active over every listener, from /metrics. */
  async active(): Promise<number> {
    const r = await this.api("GET", "/metrics");
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.text.slice(0, 200)}`);
    let n = 0;
    for (const line of r.text.split("\n")) if (line.startsWith("lb4_connections_active{")) n += Number(line.slice(line.lastIndexOf(" ") + 1));
    return n;
  }

  /** Wait (bounded) until every listener reports 0 active connections; returns the last figure. */
  async settle(timeoutMs = 20_000): Promise<number> {
    let last = -1;
    await waitFor(
      async () => {
        last = await this.active().catch(() => -1);
        return last === 0;
      },
      timeoutMs,
      "lb4_connections_active back to 0",
    ).catch(() => undefined);
    return last;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async members(pool: string): Promise<any[]> {
    const r = await this.api("GET", `/v3/elb/pools/${pool}/members`);
    if (r.status !== 200) throw new Error(`GET members answered ${r.status}: ${r.text.slice(0, 200)}`);
    return r.body.members;
  }

  async status(pool: string, member: string): Promise<string | undefined> {
    const ms = await this.members(pool);
    return ms.find((m) => m.id === member)?.operating_status;
  }

  /** Resident set size in bytes (/proc/PID/status VmRSS). */
  rss(): number {
    const s = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(s);
    return m ? Number(m[1]) * 1024 : NaN;
  }

  /** Open file descriptors of the process. */
  fds(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  async kill9(): Promise<void> {
    if (this.exit === undefined) this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited within `ms`. */
  async stop(ms = 10_000): Promise<number | string | undefined> {
    if (this.exit === undefined) {
      this.proc.kill("SIGTERM");
      const t = setTimeout(() => this.proc.kill("SIGKILL"), ms);
      await this.exited;
      clearTimeout(t);
    }
    return this.exit;
  }
}

/** kill -9 every lb4 child still running (afterEach / afterAll). */
export async function killAllLb4(): Promise<void> {
  await Promise.all([...running].map((l) => l.kill9()));
}
