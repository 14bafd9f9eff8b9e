/**
 * The rules both TCP data planes (net.Socket and libuv handles) share, in one place: what the
 * sweep does to a connection, and the access-log record of a finished one.
 */
import net from "node:net";
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { MemberRuntime } from "../model/member.js";
import type { PoolRuntime } from "../model/pool.js";
import { setListenerNoDelay } from "../platform/node-internals.js";
import type { AccessLog } from "./access-log.js";
import { sharedFdBudget, type FdBudget } from "./fd-budget.js";
import { IntrusiveList, type Linked } from "./intrusive-list.js";
import type { Listener } from "./listener.js";
import { ListenerStats, type EndReason, type Traffic } from "./stats.js";
import type { TcpListenerDeps } from "./tcp.js";
import { countHandover, pickMember, refuseLimit, type Admitting } from "./admission.js";
import type { ClientInfo } from "../scheduling/types.js";
import { isEligible } from "../scheduling/weights.js";
import { CLAIM_ASKED, CLAIM_HELD, CLAIM_NONE, type ClaimingConn, type SharedAdmission } from "./shared-admission.js";

/** At most this many connect attempts per client: the first and 2 retries (SPEC §3). */
export const MAX_CONNECT_TRIES = 3;

/** A connection being placed on a member, on either data plane. */
export interface TryingConn extends ClientInfo {
  readonly listener: Admitting & { readonly deps: Pick<TcpListenerDeps, "logger" | "refusalLog" | "shared"> };
  tries: number;
  member: MemberRuntime | undefined;
  avoid: MemberRuntime[] | undefined;
  /** The member the instance-wide persistence table gave (workers only), tried first. */
  sticky: MemberRuntime | undefined;
  fail(reason: EndReason, err?: Error, refused?: boolean): void;
}

/** A new connection on either data plane, before its first try. */
export interface StartingConn extends TryingConn, Omit<ClaimingConn, "listener"> {
  /** fail() ran or the session finished. */
  readonly done: boolean;
  connect(lastError?: Error): void;
}

/**
 * Start a new connection (SPEC §10 in a worker): a slot of the listener's limit first (from
 * the worker's lease, asking the primary only when it holds none free), then, for a
 * persistent pool, the member the instance's table holds for the client; then connect. The
 * client is not read meanwhile; its bytes wait in the kernel.
 */
export function begin(s: StartingConn): void {
  const shared = s.listener.deps.shared;
  if (shared === undefined) {
    s.connect();
    return;
  }
  if (s.listener.config.connection_limit > 0) {
    s.claim = CLAIM_ASKED;
    shared.acquire(s); // may answer at once
    return;
  }
  afterSlot(s, shared);
}

function afterSlot(s: StartingConn, shared: SharedAdmission): void {
  if (s.listener.pool.config.session_persistence) shared.claim(s);
  else s.connect();
}

/**
 * What a TCP session holds on either data plane besides its sockets: the client, the tries
 * and members, the instance-wide claims, the deadlines, and how it ended. Each plane's
 * session adds its own sockets or handles, and how it connects and closes.
 */
export abstract class SessionBase implements StartingConn {
  abstract readonly listener: StartingConn["listener"];
  readonly ip: string;
  readonly port: number;
  member: MemberRuntime | undefined = undefined;
  tries = 0;
  /** Members that failed for this connection; allocated on the first failure only. */
  avoid: MemberRuntime[] | undefined = undefined;
  sticky: MemberRuntime | undefined = undefined;
  claim = CLAIM_NONE;
  readonly startedAt: number;
  /** Connect deadline while connecting; Infinity once connected. */
  connectDeadline = Infinity;
  idleSince: number;
  lastBytes = 0;
  reason: EndReason = "closed";
  error: Error | undefined = undefined;

  constructor(ip: string, port: number, now: number) {
    this.ip = ip;
    this.port = port;
    this.startedAt = now;
    this.idleSince = now;
  }

  /** fail() ran or the session finished. */
  abstract readonly done: boolean;
  abstract connect(lastError?: Error): void;
  abstract fail(reason: EndReason, err?: Error, refused?: boolean): void;

  /** The answer to begin()'s slot request. */
  slotted(ok: boolean): void {
    const l = this.listener;
    const shared = l.deps.shared!;
    if (this.done) {
      // Closed while waiting (shutdown): give back the slot it was just granted.
      this.claim = CLAIM_NONE;
      if (ok) shared.releaseSlot(l.config.id);
      return;
    }
    if (!ok) {
      this.claim = CLAIM_NONE;
      refuseLimit(l, this.ip);
      this.fail("closed", undefined, true);
      return;
    }
    this.claim = CLAIM_HELD;
    afterSlot(this, shared);
  }

  /** The persistence table's answer: try that member first. */
  claimed(memberId: string | undefined): void {
    if (this.done) return;
    if (memberId !== undefined) this.sticky = this.listener.pool.members.get(memberId);
    this.connect();
  }
}

/** A connection ended (served or refused): its slot of the instance's limit goes back. */
export function endShared(s: TryingConn & { claim: number }): void {
  if (s.claim !== CLAIM_HELD) return;
  s.claim = CLAIM_NONE;
  s.listener.deps.shared!.releaseSlot(s.listener.config.id);
}

/**
 * The next connect try (SPEC §3): a member not failed yet, counted as handed over; none left
 * closes the client (a no_member refusal on the first try, connect_failed after).
 */
export function startTry(s: TryingConn, lastError: Error | undefined): MemberRuntime | undefined {
  const l = s.listener;
  const first = s.tries === 0;
  const sticky = s.sticky;
  const member = first && sticky !== undefined && !sticky.removed && isEligible(sticky) ? sticky : pickMember(l, s, s.avoid, first);
  if (!member) {
    s.fail(first ? "closed" : "connect_failed", lastError, first);
    return undefined;
  }
  // A worker placed a persistent client elsewhere than the instance's table says: tell it.
  if (member !== sticky && l.deps.shared !== undefined && l.pool.config.session_persistence) l.deps.shared.stick(l.pool.id, s.ip, member.id);
  countHandover(l, member, first);
  s.tries++;
  s.member = member;
  return member;
}

/**
 * A try failed before connecting: the member is released and avoided from now on, the error
 * counted and logged. True when another try is allowed; the caller has closed its upstream.
 */
export function endFailedTry(s: TryingConn, failed: MemberRuntime, err: NodeJS.ErrnoException): boolean {
  const l = s.listener;
  failed.active--;
  s.member = undefined;
  (s.avoid ??= []).push(failed);
  l.stats.connectErrors++;
  const code = err.code;
  l.deps.logger.debug({ listener: l.config.id, member: failed.id, err: code ?? err.message }, "member connect failed");
  if (code === "EMFILE" || code === "ENFILE") {
    // Not the member's fault: this process is out of descriptors (something outside the data plane holds them).
    l.deps.refusalLog.event("fd_exhausted", "fd_exhausted", { listener: l.config.id, err: code, msg: `cannot open an upstream connection (${code}): raise ulimit -n` });
  }
  return s.tries < MAX_CONNECT_TRIES;
}

export const SWEEP_KEEP = 0;
/** The connect deadline passed: try another member (SPEC §3). */
export const SWEEP_RETRY = 1;
/** The member's drain deadline passed (SPEC §4). */
export const SWEEP_DRAIN = 2;
/** No byte either way for keepalive_timeout (SPEC §3). */
export const SWEEP_IDLE = 3;

export interface Sweepable {
  connectDeadline: number;
  idleSince: number;
  lastBytes: number;
  member: MemberRuntime | undefined;
}

/** The sweep's verdict for one connection; `bytes` = bytes read on both sides so far. Updates the idle clock. */
export function sweepVerdict(s: Sweepable, connected: boolean, bytes: number, now: number, idleMs: number): number {
  if (s.connectDeadline <= now) {
    s.connectDeadline = Infinity;
    return SWEEP_RETRY;
  }
  if (!connected) return SWEEP_KEEP;
  if (s.member && s.member.drainDeadline <= now) return SWEEP_DRAIN;
  if (bytes !== s.lastBytes) {
    s.lastBytes = bytes;
    s.idleSince = now;
    return SWEEP_KEEP;
  }
  return now - s.idleSince >= idleMs ? SWEEP_IDLE : SWEEP_KEEP;
}

export function connectTimeoutError(): NodeJS.ErrnoException {
  return Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" });
}

/** A connection the sweep can act on. */
export interface SweptConn extends Sweepable {
  readonly listener: { readonly stats: ListenerStats };
  retry(err: NodeJS.ErrnoException): void;
  fail(reason: EndReason): void;
}

/** The engine tick for one connection: connect timeout → retry, drain deadline, idle timeout. */
export function sweepConnection(s: SweptConn, connected: boolean, bytes: number, now: number, idleMs: number): void {
  switch (sweepVerdict(s, connected, bytes, now, idleMs)) {
    case SWEEP_RETRY:
      s.retry(connectTimeoutError());
      return;
    case SWEEP_DRAIN:
      s.listener.stats.drainClosed++;
      s.fail("drained");
      return;
    case SWEEP_IDLE:
      s.listener.stats.idleClosed++;
      s.fail("idle_timeout");
  }
}

/** What the access-log line of a finished connection reads. */
export interface FinishedConn {
  readonly ip: string;
  readonly port: number;
  readonly startedAt: number;
  readonly reason: EndReason;
  readonly error: Error | undefined;
}

export interface LoggingListener {
  accessLog: boolean;
  logPrefix: string;
  readonly deps: { accessLog: AccessLog; clock: () => number };
}

/** Fill the access-log record of a finished connection (a few field stores; formatted later in a batch). */
export function logConnection(l: LoggingListener, c: FinishedConn, m: MemberRuntime | undefined, bytesIn: number, bytesOut: number): void {
  if (!l.accessLog) return;
  const log = l.deps.accessLog;
  const r = log.next();
  r.udp = false;
  r.prefix = l.logPrefix;
  r.ip = c.ip;
  r.port = c.port;
  r.member = m ? m.logField : '"member":null,"member_id":null';
  r.bytesIn = bytesIn;
  r.bytesOut = bytesOut;
  const end = l.deps.clock();
  r.endedAt = end;
  r.durationMs = Math.round(end - c.startedAt);
  r.end = c.reason;
  r.error = c.error ? ((c.error as NodeJS.ErrnoException).code ?? c.error.message) : "";
  log.commit();
}

/** What a listener needs of its sessions, on either data plane. */
export interface ListenerSession<S> extends Linked<S> {
  sweep(now: number, idleMs: number): void;
  fail(reason: EndReason): void;
  /** Bytes read from the client / from the member so far (live traffic). */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * The TCP listener both data planes share: a net.Server for listen and close (so cluster's
 * SCHED_NONE works too), the settings a snapshot swaps in place, the sweep, stopping and the
 * live traffic walk. Subclasses accept: through net.Socket, or by taking over the handle.
 */
export abstract class TcpListenerBase<S extends ListenerSession<S>> implements Listener {
  readonly server: net.Server;
  readonly stats = new ListenerStats();
  readonly sessions = new IntrusiveList<S>();
  config: ListenerConfig;
  pool: PoolRuntime;
  acl: AccessList;
  deps: TcpListenerDeps;
  /** Cached `logger.isLevelEnabled("info")`, refreshed on reload. */
  accessLog: boolean;
  /** The constant head of this listener's access-log lines. */
  logPrefix: string;
  protected closing = false;
  /** TCP_NODELAY must be set on each accepted socket (it could not be inherited). */
  protected noDelayPerSocket = true;
  readonly budget: FdBudget;

  constructor(config: ListenerConfig, pool: PoolRuntime, acl: AccessList, deps: TcpListenerDeps) {
    this.config = config;
    this.pool = pool;
    this.acl = acl;
    this.deps = deps;
    this.budget = deps.fdBudget ?? sharedFdBudget();
    this.accessLog = deps.logger.isLevelEnabled("info");
    this.logPrefix = `"ev":"tcp_conn","lb":"${deps.lbId}","listener":"${config.id}"`;
    this.server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  }

  /** Once listening: how connections are taken. Throwing closes the socket and fails listen(). */
  protected abstract onListening(): void;

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen({ host: this.deps.vip, port: this.config.protocol_port, exclusive: this.deps.exclusive ?? true }, () => {
        this.server.off("error", onError);
        try {
          this.onListening();
        } catch (err) {
          this.server.close();
          reject(err as Error);
          return;
        }
        this.noDelayPerSocket = !setListenerNoDelay(this.server);
        resolve();
      });
    });
  }

  /** An accept error (EMFILE/ENFILE when libuv cannot shed the connection itself): logged once a second at most, with a count of the rest. */
  protected acceptFailed(code: string): void {
    this.deps.refusalLog.event("accept_error", `accept:${this.config.id}`, {
      listener: this.config.id,
      err: code,
      msg: `accept failed (${code}); ${code === "EMFILE" || code === "ENFILE" ? "out of file descriptors: raise ulimit -n or lower connection_limit" : "the listener keeps running"}`,
    });
  }

  sweep(now: number): void {
    const idleMs = this.config.keepalive_timeout * 1000;
    this.sessions.forEach((s) => s.sweep(now, idleMs));
  }

  /**
   * Stop accepting; open connections continue. Resolves once the port is released, not when
   * server.close()'s callback fires (that waits for every open connection to end).
   */
  stopAccepting(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      if (this.server.listening) this.server.close();
    }
    return Promise.resolve();
  }

  /** Close every open connection now. */
  destroyAll(): void {
    this.sessions.forEach((s) => s.fail("shutdown"));
  }

  /**
   * Bytes so far, open connections included, read at scrape time from the connections' own
   * counters (no per-chunk work). Monotonic: a session's bytes move from the walk into
   * `stats` in the turn it ends.
   */
  traffic(): Traffic {
    let bytesIn = this.stats.bytesIn;
    let bytesOut = this.stats.bytesOut;
    this.sessions.forEach((s) => {
      bytesIn += s.bytesIn;
      bytesOut += s.bytesOut;
    });
    return { bytesIn, bytesOut, datagramsIn: 0, datagramsOut: 0 };
  }

  get address(): net.AddressInfo | undefined {
    const a = this.server.address();
    return a && typeof a === "object" ? a : undefined;
  }
}
