/**
 * An etcd v3 client over etcd's JSON gateway (`/v3/kv/*`, `/v3/watch`, `/v3/lease/*`) with
 * plain `fetch`. Why not the `etcd3` npm package: it would be lb4's first native-protocol
 * dependency (it brings @grpc/grpc-js), its last release (1.1.2) is from 2023, and the gateway
 * already serves everything lb4 needs, watch streams included. Pure transport: keys and
 * values are UTF-8 strings; no lb4 semantics live here.
 *
 * Failure rules:
 * - every call has a deadline (`timeoutMs`) for the whole call, failovers included;
 * - a call tries each endpoint at most once, starting with the last one that answered, and
 *   moves on after a connection error, a timeout or an "unavailable" answer (no leader);
 * - a transaction is not repeated once it may have reached etcd (a timeout, a cut after
 *   sending): it fails with `indeterminate` set instead, because a repeated compare-and-swap
 *   would report its own first commit as a conflict. Puts and deletes are repeated (same
 *   outcome, one more revision).
 */
import {
  Lb4Error,
  CONFIG_INVALID,
  STORE_BAD_RESPONSE,
  STORE_LEASE_NOT_FOUND,
  STORE_REJECTED,
  STORE_UNAVAILABLE,
  StoreError,
} from "../errors.js";
import {
  b64,
  deleteSchema,
  gatewayErrorSchema,
  leaseGrantSchema,
  leaseKeepAliveSchema,
  LineSplitter,
  parseAnswer,
  prefixEnd,
  putSchema,
  rangeSchema,
  readCapped,
  statusSchema,
  toKeyValue,
  txnSchema,
  watchMessageSchema,
  type KeyValue,
} from "./etcd-wire.js";

export type { KeyValue } from "./etcd-wire.js";

export interface EtcdClientOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Deadline of one call, failovers included (default 2000 ms). */
  timeoutMs?: number;
  /** Largest response or watch message accepted (default 16 MiB). */
  maxMessageBytes?: number;
  /** How often an open watch checks that its member still answers (default 5000 ms). */
  watchProbeMs?: number;
  fetch?: typeof fetch;
}

export interface RangeResult {
  /** The store revision the answer was read at. */
  revision: number;
  kvs: KeyValue[];
}

/** One comparison of a transaction; `op` defaults to "=". A missing key has createRevision, modRevision and version 0. */
export type Compare = { key: string; op?: "=" | "!=" | "<" | ">" } & (
  | { modRevision: number }
  | { createRevision: number }
  | { version: number }
  | { value: string }
);

export type TxnOp =
  | { type: "put"; key: string; value: string; lease?: string }
  | { type: "delete"; key: string; prefix?: boolean }
  | { type: "range"; key: string; prefix?: boolean };

export type TxnOpResult = { type: "put" } | { type: "delete"; deleted: number } | { type: "range"; kvs: KeyValue[] };

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export interface TxnResult {
  succeeded: boolean;
  /** The revision after the transaction (its own when it wrote). */
  revision: number;
  /** One result per op of the branch that ran. */
  responses: TxnOpResult[];
}

/** A change: the key as it is after it ("" value for a delete; `modRevision` is the change's own revision). */
export interface WatchEvent extends KeyValue {
  type: "put" | "delete";
}

export interface WatchOptions {
  /** First revision to deliver; absent = changes after the watch is created. */
  startRevision?: number;
  /**
   * Changes, in revision order, never split within one revision. `revision` is the last
   * delivered. A returned promise is awaited before the next message; a throw or rejection
   * goes to onError and the same events come again after a reconnect.
   */
  onEvents(events: WatchEvent[], revision: number): void | Promise<void>;
  /** The revision to resume from was compacted: the watch has stopped; read everything again and start a new one. */
  onCompacted(compactRevision: number): void;
  /** The stream failed; the watch reconnects by itself (from the last revision + 1). */
  onError(err: Lb4Error): void;
  /** The watch is (again) established on `endpoint`. */
  onReady?(endpoint: string): void;
}

export interface WatchHandle {
  /** The next revision the watch will deliver (or resume from). */
  readonly nextRevision: number | undefined;
  close(): void;
}

export interface MemberStatus {
  endpoint: string;
  memberId: string;
  /** Member id of the leader as this member knows it ("0" = none). */
  leader: string;
  revision: number;
  raftTerm: number;
  version: string;
}

/** grpc codes (the gateway's `code` field) meaning "not served here, try elsewhere". */
const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;

/** Connection errors that prove the request never reached the server. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "UND_ERR_CONNECT_TIMEOUT"]);

/** How a call may be repeated on another endpoint. */
type Retry = "always" | "only-unsent";

/** onEvents threw: the watch delivers the same changes again after a back-off. */
export const WATCH_HANDLER_FAILED = "LB4.STORE_WATCH_HANDLER_FAILED";

const WATCH_BACKOFF_MIN_MS = 100;
const WATCH_BACKOFF_MAX_MS = 2000;
/** How long an endpoint that refused a connection is tried last. */
const REFUSED_MEMORY_MS = 1000;

export class EtcdClient {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  readonly maxMessageBytes: number;
  readonly watchProbeMs: number;
  private readonly fetchImpl: typeof fetch;
  /** Index of the endpoint that answered last: calls start there. */
  private preferred = 0;
  /** Endpoints that refused a connection lately go last and get no share of a call's time. */
  private readonly refusedUntil = new Map<string, number>();

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Lb4Error(CONFIG_INVALID, "etcd client: give at least one endpoint, e.g. http://127.0.0.1:2379");
    this.endpoints = options.endpoints.map((e) => {
      let url: URL;
      try {
        url = new URL(e);
      } catch {
        throw new Lb4Error(CONFIG_INVALID, `etcd endpoint "${e}" is not a URL; write it as http://host:port`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Lb4Error(CONFIG_INVALID, `etcd endpoint "${e}" must use http or https`);
      return url.origin;
    });
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
    this.watchProbeMs = options.watchProbeMs ?? 5000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** One key (kvs has 0 or 1 entries). */
  async get(key: string): Promise<RangeResult> {
    return this.rangeRequest({ key: b64(key) });
  }

  /** Every key starting with `prefix`, in key order. */
  async range(prefix: string): Promise<RangeResult> {
    return this.rangeRequest({ key: b64(prefix), range_end: prefixEnd(prefix) });
  }

  private async rangeRequest(body: Record<string, unknown>): Promise<RangeResult> {
    const r = parseAnswer(rangeSchema, await this.call("/v3/kv/range", body, "always"), "range");
    return { revision: r.header.revision ?? 0, kvs: (r.kvs ?? []).map(toKeyValue) };
  }

  /** Write one key; returns the revision of the write. */
  async put(key: string, value: string, options: { lease?: string } = {}): Promise<{ revision: number }> {
    const body: Record<string, unknown> = { key: b64(key), value: b64(value) };
    if (options.lease !== undefined) body.lease = options.lease;
    const r = parseAnswer(putSchema, await this.call("/v3/kv/put", body, "always"), "put");
    return { revision: r.header.revision ?? 0 };
  }

  /** Delete one key, or every key under it with `prefix`. */
  async delete(key: string, options: { prefix?: boolean } = {}): Promise<{ revision: number; deleted: number }> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (options.prefix) body.range_end = prefixEnd(key);
    const r = parseAnswer(deleteSchema, await this.call("/v3/kv/deleterange", body, "always"), "delete");
    return { revision: r.header.revision ?? 0, deleted: r.deleted ?? 0 };
  }

  /** If every comparison holds, run `success`, else `failure`, as one atomic revision. */
  async txn(request: TxnRequest): Promise<TxnResult> {
    const failure = request.failure ?? [];
    const writes = [...request.success, ...failure].some((op) => op.type !== "range");
    const body = {
      compare: request.compare.map(compareBody),
      success: request.success.map(opBody),
      failure: failure.map(opBody),
    };
    const r = parseAnswer(txnSchema, await this.call("/v3/kv/txn", body, writes ? "only-unsent" : "always"), "txn");
    const succeeded = r.succeeded === true;
    const ops = succeeded ? request.success : failure;
    const answers = r.responses ?? [];
    const responses = ops.map((op, i): TxnOpResult => {
      const a = answers[i];
      if (op.type === "put") return { type: "put" };
      if (op.type === "delete") return { type: "delete", deleted: a?.response_delete_range?.deleted ?? 0 };
      return { type: "range", kvs: (a?.response_range?.kvs ?? []).map(toKeyValue) };
    });
    return { succeeded, revision: r.header.revision ?? 0, responses };
  }

  /** A lease of `ttlS` seconds (etcd raises very short ones to its minimum); returns its id. */
  async grantLease(ttlS: number): Promise<{ id: string; ttlS: number }> {
    // A repeated grant leaves at most an unused lease behind, which expires by itself.
    const r = parseAnswer(leaseGrantSchema, await this.call("/v3/lease/grant", { TTL: ttlS }, "always"), "lease grant");
    if (r.error) throw new StoreError(STORE_REJECTED, `lease grant refused: ${r.error}`);
    return { id: r.ID, ttlS: r.TTL ?? ttlS };
  }

  /** Renew a lease once (the caller repeats, e.g. every TTL/3); returns the TTL granted again. */
  async keepAlive(id: string): Promise<{ ttlS: number }> {
    // The gateway serves the keep-alive stream as one answer per request line.
    const text = await this.call("/v3/lease/keepalive", { ID: id }, "always");
    const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
    const r = parseAnswer(leaseKeepAliveSchema, line, "lease keep-alive");
    const ttl = r.result.TTL ?? 0;
    if (ttl <= 0) throw new StoreError(STORE_LEASE_NOT_FOUND, `lease ${id} has expired or was revoked; grant a new one and write its keys again`);
    return { ttlS: ttl };
  }

  /** Revoke a lease: its keys go at once. Revoking one that is already gone succeeds. */
  async revoke(id: string): Promise<void> {
    try {
      await this.call("/v3/lease/revoke", { ID: id }, "always");
    } catch (err) {
      if (err instanceof StoreError && err.code === STORE_LEASE_NOT_FOUND) return;
      throw err;
    }
  }

  /** What one member says about itself and its leader (no failover: it asks that member). */
  async status(endpoint: string): Promise<MemberStatus> {
    const origin = new URL(endpoint).origin;
    let text: string;
    try {
      text = await this.callOne(origin, "/v3/maintenance/status", {});
    } catch (err) {
      if (!(err instanceof Attempt)) throw err;
      throw new StoreError(STORE_UNAVAILABLE, `etcd at ${origin} did not report its status: ${err.reason}`, { tried: [{ endpoint: origin, reason: err.reason }], cause: err.cause });
    }
    const r = parseAnswer(statusSchema, text, "status");
    return {
      endpoint: origin,
      memberId: r.header.member_id ?? "0",
      leader: r.leader ?? "0",
      revision: r.header.revision ?? 0,
      raftTerm: r.raftTerm ?? 0,
      version: r.version ?? "",
    };
  }

  /** Watch every key under `prefix`; see WatchOptions for what is delivered when. */
  watch(prefix: string, options: WatchOptions): WatchHandle {
    return new Watch(this, prefix, options);
  }

  /** @internal The endpoints in the order a call should try them. */
  order(): string[] {
    const n = this.endpoints.length;
    const all = Array.from({ length: n }, (_, i) => this.endpoints[(this.preferred + i) % n]!);
    return [...all.filter((e) => !this.refused(e)), ...all.filter((e) => this.refused(e))];
  }

  /** @internal */
  refused(endpoint: string): boolean {
    return (this.refusedUntil.get(endpoint) ?? 0) > Date.now();
  }

  /** @internal Note an endpoint that refused the connection (it is tried last for a while). */
  unreachable(endpoint: string): void {
    this.refusedUntil.set(endpoint, Date.now() + REFUSED_MEMORY_MS);
  }

  /** @internal Remember which endpoint answered. */
  answered(endpoint: string): void {
    const i = this.endpoints.indexOf(endpoint);
    if (i >= 0) this.preferred = i;
    this.refusedUntil.delete(endpoint);
  }

  /** @internal Does this member answer at all (no quorum needed)? Throws when it does not. */
  async probe(endpoint: string): Promise<void> {
    await this.status(endpoint);
  }

  /** @internal */
  get fetcher(): typeof fetch {
    return this.fetchImpl;
  }

  /** POST `body` to `path`, failing over across endpoints within one deadline. */
  private async call(path: string, body: unknown, retry: Retry): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    const order = this.order();
    const tried: { endpoint: string; reason: string }[] = [];
    for (let i = 0; i < order.length; i++) {
      const endpoint = order[i]!;
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      // A call that may be repeated shares its time between the endpoints left (those that
      // refused lately get none), so one silent endpoint cannot use it all; one that may not
      // be repeated needs all of it.
      const left = order.slice(i);
      const sharing = this.refused(endpoint) ? left.length : left.filter((e) => !this.refused(e)).length;
      const budget = retry === "always" ? Math.max(1, Math.floor(remaining / sharing)) : remaining;
      try {
        const text = await this.callOne(endpoint, path, body, budget);
        this.answered(endpoint);
        return text;
      } catch (err) {
        if (!(err instanceof Attempt)) throw err;
        tried.push({ endpoint, reason: err.reason });
        if (err.refused) this.unreachable(endpoint);
        if (retry === "only-unsent" && !err.unsent) {
          throw new StoreError(
            STORE_UNAVAILABLE,
            `etcd at ${endpoint} did not confirm ${path} (${err.reason}); the write may have been applied: read the keys before repeating it`,
            { tried, indeterminate: true, cause: err.cause },
          );
        }
      }
    }
    for (const e of order.slice(tried.length)) tried.push({ endpoint: e, reason: "not tried: the deadline had passed" });
    throw new StoreError(
      STORE_UNAVAILABLE,
      `no etcd endpoint served ${path} within ${this.timeoutMs} ms (no endpoint reachable or no quorum): ` +
        tried.map((t) => `${t.endpoint}: ${t.reason}`).join("; ") +
        `; check that etcd runs and a majority of its members is up`,
      { tried },
    );
  }

  /**
   * One POST to one endpoint. Returns the body of a 2xx answer; throws Attempt for anything
   * worth trying elsewhere, StoreError for a definite refusal.
   */
  private async callOne(endpoint: string, path: string, body: unknown, budget = this.timeoutMs): Promise<string> {
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(endpoint + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(budget),
      });
      text = await readCapped(res, this.maxMessageBytes, path);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw Attempt.from(err, budget);
    }
    if (res.ok) return text;
    const e = gatewayErrorSchema.safeParse(safeJson(text));
    const message = (e.success ? (e.data.message ?? e.data.error) : undefined) ?? (text.trim().slice(0, 200) || `HTTP ${res.status}`);
    const code = e.success ? e.data.code : undefined;
    if (code === UNAVAILABLE || code === RESOURCE_EXHAUSTED || code === DEADLINE_EXCEEDED || res.status === 503) {
      // "request timed out" means the proposal may still commit; "no leader" and the like mean it was not taken.
      throw new Attempt(`${message} (HTTP ${res.status})`, !/timed out|deadline/i.test(message) && code !== DEADLINE_EXCEEDED);
    }
    if (code === NOT_FOUND && /lease not found/i.test(message)) {
      throw new StoreError(STORE_LEASE_NOT_FOUND, `etcd: ${message}; grant a new lease and write its keys again`);
    }
    throw new StoreError(STORE_REJECTED, `etcd at ${endpoint} refused ${path}: ${message} (HTTP ${res.status}${code === undefined ? "" : `, gRPC code ${code}`})`);
  }
}

/** One endpoint's failure that lets the call try the next one. */
class Attempt extends Error {
  constructor(
    readonly reason: string,
    /** True when the request surely never reached etcd (safe to repeat any write). */
    readonly unsent: boolean,
    /** True when the endpoint could not be reached at all (not merely "unavailable"). */
    readonly refused = false,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }

  static from(err: unknown, budgetMs: number): Attempt {
    if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
      return new Attempt(`no answer within ${budgetMs} ms`, false, false, { cause: err });
    }
    const code = causeCode(err);
    const msg = code ?? (err instanceof Error ? err.message : String(err));
    const unsent = code !== undefined && NOT_SENT.has(code);
    return new Attempt(`connection failed: ${msg}`, unsent, unsent, { cause: err });
  }
}

/** The system error code under fetch's "fetch failed" (undici nests it, sometimes in an AggregateError). */
function causeCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === "string") return c;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      const codes = errors.map(causeCode).filter((x): x is string => x !== undefined);
      if (codes.length > 0) return codes.every((x) => NOT_SENT.has(x)) ? codes[0] : codes.find((x) => !NOT_SENT.has(x));
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const RESULT = { "=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER" } as const;

function compareBody(c: Compare): Record<string, unknown> {
  const out: Record<string, unknown> = { key: b64(c.key), result: RESULT[c.op ?? "="] };
  if ("modRevision" in c) Object.assign(out, { target: "MOD", mod_revision: String(c.modRevision) });
  else if ("createRevision" in c) Object.assign(out, { target: "CREATE", create_revision: String(c.createRevision) });
  else if ("version" in c) Object.assign(out, { target: "VERSION", version: String(c.version) });
  else Object.assign(out, { target: "VALUE", value: b64(c.value) });
  return out;
}

function opBody(op: TxnOp): Record<string, unknown> {
  if (op.type === "put") {
    const put: Record<string, unknown> = { key: b64(op.key), value: b64(op.value) };
    if (op.lease !== undefined) put.lease = op.lease;
    return { request_put: put };
  }
  const range: Record<string, unknown> = { key: b64(op.key) };
  if (op.prefix) range.range_end = prefixEnd(op.key);
  return op.type === "delete" ? { request_delete_range: range } : { request_range: range };
}

/**
 * One watch: a long POST to /v3/watch whose answer is a stream of JSON lines. It reconnects
 * (next endpoint, bounded back-off) from the revision after the last one delivered, so a cut
 * stream never loses a change; a compacted revision stops it through onCompacted.
 */
class Watch implements WatchHandle {
  nextRevision: number | undefined;
  private closed = false;
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private backoffMs = WATCH_BACKOFF_MIN_MS;

  constructor(
    private readonly client: EtcdClient,
    private readonly prefix: string,
    private readonly options: WatchOptions,
  ) {
    this.nextRevision = options.startRevision;
    void this.run();
  }

  close(): void {
    this.closed = true;
    this.abort?.abort();
    clearTimeout(this.timer);
    this.wake?.();
  }

  private async run(): Promise<void> {
    let endpoint = this.client.order()[0]!;
    while (!this.closed) {
      try {
        await this.stream(endpoint);
        if (!this.closed) throw new StoreError(STORE_UNAVAILABLE, `the watch stream from ${endpoint} ended; reconnecting from revision ${this.nextRevision ?? "now"}`);
      } catch (err) {
        if (this.closed) break;
        this.report(err, endpoint);
      }
      endpoint = this.after(endpoint);
      await this.pause(this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, WATCH_BACKOFF_MAX_MS);
    }
    this.abort = undefined;
  }

  /** The endpoint to try after `failed`: the next one round the list that has not refused lately. */
  private after(failed: string): string {
    const eps = this.client.endpoints;
    const at = eps.indexOf(failed);
    for (let k = 1; k <= eps.length; k++) {
      const e = eps[(at + k) % eps.length]!;
      if (!this.client.refused(e)) return e;
    }
    return eps[(at + 1) % eps.length]!;
  }

  private report(err: unknown, endpoint: string): void {
    let e: Lb4Error;
    if (err instanceof Lb4Error) e = err;
    else {
      const a = Attempt.from(err, this.client.timeoutMs);
      if (a.refused) this.client.unreachable(endpoint);
      e = new StoreError(STORE_UNAVAILABLE, `the watch stream from ${endpoint} failed (${a.reason}); reconnecting from revision ${this.nextRevision ?? "now"}`, {
        tried: [{ endpoint, reason: a.reason }],
        cause: err,
      });
    }
    try {
      this.options.onError(e);
    } catch {
      // A throwing handler must not stop the watch.
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    }).then(() => {
      this.wake = undefined;
    });
  }

  /** One connection: returns when the stream ends, throws when it fails. */
  private async stream(endpoint: string): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const create: Record<string, unknown> = { key: b64(this.prefix), range_end: prefixEnd(this.prefix) };
    if (this.nextRevision !== undefined) create.start_revision = String(this.nextRevision);
    // Until etcd says "created", the call's deadline applies; after that the stream may be quiet for hours.
    let probe: NodeJS.Timeout | undefined;
    const connectTimer = setTimeout(() => abort.abort(new StoreError(STORE_UNAVAILABLE, `etcd at ${endpoint} did not open the watch within ${this.client.timeoutMs} ms`)), this.client.timeoutMs);
    try {
      const res = await this.client.fetcher(endpoint + "/v3/watch", {
        method: "POST",
        // hasleader: a member that loses its leader cancels the watch rather than go quiet.
        headers: { "content-type": "application/json", "grpc-metadata-hasleader": "true" },
        body: JSON.stringify({ create_request: create }),
        signal: abort.signal,
      });
      if (!res.ok || !res.body) {
        const text = await readCapped(res, 64 * 1024, "/v3/watch").catch(() => "");
        throw new StoreError(STORE_UNAVAILABLE, `etcd at ${endpoint} refused the watch: HTTP ${res.status} ${text.slice(0, 200)}`, { tried: [{ endpoint, reason: `HTTP ${res.status}` }] });
      }
      // A member that vanishes without closing the connection (host down, network cut) would
      // leave the stream quiet forever: ask it regularly whether it still answers.
      let probing = false;
      probe = setInterval(() => {
        if (probing) return;
        probing = true;
        this.client
          .probe(endpoint)
          .catch((err: unknown) => {
            const why = err instanceof Error ? err.message : String(err);
            abort.abort(new StoreError(STORE_UNAVAILABLE, `etcd at ${endpoint} stopped answering while the watch was open (${why}); reconnecting`, { tried: [{ endpoint, reason: why }] }));
          })
          .finally(() => {
            probing = false;
          });
      }, this.client.watchProbeMs);
      const splitter = new LineSplitter(this.client.maxMessageBytes, "/v3/watch");
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const line of splitter.push(value)) {
            if (await this.message(line, endpoint, connectTimer)) return;
          }
        }
        const last = splitter.end();
        if (last !== undefined) await this.message(last, endpoint, connectTimer);
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    } catch (err) {
      // An abort for the connect deadline carries its own reason.
      if (abort.signal.aborted && abort.signal.reason instanceof StoreError && !this.closed) throw abort.signal.reason;
      throw err;
    } finally {
      clearTimeout(connectTimer);
      clearInterval(probe);
      abort.abort();
    }
  }

  /** Handle one message; true when the watch is finished (compacted). */
  private async message(line: string, endpoint: string, connectTimer: NodeJS.Timeout): Promise<boolean> {
    if (this.closed) return true;
    const msg = parseAnswer(watchMessageSchema, line, "watch");
    if (msg.error || !msg.result) {
      const reason = msg.error?.message ?? "a message without a result";
      throw new StoreError(STORE_UNAVAILABLE, `etcd at ${endpoint} ended the watch: ${reason}`, { tried: [{ endpoint, reason }] });
    }
    const r = msg.result;
    if (r.canceled) {
      if (r.compact_revision !== undefined && r.compact_revision > 0) {
        this.closed = true;
        this.options.onCompacted(r.compact_revision);
        return true;
      }
      throw new StoreError(STORE_UNAVAILABLE, `etcd at ${endpoint} canceled the watch: ${r.cancel_reason ?? "no reason given"}`, { tried: [{ endpoint, reason: r.cancel_reason ?? "canceled" }] });
    }
    if (r.created) {
      clearTimeout(connectTimer);
      this.backoffMs = WATCH_BACKOFF_MIN_MS;
      if (this.nextRevision === undefined) {
        if (r.header?.revision === undefined) throw new StoreError(STORE_BAD_RESPONSE, `etcd at ${endpoint} created a watch without a revision`);
        this.nextRevision = r.header.revision + 1;
      }
      this.client.answered(endpoint);
      this.options.onReady?.(endpoint);
    }
    const events = r.events ?? [];
    if (events.length === 0) return false;
    const out: WatchEvent[] = [];
    for (const e of events) {
      const kv = toKeyValue(e.kv);
      // After a reconnect etcd starts at nextRevision; anything older was delivered already.
      if (this.nextRevision !== undefined && kv.modRevision < this.nextRevision) continue;
      const ev: WatchEvent = { type: e.type === "DELETE" ? "delete" : "put", ...kv };
      out.push(ev);
    }
    if (out.length === 0) return false;
    const revision = out[out.length - 1]!.modRevision;
    try {
      await this.options.onEvents(out, revision);
    } catch (err) {
      throw new Lb4Error(WATCH_HANDLER_FAILED, `onEvents failed on the changes through revision ${revision} (${err instanceof Error ? err.message : String(err)}); they come again after a reconnect`, { cause: err });
    }
    this.nextRevision = revision + 1;
    return this.closed;
  }
}
