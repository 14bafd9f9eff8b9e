/**
 * A small fetch-based client of the admin API for the CLI (`lb4 status`, `lb4 members …`,
 * `lb4 reload`). The URL comes from `--admin`, else LB4_ADMIN_URL, else the default
 * admin.listen; the token from `--token`, else LB4_ADMIN_TOKEN. Refusals become Lb4Errors
 * carrying the API's error_code, so the CLI prints them and exits 1.
 */
import { CommanderError } from "commander";
import { ConfigError, Lb4Error, formatProblem, type Problem } from "../errors.js";

export const DEFAULT_ADMIN_URL = "http://127.0.0.1:9870";

export interface AdminClientOptions {
  /** Admin API base URL; "127.0.0.1:9870" without a scheme means http://. */
  admin?: string | undefined;
  token?: string | undefined;
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

/** A refusal by the admin API (4xx/5xx), with its status and error_code. */
export class AdminApiError extends Lb4Error {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * A refusal whose body lists validation `problems` (a reload of an invalid file, a bad
 * member): a ConfigError, so the CLI prints it as `lb4 validate` does — one problem per
 * line — instead of the API's error_msg, which joins them all on one line.
 */
export class AdminProblemsError extends ConfigError {
  override readonly code: string;
  constructor(
    readonly status: number,
    code: string,
    summary: string,
    problems: readonly Problem[],
  ) {
    super(problems);
    this.code = code;
    this.message = `${summary}\n${problems.map((p) => `  - ${problemLine(p)}`).join("\n")}`;
  }
}

/** A problem with its rule's code, e.g. `loadbalancers[0].pools[0].members[1].id: duplicate member id … [LB4.DUPLICATE_ID]`. */
function problemLine(p: Problem): string {
  const s = formatProblem(p);
  return p.code && !s.includes(p.code) ? `${s} [${p.code}]` : s;
}

/** The `problems` of an error body, if it is a well-formed list of {path, message, code?}. */
function bodyProblems(v: unknown): Problem[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const out: Problem[] = [];
  for (const p of v as unknown[]) {
    const o = (typeof p === "object" && p !== null ? p : {}) as Record<string, unknown>;
    if (typeof o.message !== "string") return undefined;
    out.push({ path: typeof o.path === "string" ? o.path : "", message: o.message, ...(typeof o.code === "string" ? { code: o.code } : {}) });
  }
  return out;
}

export function resolveAdminUrl(admin: string | undefined, env: Record<string, string | undefined> = process.env): URL {
  // An empty LB4_ADMIN_URL means unset (as an empty LB4_ADMIN_TOKEN does).
  const raw = (admin ?? (env.LB4_ADMIN_URL?.trim() || undefined) ?? DEFAULT_ADMIN_URL).trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CommanderError(2, "lb4.usage", `--admin: "${raw}" is not a URL; use e.g. http://127.0.0.1:9870`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CommanderError(2, "lb4.usage", `--admin: "${raw}" must be an http:// or https:// URL`);
  }
  return url;
}

export class AdminClient {
  readonly base: URL;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: AdminClientOptions = {}) {
    const env = opts.env ?? process.env;
    this.base = resolveAdminUrl(opts.admin, env);
    const token = opts.token ?? env.LB4_ADMIN_TOKEN;
    this.token = token === "" ? undefined : token;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
  }

  /** Base URL for messages, without a trailing slash. */
  get url(): string {
    return this.base.toString().replace(/\/$/, "");
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(`${this.url}${path.startsWith("/") ? path : `/${path}`}`);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token !== undefined) headers["x-auth-token"] = this.token;
    // The API refuses a write without this type (SPEC §8: browsers cannot send it cross-origin), body or not.
    if (method !== "GET" && method !== "HEAD") headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text();
    if (!res.ok) throw this.refused(method, path, res.status, text);
    if (res.status === 204 || text.trim() === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Lb4Error("LB4.ADMIN_BAD_RESPONSE", `${method} ${url} answered ${res.status} with a body that is not JSON; is ${this.url} an lb4 admin API?`);
    }
  }

  /**
   * Open a Server-Sent Events stream (`GET /v3/elb/events`) and return the response, whose body
   * the caller reads until `signal` aborts. No timeout: a stream stays open. Refusals as request().
   */
  async stream(path: string, signal: AbortSignal): Promise<Response> {
    const url = new URL(`${this.url}${path.startsWith("/") ? path : `/${path}`}`);
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.token !== undefined) headers["x-auth-token"] = this.token;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (!res.ok) throw this.refused("GET", path, res.status, await res.text());
    return res;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }
  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }
  put<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }
  delete(path: string): Promise<void> {
    return this.request<void>("DELETE", path);
  }

  private unreachable(err: unknown): Lb4Error {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === "TimeoutError" ? `no answer within ${this.timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return new Lb4Error(
      "LB4.ADMIN_UNREACHABLE",
      `cannot reach the lb4 admin API at ${this.url} (${why}); is lb4 start running with admin.listen set? ` +
        "Point to it with --admin URL or LB4_ADMIN_URL",
    );
  }

  private refused(method: string, path: string, status: number, text: string): AdminApiError | AdminProblemsError {
    let code = `LB4.HTTP_${status}`;
    let msg = text.trim() || `HTTP ${status}`;
    let problems: Problem[] | undefined;
    try {
      const b = JSON.parse(text) as { error_code?: unknown; error_msg?: unknown; problems?: unknown };
      if (typeof b.error_code === "string") code = b.error_code;
      if (typeof b.error_msg === "string") msg = b.error_msg;
      problems = bodyProblems(b.problems);
    } catch {
      // not JSON: keep the text
    }
    if (status === 401) msg += "; pass --token or set LB4_ADMIN_TOKEN";
    const head = `${method} ${path} refused (HTTP ${status})`;
    if (!problems) return new AdminApiError(status, code, `${head}: ${msg}`);
    // error_msg ends with the problems joined on one line; keep only what comes before them.
    const at = msg.indexOf(formatProblem(problems[0]!));
    const summary = at > 0 ? msg.slice(0, at).replace(/[\s:;]+$/, "") : `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    return new AdminProblemsError(status, code, `${head} [${code}]: ${summary}:`, problems);
  }
}

/** `encodeURIComponent` for path segments (ids may hold ':' and '.'). */
export const seg = (s: string): string => encodeURIComponent(s);
