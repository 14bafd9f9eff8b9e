/**
 * The rules both TCP data planes (net.Socket and libuv handles) share, in one place: what the
 * sweep does to a connection, and the access-log record of a finished one.
 */
import type { MemberRuntime } from "../model/member.js";
import type { AccessLog } from "./access-log.js";
import type { EndReason, ListenerStats } from "./stats.js";

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
