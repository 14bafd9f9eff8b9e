/**
 * Helpers for the admin API integration tests: `lb4 start` as a real child process with a
 * temp config and state_dir, an HTTP client for its admin API, the CLI as a child, and
 * line-oriented backends that say who they are and then echo.
 */
import { afterEach, beforeEach } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { customServer, waitFor, type TestServer } from "./net.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const bin = path.join(root, "bin/lb4");

export const TOKEN = "test-admin-token-0123456789";

export async function tempDir(prefix = "lb4-admin-"): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Write a config object as YAML. */
export async function writeConfig(file: string, config: unknown): Promise<void> {
  await writeFile(file, stringify(config));
}

export interface Lb4Child {
  proc: ChildProcess;
  /** Admin API base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
  /** kill -9 and wait for the exit. */
  kill9(): Promise<void>;
}

const children = new Set<Lb4Child>();

/** `node bin/lb4 start --config FILE`, resolved once it has logged its start. */
export async function startLb4(configFile: string, adminPort: number, env: Record<string, string> = {}, args: string[] = ["--grace", "1"]): Promise<Lb4Child> {
  const proc = spawn(process.execPath, [bin, "start", "--config", configFile, ...args], {
    env: { ...process.env, LB4_LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c));
  proc.stderr!.on("data", (c: Buffer) => (out += c));
  const exited = new Promise<number | null>((r) => proc.on("close", (code) => r(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const child: Lb4Child = {
    proc,
    url: `http://127.0.0.1:${adminPort}`,
    output: () => out,
    exited,
    stop: async () => {
      proc.kill("SIGTERM");
      const c = await exited;
      children.delete(child);
      return c;
    },
    kill9: async () => {
      proc.kill("SIGKILL");
      await exited;
      children.delete(child);
    },
  };
  children.add(child);
  await waitFor(() => out.includes('"ev":"start"') || exitCode !== undefined, 15_000, "lb4 start to log its start");
  if (!out.includes('"ev":"start"')) throw new Error(`lb4 start exited (${exitCode}) before starting:\n${out}`);
  return child;
}

/** SIGKILL every child still running (afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.kill9()));
}

export interface ApiReply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** One admin API request; `token: null` sends none. `raw` sends the string as is. */
export async function api(
  base: string,
  method: string,
  p: string,
  opts: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {},
): Promise<ApiReply> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers["x-auth-token"] = token;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  // Like the CLI: every write declares JSON (the API refuses one that does not), unless the test sets a type.
  if (method !== "GET" && method !== "HEAD" && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${p}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `lb4 <args>` to completion. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, LB4_LOG_FORMAT: "json", LB4_ADMIN_URL: "", LB4_ADMIN_TOKEN: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    const t = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`lb4 ${args.join(" ")} did not exit in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A backend that writes "<name>\n" on connect, then echoes every byte. */
export function namedEcho(name: string, host = "127.0.0.1"): Promise<TestServer> {
  return customServer(
    (s) => {
      s.write(`${name}\n`);
      s.pipe(s);
    },
    {},
    host,
  );
}

/** A client connection that reads lines. */
export class LineClient {
  private buf = "";
  private waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.buf += d;
      this.wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static async open(port: number, host = "127.0.0.1"): Promise<LineClient> {
    const s = net.connect({ port, host });
    const c = new LineClient(s);
    await new Promise<void>((resolve, reject) => {
      s.once("connect", () => resolve());
      s.once("error", reject);
    });
    return c;
  }

  /** The next line, or rejects if the connection closes or nothing arrives in time. */
  async line(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf("\n");
      if (i >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        return l;
      }
      if (this.closed) throw new Error("connection closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no line in time");
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Send a line and expect it back (the backend echoes). */
  async echo(msg: string): Promise<void> {
    this.socket.write(`${msg}\n`);
    const got = await this.line();
    if (got !== msg) throw new Error(`echo mismatch: sent ${msg}, got ${got}`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Which backend serves a new connection through `port` (its first line); the connection is closed. */
export async function whoAnswers(port: number): Promise<string> {
  const c = await LineClient.open(port);
  try {
    return await c.line();
  } finally {
    c.destroy();
  }
}

/** Open connections until one lands on `name` (at most `tries`); the others are closed. */
export async function connectTo(port: number, name: string, tries = 10): Promise<LineClient> {
  for (let i = 0; i < tries; i++) {
    const c = await LineClient.open(port);
    if ((await c.line()) === name) return c;
    c.destroy();
  }
  throw new Error(`no connection landed on ${name} in ${tries} tries`);
}

/** Resolve with whether a TCP connect to the port is refused. */
export function refused(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/** A minimal admin-enabled config around given load balancers. */
export function adminConfig(adminPort: number, stateDir: string, loadbalancers: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    admin: { listen: `127.0.0.1:${adminPort}`, token: TOKEN },
    state_dir: stateDir,
    log: { level: "info" },
    ...extra,
    loadbalancers,
  };
}

/**
 * Per-test fixture for child-process tests: a fresh temp dir before each test; after it,
 * every tracked client destroyed, every lb4 child killed, every server closed, the dir removed.
 */
export function useChildFixture(): { readonly dir: string; servers: TestServer[]; clients: LineClient[] } {
  const fx = { dir: "", servers: [] as TestServer[], clients: [] as LineClient[] };
  beforeEach(async () => {
    fx.dir = await tempDir();
  });
  afterEach(async () => {
    for (const c of fx.clients.splice(0)) c.destroy();
    await killAll();
    await Promise.all(fx.servers.splice(0).map((s) => s.close()));
    await removeDir(fx.dir);
  });
  return fx;
}
