/**
 * The admin HTTP server (SPEC §8) on node:http: auth, body limits, JSON in and out,
 * keep-alive. The only admin module that touches sockets; routes.ts does the work.
 *
 * Order of checks for a request: Host (403) → Origin (403) → body type of a write (415)
 * → token (401) → route (404 / 405) → declared body size (413) → body read with the same
 * limit (413) → route handler. The browser-safety checks (auth.ts) come first, with or
 * without a token, so a foreign page never learns whether a token it sent was right. A
 * refused request never reaches the engine, and the engine itself refuses a change whole,
 * so nothing is ever half-applied.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import type { Logger } from "pino";
import type { Engine } from "../engine.js";
import { Lb4Error } from "../errors.js";
import { isLoopback } from "../ip.js";
import { splitHostPort } from "../config/schema.js";
import { systemClock } from "../clock.js";
import { AdminNames, admitRequest, authorize } from "./auth.js";
import { HttpError, errorBody, matchRoute, toHttpError, type AdminContext, type AdminResponse, type MetricsProvider } from "./routes.js";
import type { ReloadChanges } from "../control/changes.js";
import { Live, type LiveOptions } from "./live.js";

/** Largest request body accepted (a member is a few hundred bytes). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** After a refusal, how much of an unread body is read and discarded before the socket is cut. */
const DISCARD_CAP_BYTES = 1024 * 1024;

export interface AdminServerOptions {
  engine: Engine;
  /** "host:port", e.g. "127.0.0.1:9870" or "[::1]:9870"; port 0 = any free port. */
  listen: string;
  /** Shared secret; required when `listen` is not a loopback address. */
  token?: string | undefined;
  /** Extra Host names the API answers to besides its own address (SPEC §8, admin.allowed_hosts). */
  allowedHosts?: readonly string[];
  /**
   * How other instances and operators reach this admin API ("host:port", cluster.advertise);
   * its host is one of the API's names too. Not wired yet: cluster mode will pass it.
   */
  advertise?: string | undefined;
  logger: Logger;
  /** Re-read the config file and call engine.reload (shared with SIGHUP). */
  reload: () => Promise<ReloadChanges | void>;
  metrics?: MetricsProvider | undefined;
  maxBodyBytes?: number;
  /** The cluster's live instances for the dashboard (SPEC §11, §12), when there is a cluster. */
  instances?: LiveOptions["instances"];
  /** Event stream and chart timing (tests shorten them). */
  live?: Pick<LiveOptions, "countersMs" | "heartbeatMs" | "maxStreams" | "historyIntervalMs" | "historySamples">;
}

export interface AdminServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const hp = splitHostPort(opts.listen);
  if (!hp) {
    throw new Lb4Error("LB4.ADMIN_LISTEN_INVALID", `admin.listen "${opts.listen}" is not host:port with an IP address, e.g. 127.0.0.1:9870 or [::1]:9870`);
  }
  const token = opts.token === "" ? undefined : opts.token;
  if (token === undefined && !isLoopback(hp.host)) {
    throw new Lb4Error(
      "LB4.ADMIN_TOKEN_REQUIRED",
      `the admin API would listen on ${opts.listen}, which is not a loopback address, without a token; set admin.token (e.g. token: \${LB4_ADMIN_TOKEN}) or listen on 127.0.0.1`,
    );
  }
  const ctx: AdminContext = { engine: opts.engine, logger: opts.logger, reload: opts.reload, metrics: opts.metrics };
  const names = new AdminNames({
    listenHost: hp.host,
    extra: [
      ...(opts.allowedHosts ?? []).map((value, i) => ({ field: `admin.allowed_hosts[${i}]`, value })),
      ...(opts.advertise !== undefined ? [{ field: "cluster.advertise", value: opts.advertise }] : []),
    ],
    interfaces: hostAddresses,
    clock: systemClock,
  });
  const settings: Settings = { token, maxBody: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, names };

  const server = http.createServer((req, res) => {
    void handle(ctx, settings, req, res);
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new Lb4Error(
          "LB4.ADMIN_LISTEN_FAILED",
          `cannot listen on the admin address ${opts.listen} (${err.code ?? err.message}); free the port or change admin.listen`,
        ),
      );
    };
    server.once("error", onError);
    server.listen(hp.port, hp.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => opts.logger.error({ ev: "admin_error", err: err.message }, "admin server error"));
  const live = new Live({ engine: opts.engine, instances: opts.instances, ...opts.live });
  ctx.live = live;
  if (live.assets.missing) opts.logger.warn({ ev: "dashboard_missing", dir: live.assets.dir }, live.assets.missing);

  const a = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: { host: a.address, port: a.port },
    close() {
      closing ??= new Promise<void>((resolve) => {
        live.close(); // event streams never go idle by themselves
        server.close(() => resolve());
        server.closeIdleConnections();
        // Requests still in flight get a moment to finish, then their sockets are cut.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      return closing;
    },
  };
}

/** Every address of this host's interfaces (the names of a wildcard admin listener). */
function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

interface Settings {
  token: string | undefined;
  maxBody: number;
  names: AdminNames;
}

async function handle(ctx: AdminContext, { token, maxBody, names }: Settings, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const started = Date.now();
  const method = req.method ?? "GET";
  let path = "/";
  let response: AdminResponse;
  let code: string | undefined;
  try {
    const url = new URL(req.url ?? "/", "http://admin.invalid");
    path = url.pathname;
    const refusal = admitRequest({ method, headers: req.headersDistinct }, names);
    if (refusal) throw new HttpError(refusal.status, refusal.code, refusal.message);
    const auth = authorize(path, req.headers, token);
    if (!auth.ok) {
      throw new HttpError(
        401,
        "LB4.UNAUTHORIZED",
        auth.reason === "missing"
          ? "this request needs the admin token: send X-Auth-Token: <token> or Authorization: Bearer <token>"
          : "the admin token is wrong; use the token from admin.token in the lb4 config",
        undefined,
        { "www-authenticate": 'Bearer realm="lb4"' },
      );
    }
    const match = matchRoute(method, path);
    if (match.kind === "not_found") throw new HttpError(404, "LB4.NOT_FOUND", `no such path: ${method} ${path}; see the admin API paths in README.md`);
    if (match.kind === "method_not_allowed") {
      throw new HttpError(405, "LB4.METHOD_NOT_ALLOWED", `${method} is not allowed on ${path}; use ${match.allow.join(", ")}`, undefined, {
        allow: match.allow.join(", "),
      });
    }
    const body = await readBody(req, maxBody);
    // Counters of worker processes are brought up to date for reads that show them (SPEC §10).
    if (path === "/metrics" || (path.startsWith("/v3/elb/") && path !== "/v3/elb/events")) await ctx.engine.refreshCounters();
    response = await match.handler(ctx, { method, path, params: match.params, query: url.searchParams, body, headers: req.headers });
  } catch (err) {
    if (req.socket.destroyed && !(err instanceof HttpError)) return; // the client went away mid-request
    const e = toHttpError(err);
    code = e.code;
    if (e.status >= 500) ctx.logger.error({ ev: "admin_error", method, path, err: (err as Error)?.stack ?? String(err) }, "admin request failed");
    response = { status: e.status, json: errorBody(e), ...(e.headers ? { headers: e.headers } : {}) };
  }
  discardUnread(req);
  send(res, response);
  // Reads are debug; a write, or a request refused as coming from a web page, is info.
  const level = (method === "GET" || method === "HEAD") && response.status !== 403 ? "debug" : "info";
  ctx.logger[level](
    { ev: "admin_request", method, path, status: response.status, ...(code !== undefined ? { code } : {}), ms: Date.now() - started },
    `admin ${method} ${path} ${response.status}`,
  );
}

/** Read the whole body, refusing (413) past `max` bytes, by the declared length or as it streams. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, "LB4.BODY_TOO_LARGE", `the request body is larger than ${max} bytes; send one change per request`);
  const declared = Number(req.headers["content-length"] ?? "0");
  if (Number.isFinite(declared) && declared > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/**
 * A refused request may leave body bytes unread. Read and drop them (so the reply is not
 * lost to a TCP reset and the connection stays usable), up to a cap; past it, cut the socket.
 */
function discardUnread(req: http.IncomingMessage): void {
  if (req.complete || req.readableEnded) return;
  let dropped = 0;
  req.on("data", (c: Buffer) => {
    dropped += c.length;
    if (dropped > DISCARD_CAP_BYTES) req.socket.destroy();
  });
  req.on("error", () => undefined);
  req.resume();
}

function send(res: http.ServerResponse, r: AdminResponse): void {
  if (res.headersSent) return;
  const headers: Record<string, string | number> = { "cache-control": "no-store" };
  if ("headers" in r && r.headers) Object.assign(headers, r.headers);
  if (r.status === 204 || r.status === 304) {
    res.writeHead(r.status, headers);
    res.end();
    return;
  }
  if ("stream" in r) {
    headers["content-type"] = r.contentType;
    // A stream ends only when lb4 ends it or the reader leaves: then the connection goes too.
    headers["connection"] = "close";
    res.writeHead(r.status, headers);
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    r.stream({
      write: (text) => {
        res.write(text);
        return res.writableLength;
      },
      end: () => res.end(),
      onClose: (fn) => (res.closed ? queueMicrotask(fn) : res.once("close", fn)),
    });
    return;
  }
  let body: Buffer;
  if ("text" in r) {
    body = Buffer.from(r.text, "utf8");
    headers["content-type"] = r.contentType;
  } else {
    body = Buffer.from(JSON.stringify((r as { json: unknown }).json) + "\n", "utf8");
    headers["content-type"] = "application/json; charset=utf-8";
  }
  headers["content-length"] = body.length;
  res.writeHead(r.status, headers);
  res.end(body);
}
