/**
 * TCP listener and connection pair (SPEC §3). The client socket is accepted paused
 * (pauseOnConnect), so bytes it sends before the member is connected wait in the kernel —
 * held, not lost, and never written to a member that then fails. Forwarding is the
 * pipe() loop written out with shared handler functions (write; pause on a full buffer,
 * resume on 'drain'; end() on 'end' for half-close): the same per-chunk work as pipe(),
 * without its dozen closures and listeners per connection. Timers: none per connection —
 * the engine tick sweeps connect deadlines, idle time (by byte counters) and drain
 * deadlines for all of them at once.
 */
import net from "node:net";
import type { Logger } from "pino";
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { MemberRuntime } from "../model/member.js";
import type { TcpConn } from "./tcp-conn.js";
import type { PoolRuntime } from "../model/pool.js";
import { normaliseIp } from "../ip.js";
import type { EndReason } from "./stats.js";
import type { RateLimitedLog } from "./ratelimit.js";
import type { AccessLog } from "./access-log.js";
import { admit, limitOf } from "./admission.js";
import type { FdBudget } from "./fd-budget.js";
import { peerAddress } from "../platform/node-internals.js";
import { begin, endFailedTry, endShared, logConnection, SessionBase, startTry, sweepConnection, TcpListenerBase } from "./tcp-common.js";
import type { SharedAdmission } from "./shared-admission.js";

export { MAX_CONNECT_TRIES } from "./tcp-common.js";

/** Descriptors a connection holds: the client's and the upstream's. */
const FDS_PER_CONNECTION = 2;

export interface TcpTuning {
  connectTimeoutMs: number;
}

/** What a connection needs from the engine, shared by all connections of a listener. */
export interface TcpListenerDeps {
  lbId: string;
  vip: string;
  logger: Logger;
  accessLog: AccessLog;
  refusalLog: RateLimitedLog;
  clock: () => number;
  tuning: TcpTuning;
  /** Header to write first on the upstream connection (SPEC §7), or undefined. */
  headerFor?: (session: TcpConn, member: MemberRuntime) => Buffer | undefined;
  /** Local address for the upstream connection (cross-VPC SNAT, SPEC §6). */
  localAddressFor?: (member: MemberRuntime) => string | undefined;
  /** Called after a connection ends (scheduler hooks, persistence). */
  onSessionEnd?: (session: TcpConn) => void;
  /** Descriptor budget; default: the process-wide one (fd-budget.ts). */
  fdBudget?: FdBudget;
  /** In a worker: the instance-wide limit and persistence, decided by the primary. */
  shared?: SharedAdmission;
  /** Bind the port alone (default); false in a cluster worker, which shares the primary's socket (SCHED_NONE). */
  exclusive?: boolean;
}

const kSession = Symbol("lb4.session");
const kPeer = Symbol("lb4.peer");
type Tagged = net.Socket & { [kSession]?: TcpSession; [kPeer]?: Tagged };

// Shared handlers (one function object for all connections; `this` is the socket).
function onClientError(this: Tagged, err: Error): void {
  this[kSession]?.fail("client_error", err);
}
function onClientClose(this: Tagged): void {
  this[kSession]?.sideClosed(true);
}
function onUpstreamConnect(this: Tagged): void {
  this[kSession]?.connected();
}
function onUpstreamError(this: Tagged, err: Error): void {
  this[kSession]?.upstreamError(err);
}
function onUpstreamClose(this: Tagged): void {
  this[kSession]?.sideClosed(false);
}
// Forwarding (both directions): back-pressure bounds memory to one socket buffer per side.
function onData(this: Tagged, chunk: Buffer): void {
  if (!this[kPeer]!.write(chunk)) this.pause();
}
function onDrain(this: Tagged): void {
  this[kPeer]!.resume();
}
function onEnd(this: Tagged): void {
  const peer = this[kPeer]!;
  if (peer.destroyed) return;
  // Half-close: pass the FIN on, keep the other way open. When the peer's own FIN came
  // first and nothing is queued for it, both ways are done: close() delivers what the kernel
  // holds and then the FIN, which saves the shutdown() round trip (HAProxy closes the same way).
  if (peer.readableEnded && peer.writableLength === 0) peer.destroy();
  else peer.end();
}

export class TcpSession extends SessionBase implements TcpConn {
  /** Links in the listener's session list. */
  prev: TcpSession | undefined = undefined;
  next: TcpSession | undefined = undefined;
  readonly client: Tagged;
  readonly listener: TcpListener;
  upstream: Tagged | undefined;
  private isConnected = false;
  private clientClosed = false;
  private upstreamClosed = true;
  private ended = false;
  /** fail() ran: both sides are being closed, no more connect tries. */
  private failing = false;

  constructor(listener: TcpListener, client: net.Socket, ip: string, port: number, now: number) {
    super(ip, port, now);
    this.listener = listener;
    this.client = client as Tagged;
    // Both tags at once, so the socket reaches its final shape here (see peerAddress).
    this.client[kSession] = this;
    this.client[kPeer] = undefined;
    client.on("error", onClientError);
    client.on("close", onClientClose);
  }

  /**
   * Pick a member (avoiding failed ones) and connect; refuse the client when none is left.
   * `lastError`: why the previous try failed, logged if no member is left.
   */
  get localAddress(): string | undefined {
    return this.client.localAddress;
  }

  get localPort(): number | undefined {
    return this.client.localPort;
  }

  /** Bytes read from the client so far (live traffic). */
  get bytesIn(): number {
    return this.client.bytesRead;
  }

  /** Bytes written to the client so far: what the member sent (live traffic). */
  get bytesOut(): number {
    return this.client.bytesWritten;
  }

  /** Bytes lb4 holds for this connection in user space (read, not yet written on). */
  heldBytes(): number {
    const up = this.upstream;
    return this.client.readableLength + this.client.writableLength + (up ? up.readableLength + up.writableLength : 0);
  }

  connect(lastError?: Error): void {
    const l = this.listener;
    const member = startTry(this, lastError);
    if (!member) return;
    const local = l.deps.localAddressFor?.(member);
    const opts: net.TcpNetConnectOpts = { host: member.config.address, port: member.config.protocol_port, allowHalfOpen: true, noDelay: true };
    if (local) opts.localAddress = local;
    let up: Tagged;
    try {
      up = net.connect(opts) as Tagged;
    } catch (err) {
      // Errors (EMFILE included) come as 'error' events; a throw must still end the session.
      this.fail("connect_failed", err as Error);
      return;
    }
    this.upstream = up;
    this.upstreamClosed = false;
    up[kSession] = this;
    up[kPeer] = this.client;
    up.on("connect", onUpstreamConnect);
    up.on("error", onUpstreamError);
    up.on("close", onUpstreamClose);
    // The first try starts in the same turn as accept: its clock reading is reused.
    this.connectDeadline = (this.tries === 1 ? this.startedAt : l.deps.clock()) + l.deps.tuning.connectTimeoutMs;
  }

  connected(): void {
    const up = this.upstream!;
    this.isConnected = true;
    this.connectDeadline = Infinity;
    this.idleSince = this.listener.deps.clock();
    const header = this.listener.deps.headerFor?.(this, this.member!);
    if (header) up.write(header);
    const c = this.client;
    c[kPeer] = up;
    c.on("data", onData);
    c.on("drain", onDrain);
    c.on("end", onEnd);
    up.on("data", onData);
    up.on("drain", onDrain);
    up.on("end", onEnd);
    c.resume();
  }

  get done(): boolean {
    return this.failing || this.ended;
  }

  upstreamError(err: Error): void {
    if (this.isConnected || this.ended) {
      this.fail("member_error", err);
      return;
    }
    this.retry(err);
  }

  /** The member refused or timed out before connecting: try another one (SPEC §3). */
  retry(err: Error): void {
    const l = this.listener;
    const up = this.upstream;
    const failed = this.member;
    if (!up || !failed || this.ended) return;
    up[kSession] = undefined;
    up.destroy();
    this.upstream = undefined;
    this.upstreamClosed = true;
    const again = endFailedTry(this, failed, err);
    if (this.clientClosed) {
      this.finish();
      return;
    }
    // fail() already closed the client (its 'close' finishes the session): no new try for it.
    if (this.failing) return;
    if (!again) {
      this.fail("connect_failed", err);
      return;
    }
    l.stats.retries++;
    this.connect(err);
  }

  /** Close both sides now. */
  fail(reason: EndReason, err?: Error, refused = false): void {
    if (this.reason === "closed" || reason === "shutdown") this.reason = reason;
    if (err && !this.error) this.error = err;
    this.failing = true;
    this.connectDeadline = Infinity;
    this.client.destroy();
    this.upstream?.destroy();
    if (refused && !this.ended) {
      // Never counted as a served connection; nothing will call finish().
      this.ended = true;
      const l = this.listener;
      l.stats.active--;
      l.budget.give(FDS_PER_CONNECTION);
      this.client[kSession] = undefined;
      l.sessions.delete(this);
      endShared(this);
    }
  }

  sideClosed(client: boolean): void {
    if (client) this.clientClosed = true;
    else this.upstreamClosed = true;
    if (this.clientClosed && this.upstreamClosed) {
      this.finish();
      return;
    }
    // One side is gone. If it went down hard, take the other down; if it closed cleanly its
    // 'end' has already ended the other's write side, which flushes and then closes.
    const other = client ? this.upstream : this.client;
    if (!other) return;
    const closed = client ? this.client : this.upstream;
    if (closed?.errored || !this.isConnected) other.destroy();
    else if (!other.writableEnded) other.end();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    const l = this.listener;
    l.sessions.delete(this);
    l.stats.active--;
    l.budget.give(FDS_PER_CONNECTION);
    const c = this.client;
    c[kSession] = undefined;
    if (this.upstream) this.upstream[kSession] = undefined;
    const m = this.member;
    if (m) m.active--;
    endShared(this);
    // Read and added in the same turn the session leaves the list: traffic() never counts it twice.
    const bytesIn = c.bytesRead;
    const bytesOut = c.bytesWritten;
    l.stats.bytesIn += bytesIn;
    l.stats.bytesOut += bytesOut;
    l.deps.onSessionEnd?.(this);
    logConnection(l, this, m, bytesIn, bytesOut);
  }

  /** Engine tick: connect timeout, idle timeout, drain deadline. */
  sweep(now: number, idleMs: number): void {
    if (!this.failing) sweepConnection(this, this.isConnected, this.client.bytesRead + (this.upstream ? this.upstream.bytesRead : 0), now, idleMs);
  }
}

export class TcpListener extends TcpListenerBase<TcpSession> {
  constructor(config: ListenerConfig, pool: PoolRuntime, acl: AccessList, deps: TcpListenerDeps) {
    super(config, pool, acl, deps);
    this.server.on("connection", (s: net.Socket) => this.accept(s));
  }

  protected onListening(): void {
    // After listen, errors are accept errors.
    this.server.on("error", (err: NodeJS.ErrnoException) => this.acceptFailed(err.code ?? err.message));
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const peer = peerAddress(socket);
    const ip = normaliseIp(peer.address);
    if (!admit(this, ip, this.stats.active, limitOf(this.config), FDS_PER_CONNECTION)) {
      socket.destroy();
      return;
    }
    if (this.noDelayPerSocket) socket.setNoDelay(true);
    this.stats.active++;
    const s = new TcpSession(this, socket, ip, peer.port, this.deps.clock());
    this.sessions.add(s);
    begin(s);
  }
}
