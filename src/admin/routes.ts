/**
 * Admin API routes (SPEC §8): the ELB v3 paths without a project id, one small function per
 * route. Routes see a parsed request and return a status plus a JSON (or text) body; the
 * HTTP plumbing (auth, body limits, keep-alive) is server.ts, the JSON shapes are views.ts,
 * and every change goes through the engine, which validates the whole candidate config
 * before anything is persisted or applied — so a refused request changes nothing.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { Engine, MemberPatch } from "../engine.js";
import { CONFIG_INVALID, ConfigError, ConflictError, Lb4Error, NotFoundError, NotSupportedError, STORE_UNAVAILABLE, formatProblem, type Problem } from "../errors.js";
import { plainDataProblems } from "../config/plain-data.js";
import { ipFamily } from "../ip.js";
import { dataplanePath } from "../platform/dataplane-path.js";
import type { ReloadChanges } from "../control/changes.js";
import {
  findHealthMonitor,
  findListener,
  findLoadBalancer,
  findMember,
  findMemberships,
  findPool,
  healthMonitorView,
  listHealthMonitors,
  listListeners,
  listLoadBalancers,
  listPools,
  listenerView,
  loadBalancersOfMember,
  loadBalancerView,
  memberIds,
  memberView,
  membersView,
  poolView,
  type RuntimeView,
} from "./views.js";
import type { Live, StreamSink } from "./live.js";
import { assetHeaders } from "./dashboard/assets.js";
import { engineCluster } from "./dashboard/state.js";

export interface MetricsProvider {
  (): Promise<{ contentType: string; body: string }>;
}

/** What every route may use. */
export interface AdminContext {
  engine: Engine;
  logger: Logger;
  /** Re-read the config file and reload the engine (the same function SIGHUP uses). */
  reload: () => Promise<ReloadChanges | void>;
  metrics?: MetricsProvider | undefined;
  /** The dashboard and the event stream (server.ts owns it). */
  live?: Live | undefined;
}

export interface AdminRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Raw request body (already size-limited). */
  body: Buffer;
  /** Request headers, lower-case names (the event stream reads Last-Event-ID, the page If-None-Match). */
  headers?: Record<string, string | string[] | undefined>;
}

export type AdminResponse =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string; headers?: Record<string, string> }
  | { status: 204 | 304; headers?: Record<string, string> }
  /** A stream of text (Server-Sent Events): server.ts sends the head, then hands the response over. */
  | { status: 200; stream: (sink: StreamSink) => void; contentType: string; headers?: Record<string, string> };

/** A refusal with an HTTP status and a stable `LB4.*` code; rendered as the cloud error body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly problems?: readonly Problem[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** `{"error_code": "LB4.xxxx", "error_msg": "..."}` (+ `problems` for validation errors). */
export function errorBody(e: HttpError): Record<string, unknown> {
  return {
    error_code: e.code,
    error_msg: e.message,
    ...(e.problems ? { problems: e.problems.map((p) => ({ path: p.path, message: p.message, ...(p.code ? { code: p.code } : {}) })) } : {}),
  };
}

// ---------------------------------------------------------------- error mapping

/** Problem codes that mean "conflicts with what exists" (409) rather than "bad request" (400). */
export const CONFLICT_CODES: ReadonlySet<string> = new Set(["LB4.DUPLICATE_ID", "LB4.DUPLICATE_MEMBER"]);

/**
 * A ConfigError as an HTTP error. A change refused only because it collides with existing
 * objects (duplicate id, same address:port in the pool) is 409; anything else is 400.
 * `conflicts: false` (reload) always gives 400: the file itself is invalid.
 */
export function validationError(
  err: ConfigError,
  opts: { conflicts?: boolean; defaultCode?: string; what?: string; rewrite?: (s: string) => string } = {},
): HttpError {
  const rewrite = opts.rewrite ?? ((s: string) => s);
  const problems = err.problems.map((p) => ({ ...p, path: rewrite(p.path), message: rewrite(p.message) }));
  const conflict = (opts.conflicts ?? true) && problems.length > 0 && problems.every((p) => p.code !== undefined && CONFLICT_CODES.has(p.code));
  // LB4.CONFIG_INVALID is every plain schema problem's code: the reply keeps the request's own default then.
  const code = conflict ? problems[0]!.code! : (problems.find((p) => p.code && p.code !== CONFIG_INVALID && !CONFLICT_CODES.has(p.code))?.code ?? opts.defaultCode ?? "LB4.INVALID_REQUEST");
  const msg = `${conflict ? "conflict" : (opts.what ?? "invalid request")} (${problems.length} problem${problems.length === 1 ? "" : "s"}): ${problems.map(formatProblem).join("; ")}`;
  return new HttpError(conflict ? 409 : 400, code, msg, problems);
}

/** Any error thrown by a route or the engine → the HTTP error to send. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ConfigError) return validationError(err);
  if (err instanceof NotFoundError) return new HttpError(404, err.code, err.message);
  if (err instanceof ConflictError) return new HttpError(409, err.code, err.message);
  if (err instanceof NotSupportedError) return new HttpError(400, err.code, err.message);
  if (err instanceof Lb4Error) {
    if (err.code === "LB4.LISTEN_FAILED") return new HttpError(409, err.code, err.message);
    if (err.code === "LB4.CLOSED") return new HttpError(503, err.code, err.message);
    // No quorum or no endpoint: nothing was changed; retry once etcd answers (SPEC §11).
    if (err.code === STORE_UNAVAILABLE) return new HttpError(503, err.code, err.message, undefined, { "retry-after": "2" });
    // The change could not be made durable, so it was not made: the client may retry later.
    if (err.code === "LB4.STATE_WRITE_FAILED") return new HttpError(507, err.code, err.message);
    return new HttpError(500, err.code, err.message);
  }
  return new HttpError(500, "LB4.INTERNAL", `internal error: ${(err as Error)?.message ?? String(err)}; see the lb4 log`);
}

// ---------------------------------------------------------------- request helpers

function json(status: number, body: unknown): AdminResponse {
  return { status, json: body };
}

/** The body as JSON; empty or malformed → 400. */
export function parseJson(body: Buffer): unknown {
  const text = body.toString("utf8").trim();
  if (text === "") throw new HttpError(400, "LB4.EMPTY_BODY", 'the request body is empty; send a JSON object such as {"member": {...}}');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "LB4.MALFORMED_JSON", `the request body is not valid JSON (${(err as Error).message}); send a JSON object`);
  }
  const unsafe = plainDataProblems(doc); // the config's own rule, before anything copies the body
  if (unsafe.length) throw new HttpError(400, "LB4.INVALID_REQUEST", `invalid request: ${unsafe.map(formatProblem).join("; ")}`, unsafe);
  return doc;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `{"member": {...}}` → the inner object; anything else → 400 naming what is wrong. */
function unwrap(body: unknown, key: string): Record<string, unknown> {
  if (!isObject(body)) throw new HttpError(400, "LB4.INVALID_REQUEST", `the body must be a JSON object {"${key}": {...}}`);
  const problems: Problem[] = [];
  for (const k of Object.keys(body)) if (k !== key) problems.push({ path: k, message: `unknown field; the body is {"${key}": {...}}` });
  const inner = body[key];
  if (inner === undefined) problems.push({ path: key, message: `is required; the body is {"${key}": {...}}` });
  else if (!isObject(inner)) problems.push({ path: key, message: "must be a JSON object" });
  if (problems.length) throw new HttpError(400, "LB4.INVALID_REQUEST", `invalid request: ${problems.map(formatProblem).join("; ")}`, problems);
  return inner as Record<string, unknown>;
}

/** Fields outside `allowed` → 400 listing each one. */
function onlyFields(obj: Record<string, unknown>, allowed: readonly string[], key: string, hint: string): void {
  const problems: Problem[] = Object.keys(obj)
    .filter((k) => !allowed.includes(k))
    .map((k) => ({ path: `${key}.${k}`, message: `unknown field; ${hint}` }));
  if (problems.length) throw new HttpError(400, "LB4.INVALID_REQUEST", `invalid request: ${problems.map(formatProblem).join("; ")}`, problems);
}

/** Query parameters outside `allowed` → 400 (a misspelt filter must not silently match everything). */
function onlyQuery(q: URLSearchParams, allowed: readonly string[]): void {
  for (const k of q.keys()) {
    if (!allowed.includes(k)) {
      throw new HttpError(
        400,
        "LB4.INVALID_REQUEST",
        `unknown query parameter "${k}"; ${allowed.length ? `this path takes ${allowed.join(", ")}` : "this path takes none"}`,
      );
    }
  }
}

function addressParam(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (ipFamily(v) === 0) throw new HttpError(400, "LB4.INVALID_REQUEST", `${name}: "${v}" is not an IPv4 or IPv6 address`);
  return v;
}

function stringParam(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (v === "") throw new HttpError(400, "LB4.INVALID_REQUEST", `${name}: must not be empty`);
  return v;
}

/** The engine's live member/listener facts, as the pure views want them. */
export function engineRuntime(engine: Engine): RuntimeView {
  return {
    member(poolId, memberId) {
      const m = engine.pool(poolId)?.members.get(memberId);
      return m ? { status: m.status, health: engine.memberHealth(poolId, memberId), effectiveWeight: m.effectiveWeight, active: m.active, total: m.total } : undefined;
    },
    listener(id) {
      const l = engine.listener(id);
      return l ? { active: l.stats.active, total: l.stats.total } : undefined;
    },
  };
}

function notFound(kind: string, id: string): never {
  throw new NotFoundError(kind, id);
}

/**
 * The engine reports paths of the whole candidate config; say `member.weight` for the member
 * being changed and `member "m-2" of pool "p"` for others, which is what the caller knows.
 */
function memberPathRewriter(config: Config, poolId: string, targetIndex: number): (s: string) => string {
  return (s) =>
    s
      .replace(/loadbalancers\[(\d+)\]\.pools\[(\d+)\]\.members\[(\d+)\]/g, (whole, l: string, p: string, m: string) => {
        const pool = config.loadbalancers[Number(l)]?.pools[Number(p)];
        if (!pool) return whole;
        if (pool.id === poolId && Number(m) === targetIndex) return "member";
        const other = pool.members[Number(m)];
        return other ? `member "${other.id}" of pool "${pool.id}"` : whole;
      })
      .replace(/\bmember member\b/g, "member");
}

/** The member change functions of the engine, with API-shaped errors. */
async function memberChange<T>(fn: () => Promise<T>, rewrite: (s: string) => string, adjust: (p: readonly Problem[]) => Problem[] = (p) => [...p]): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConfigError) throw validationError(new ConfigError(adjust(err.problems)), { rewrite });
    throw err;
  }
}

/**
 * The validator reports a duplicate id at its second occurrence, which may be the existing
 * member rather than the new one; say it from the caller's side instead.
 */
function clearerDuplicateId(problems: readonly Problem[], config: Config, id: unknown): Problem[] {
  if (typeof id !== "string") return [...problems];
  const owner = config.loadbalancers.flatMap((lb) => lb.pools).find((p) => p.members.some((m) => m.id === id));
  const isThisId = (p: Problem) => p.code === "LB4.DUPLICATE_ID" && p.message.startsWith(`duplicate member id "${id}"`);
  if (!owner || !problems.some(isThisId)) return [...problems];
  return [
    {
      path: "member.id",
      code: "LB4.DUPLICATE_ID",
      message: `member id "${id}" is already used in pool "${owner.id}"; ids are unique across all pools — pick another or leave id out to get one generated`,
    },
    ...problems.filter((p) => !isThisId(p)),
  ];
}

// ---------------------------------------------------------------- routes

type Handler = (ctx: AdminContext, req: AdminRequest) => Promise<AdminResponse> | AdminResponse;

function listLoadBalancersRoute(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, ["member_address", "member_device_id"]);
  const address = addressParam(req.query, "member_address");
  const instance = stringParam(req.query, "member_device_id");
  const config = ctx.engine.config;
  if (address === undefined && instance === undefined) return json(200, { loadbalancers: listLoadBalancers(config) });
  return json(200, {
    loadbalancers: loadBalancersOfMember(config, { ...(address !== undefined ? { address } : {}), ...(instance !== undefined ? { instance_id: instance } : {}) }),
  });
}

function getLoadBalancer(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  const config = ctx.engine.config;
  const lb = findLoadBalancer(config, req.params.id!) ?? notFound("load balancer", req.params.id!);
  return json(200, { loadbalancer: loadBalancerView(config, lb) });
}

function listListenersRoute(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  return json(200, { listeners: listListeners(ctx.engine.config, engineRuntime(ctx.engine)) });
}

function getListener(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  const found = findListener(ctx.engine.config, req.params.id!) ?? notFound("listener", req.params.id!);
  return json(200, { listener: listenerView(found.lb, found.listener, engineRuntime(ctx.engine)) });
}

function listPoolsRoute(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  return json(200, { pools: listPools(ctx.engine.config) });
}

function getPool(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  const ref = findPool(ctx.engine.config, req.params.id!) ?? notFound("pool", req.params.id!);
  return json(200, { pool: poolView(ref.lb, ref.pool) });
}

function listHealthMonitorsRoute(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  return json(200, { healthmonitors: listHealthMonitors(ctx.engine.config) });
}

function getHealthMonitor(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  const found = findHealthMonitor(ctx.engine.config, req.params.id!) ?? notFound("health monitor", req.params.id!);
  return json(200, { healthmonitor: healthMonitorView(found.pool, found.hm) });
}

function listPoolMembers(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  const config = ctx.engine.config;
  const ref = findPool(config, req.params.pool_id!) ?? notFound("pool", req.params.pool_id!);
  return json(200, { members: membersView(config, ref, engineRuntime(ctx.engine)) });
}

export const CREATE_MEMBER_FIELDS = ["id", "name", "address", "protocol_port", "weight", "instance_id", "admin_state_up"] as const;
export const UPDATE_MEMBER_FIELDS = ["weight", "admin_state_up", "name"] as const;

/** `m-` + 8 random hex digits, not used by any member yet. */
export function generateMemberId(taken: ReadonlySet<string>, random: (n: number) => Buffer = randomBytes): string {
  for (;;) {
    const id = `m-${random(4).toString("hex")}`;
    if (!taken.has(id)) return id;
  }
}

async function createMember(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  const poolId = req.params.pool_id!;
  const before = ctx.engine.config;
  const ref = findPool(before, poolId) ?? notFound("pool", poolId);
  const input = unwrap(parseJson(req.body), "member");
  onlyFields(input, CREATE_MEMBER_FIELDS, "member", `a member takes ${CREATE_MEMBER_FIELDS.join(", ")}`);
  const member = { ...input, id: input.id ?? generateMemberId(memberIds(before)) };
  const rewrite = memberPathRewriter(before, poolId, ref.pool.members.length);
  const added = await memberChange(() => ctx.engine.addMember(poolId, member as never), rewrite, (problems) => clearerDuplicateId(problems, before, member.id));
  ctx.logger.info({ ev: "member_added", pool: poolId, member: added.id, address: `${added.address}:${added.protocol_port}`, weight: added.weight }, `member ${added.id} added to ${poolId}`);
  return json(201, { member: currentMember(ctx, poolId, added.id) });
}

function currentMember(ctx: AdminContext, poolId: string, memberId: string) {
  const config = ctx.engine.config;
  const found = findMember(config, poolId, memberId) ?? notFound("member", memberId);
  return memberView(config, found.lb, found.pool, found.member, engineRuntime(ctx.engine));
}

function getMember(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  findPool(ctx.engine.config, req.params.pool_id!) ?? notFound("pool", req.params.pool_id!);
  return json(200, { member: currentMember(ctx, req.params.pool_id!, req.params.member_id!) });
}

async function updateMember(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  const { pool_id: poolId, member_id: memberId } = req.params as { pool_id: string; member_id: string };
  const before = ctx.engine.config;
  const ref = findPool(before, poolId) ?? notFound("pool", poolId);
  const index = ref.pool.members.findIndex((m) => m.id === memberId);
  if (index < 0) notFound("member", memberId);
  const input = unwrap(parseJson(req.body), "member");
  onlyFields(
    input,
    UPDATE_MEMBER_FIELDS,
    "member",
    "an update takes weight, admin_state_up and name only (to change address or port, add a new member and delete this one)",
  );
  const patch = input as MemberPatch;
  const updated = await memberChange(() => ctx.engine.updateMember(poolId, memberId, patch), memberPathRewriter(before, poolId, index));
  ctx.logger.info({ ev: "member_updated", pool: poolId, member: memberId, change: patch }, `member ${memberId} of ${poolId} updated`);
  return json(200, { member: currentMember(ctx, poolId, updated.id) });
}

async function deleteMember(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  const { pool_id: poolId, member_id: memberId } = req.params as { pool_id: string; member_id: string };
  findPool(ctx.engine.config, poolId) ?? notFound("pool", poolId);
  const removed = await ctx.engine.removeMember(poolId, memberId);
  ctx.logger.info({ ev: "member_removed", pool: poolId, member: removed.id, address: `${removed.address}:${removed.protocol_port}` }, `member ${memberId} removed from ${poolId}`);
  return { status: 204 };
}

function reverseLookup(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, ["address", "instance_id", "pool_id", "loadbalancer_id"]);
  const filter = {
    ...(req.query.has("address") ? { address: addressParam(req.query, "address")! } : {}),
    ...(req.query.has("instance_id") ? { instance_id: stringParam(req.query, "instance_id")! } : {}),
    ...(req.query.has("pool_id") ? { pool_id: stringParam(req.query, "pool_id")! } : {}),
    ...(req.query.has("loadbalancer_id") ? { loadbalancer_id: stringParam(req.query, "loadbalancer_id")! } : {}),
  };
  return json(200, { members: findMemberships(ctx.engine.config, filter, engineRuntime(ctx.engine)) });
}

async function reloadRoute(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  if (req.body.toString("utf8").trim() !== "") {
    const body = parseJson(req.body);
    if (!isObject(body) || Object.keys(body).length) throw new HttpError(400, "LB4.INVALID_REQUEST", "POST /v3/elb/reload takes no body (or {}); it re-reads the config file");
  }
  let changes: ReloadChanges | void;
  try {
    changes = await ctx.reload();
  } catch (err) {
    if (err instanceof ConfigError) {
      const e = validationError(err, { conflicts: false, defaultCode: "LB4.CONFIG_INVALID", what: "invalid configuration file" });
      throw new HttpError(400, e.code, `reload refused, the running configuration stays; ${e.message}`, e.problems);
    }
    throw err;
  }
  const c = ctx.engine.config;
  const count = (f: (lb: Config["loadbalancers"][number]) => number) => c.loadbalancers.reduce((n, lb) => n + f(lb), 0);
  return json(200, {
    reload: {
      status: "ok",
      loadbalancers: c.loadbalancers.length,
      listeners: count((lb) => lb.listeners.length),
      pools: count((lb) => lb.pools.length),
      members: count((lb) => lb.pools.reduce((n, p) => n + p.members.length, 0)),
      ...(changes ? { changes } : {}),
    },
  });
}

// ---------------------------------------------------------------- dashboard (SPEC §12)

function live(ctx: AdminContext): Live {
  if (!ctx.live) throw new HttpError(501, "LB4.NOT_IMPLEMENTED", "the dashboard and the event stream are not available from this lb4 instance");
  return ctx.live;
}

function header(req: AdminRequest, name: string): string | undefined {
  const v = req.headers?.[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The page and its files, public (they hold no data; the API they read asks for the token). */
function dashboardFile(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  const assets = live(ctx).assets;
  const path = req.path.length > 1 ? req.path.replace(/\/$/, "") : req.path;
  const file = assets.files.get(path);
  if (!file) {
    if (path === "/" && assets.missing) throw new HttpError(503, "LB4.DASHBOARD_NOT_BUILT", `the dashboard is not available: ${assets.missing}`);
    throw new HttpError(404, "LB4.NOT_FOUND", `no such dashboard file: ${req.path}`);
  }
  const headers = assetHeaders(file);
  if (header(req, "if-none-match") === file.etag) return { status: 304, headers };
  return { status: 200, text: file.body, contentType: file.contentType, headers };
}

async function dashboardState(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  const [state, cluster] = await Promise.all([live(ctx).state(), engineCluster(ctx.engine)]);
  return json(200, { dashboard: cluster ? { ...state, cluster } : state });
}

/** A non-negative integer seq (`?since=`, Last-Event-ID), or undefined when not given. */
function seqParam(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  if (!/^\d{1,15}$/.test(value.trim())) throw new HttpError(400, "LB4.INVALID_REQUEST", `${name}: "${value}" is not an event seq (a non-negative integer)`);
  return Number(value.trim());
}

/** `GET /v3/elb/events`: Server-Sent Events; resumes after `?since=N` or the Last-Event-ID header. */
function eventsRoute(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, ["since"]);
  const l = live(ctx);
  const since = seqParam(req.query.get("since") ?? undefined, "since") ?? seqParam(header(req, "last-event-id"), "Last-Event-ID");
  if (l.full) {
    throw new HttpError(503, "LB4.TOO_MANY_STREAMS", `${l.maxStreams} event streams are open already; close a dashboard tab or an lb4 status --watch, then retry`, undefined, { "retry-after": "5" });
  }
  const contentType = "text/event-stream; charset=utf-8";
  // A proxy must pass events on as they come (nginx buffers otherwise).
  const headers = { "x-accel-buffering": "no" };
  if (req.method === "HEAD") return { status: 200, text: "", contentType, headers };
  return { status: 200, contentType, headers, stream: (sink) => l.open(sink, since) };
}

function healthz(ctx: AdminContext): AdminResponse {
  const c = ctx.engine.clusterStatus();
  return json(200, { status: "ok", dataplane: dataplanePath(), ...(c ? { store: c.store, revision: c.revision } : {}) });
}

/** `GET /v3/elb/instances` (SPEC §11): the live instances sharing this one's store; standalone: this one alone is not listed (404 explains). */
async function instancesRoute(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  const list = await ctx.engine.instances();
  if (!list) throw new HttpError(404, "LB4.NOT_CLUSTERED", "this lb4 runs standalone (no cluster: block in its config); there is no instance list");
  const self = ctx.engine.clusterStatus()!.instance_id;
  return json(200, { instances: list.map((i) => ({ ...i, self: i.instance_id === self })) });
}

/** `GET /v3/elb/workers`: the worker processes (SPEC §10); [] when lb4 runs as one process. */
function workersRoute(ctx: AdminContext, req: AdminRequest): AdminResponse {
  onlyQuery(req.query, []);
  return json(200, {
    workers: ctx.engine.workers().map((w) => ({ index: w.index, pid: w.pid, ready: w.ready, active_connections: w.connections, uptime_s: Math.floor(w.uptimeMs / 1000), dataplane: w.dataplane })),
    restarts: ctx.engine.dataPlane.restarts ?? 0,
  });
}

async function metricsRoute(ctx: AdminContext, req: AdminRequest): Promise<AdminResponse> {
  onlyQuery(req.query, []);
  if (!ctx.metrics) throw new HttpError(501, "LB4.NOT_IMPLEMENTED", "metrics are not available from this lb4 instance");
  const m = await ctx.metrics();
  return { status: 200, text: m.body, contentType: m.contentType };
}

// ---------------------------------------------------------------- route table

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

const table: Array<[string, string, Handler]> = [
  ["GET", "/healthz", healthz],
  ["GET", "/", dashboardFile],
  ["GET", "/dashboard/:file", dashboardFile],
  ["GET", "/v3/elb/dashboard", dashboardState],
  ["GET", "/v3/elb/events", eventsRoute],
  ["GET", "/metrics", metricsRoute],
  ["GET", "/v3/elb/workers", workersRoute],
  ["GET", "/v3/elb/instances", instancesRoute],
  ["POST", "/v3/elb/reload", reloadRoute],
  ["GET", "/v3/elb/loadbalancers", listLoadBalancersRoute],
  ["GET", "/v3/elb/loadbalancers/:id", getLoadBalancer],
  ["GET", "/v3/elb/listeners", listListenersRoute],
  ["GET", "/v3/elb/listeners/:id", getListener],
  ["GET", "/v3/elb/pools", listPoolsRoute],
  ["GET", "/v3/elb/pools/:id", getPool],
  ["GET", "/v3/elb/healthmonitors", listHealthMonitorsRoute],
  ["GET", "/v3/elb/healthmonitors/:id", getHealthMonitor],
  ["GET", "/v3/elb/pools/:pool_id/members", listPoolMembers],
  ["POST", "/v3/elb/pools/:pool_id/members", createMember],
  ["GET", "/v3/elb/pools/:pool_id/members/:member_id", getMember],
  ["PUT", "/v3/elb/pools/:pool_id/members/:member_id", updateMember],
  ["DELETE", "/v3/elb/pools/:pool_id/members/:member_id", deleteMember],
  ["GET", "/v3/elb/members", reverseLookup],
];

export const ROUTES: readonly Route[] = table.map(([method, pattern, handler]) => ({ method, segments: pattern.split("/").slice(1), handler }));

export type RouteMatch =
  | { kind: "ok"; handler: Handler; params: Record<string, string> }
  | { kind: "not_found" }
  | { kind: "method_not_allowed"; allow: string[] };

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const v = parts[i]!;
    if (p.startsWith(":")) {
      if (v === "") return undefined;
      params[p.slice(1)] = v;
    } else if (p !== v) return undefined;
  }
  return params;
}

/** Find the route for a method and path (one trailing slash is ignored; HEAD is served as GET). */
export function matchRoute(method: string, path: string): RouteMatch {
  const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
  let parts: string[];
  try {
    parts = trimmed.split("/").slice(1).map((s) => decodeURIComponent(s));
  } catch {
    return { kind: "not_found" };
  }
  const m = method === "HEAD" ? "GET" : method;
  const allow = new Set<string>();
  for (const r of ROUTES) {
    const params = matchSegments(r.segments, parts);
    if (!params) continue;
    if (r.method === m) return { kind: "ok", handler: r.handler, params };
    allow.add(r.method);
  }
  if (allow.size === 0) return { kind: "not_found" };
  if (allow.has("GET")) allow.add("HEAD");
  return { kind: "method_not_allowed", allow: [...allow].sort() };
}
