/**
 * The TCP data plane on libuv stream handles (platform/stream-handles.ts): the behaviour of
 * tcp.ts (SPEC §3, §6–§7) without net.Socket. net.Server keeps listen and close; its
 * listening handle's onconnection is taken over, so an accepted connection is a bare handle.
 *
 * Per connection: two handles tagged with a few fields, one session object, and a pooled
 * read buffer per handle once connected. The client is not read until the member is up, so
 * its early bytes wait in the kernel. Each read is written straight to the other handle; a
 * write libuv had to queue owns the buffer it points into until it completes, and the
 * reader switches to another pooled buffer meanwhile. A side stops reading while the
 * other's write queue is above HIGH_WATER, or while MAX_PINNED of its buffers are held by
 * queued writes, and starts again when that drains, so lb4 holds at most about HIGH_WATER
 * plus one buffer per direction. EOF on one side shuts the other's
 * write side down after what is queued (half-close); when both sides reached EOF with
 * nothing queued, both are closed at once (close() sends the FIN, one shutdown() fewer).
 * Timers: none per connection; sweep() on the engine tick, as in tcp.ts.
 */
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { PoolRuntime } from "../model/pool.js";
import { normaliseIp } from "../ip.js";
import {
  errnoError,
  streamHandles,
  takeOverConnections,
  UV_EOF,
  type ConnectReq,
  type ShutdownReq,
  type SockAddr,
  type StreamHandles,
  type TcpHandle,
  type WriteReq,
} from "../platform/stream-handles.js";
import { admit, limitOf } from "./admission.js";
import type { EndReason } from "./stats.js";
import type { TcpConn } from "./tcp-conn.js";
import type { TcpListenerDeps } from "./tcp.js";
import { begin, endFailedTry, endShared, logConnection, SessionBase, startTry, sweepConnection, TcpListenerBase } from "./tcp-common.js";

const FDS_PER_CONNECTION = 2;
/** Bytes of one read buffer (one per connected handle). */
export const READ_BUFFER_BYTES = 64 * 1024;
/** A source stops reading while its destination has more than this queued in libuv. */
export const HIGH_WATER = 64 * 1024;
/**
 * A source also stops reading while this many of its read buffers are held by queued writes:
 * a queued write keeps its whole buffer however few bytes it holds, so small reads alone
 * would pin a buffer each long before HIGH_WATER bytes are queued.
 */
export const MAX_PINNED = 2;
/** Spare read buffers kept for reuse; beyond this they go to the GC. */
const POOL_MAX = 256;

// Handle state bits.
const EOF = 1; // read side reached EOF
const SHUT = 2; // write side shut down (FIN sent after what was queued)
const CLOSED = 4;
const PAUSED = 8; // reading stopped for back-pressure
const STARTED = 16; // member side: reading was started while the connect was pending

/** A handle with the fields the data plane tags it with. */
interface Tagged extends TcpHandle {
  sess: HandleSession | undefined;
  peer: Tagged | undefined;
  ubuf: Buffer | undefined;
  /** Read buffers of this handle held by queued writes to the peer. */
  pinned: number;
  st: number;
  /** Bytes read from this handle. */
  nread: number;
  isClient: boolean;
}

interface WReq extends WriteReq {
  /** The handle whose read is being written (undefined: a header). */
  src: Tagged | undefined;
  /** The bytes being written, kept alive while queued. */
  buf: Uint8Array | undefined;
  /** The pooled read buffer `buf` lies in, back to the pool on completion. */
  ubuf: Buffer | undefined;
}

let hb: StreamHandles | undefined;
let state: Int32Array;
let kRead = 0;
let kOffset = 0;
let kAsync = 0;

function bindings(): StreamHandles {
  if (!hb) {
    hb = streamHandles();
    if (!hb) throw new Error("the handle data plane is not available on this Node (see platform/stream-handles.ts)");
    state = hb.state;
    kRead = hb.kReadBytesOrError;
    kOffset = hb.kArrayBufferOffset;
    kAsync = hb.kLastWriteWasAsync;
  }
  return hb;
}

const pool: Buffer[] = [];
function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
}
function giveBuffer(b: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

/** Reused for every write that completes at once; replaced when one is queued. */
let wreq: WReq | undefined;
function newWriteReq(): WReq {
  const r = bindings().newWriteReq() as WReq;
  r.oncomplete = afterWrite;
  r.src = undefined;
  r.buf = undefined;
  r.ubuf = undefined;
  return r;
}

function tag(h: TcpHandle, sess: HandleSession, isClient: boolean): Tagged {
  const t = h as Tagged;
  t.sess = sess;
  t.peer = undefined;
  t.ubuf = undefined;
  t.pinned = 0;
  t.st = 0;
  t.nread = 0;
  t.isClient = isClient;
  t.onread = onRead as TcpHandle["onread"];
  return t;
}

/** Close a handle (once); its read buffer goes back to the pool, as no read follows close(). */
function closeHandle(h: Tagged): void {
  if (h.st & CLOSED) return;
  h.st |= CLOSED;
  h.close();
  const b = h.ubuf;
  if (b !== undefined) {
    h.ubuf = undefined;
    giveBuffer(b);
  }
}

// Shared callbacks: one function object for every connection; `this` is the handle or request.
function onRead(this: Tagged, ab: ArrayBuffer | undefined): Buffer | undefined {
  const n = state[kRead]!;
  const src = this;
  if (n > 0) {
    src.nread += n;
    const dst = src.peer!;
    if (dst.st & CLOSED) return undefined;
    const ubuf = src.ubuf;
    // A plain view: Buffer#subarray costs several times more per read.
    const buf = ubuf !== undefined ? new Uint8Array(ubuf.buffer, ubuf.byteOffset, n) : new Uint8Array(ab!, state[kOffset]!, n);
    const req = wreq!;
    const err = dst.writeBuffer(req, buf);
    if (err !== 0) {
      src.sess!.ioFailed(dst, err, "write");
      return undefined;
    }
    if (state[kAsync] !== 0) {
      // Queued: the write points into `buf` until it completes. Keep it, and read into another buffer.
      req.src = src;
      req.buf = buf;
      wreq = newWriteReq();
      let next: Buffer | undefined;
      if (ubuf !== undefined) {
        req.ubuf = ubuf;
        src.pinned++;
        next = src.ubuf = takeBuffer();
      }
      if (dst.writeQueueSize > HIGH_WATER || src.pinned >= MAX_PINNED) {
        src.st |= PAUSED;
        src.readStop();
      }
      return next;
    }
    return undefined;
  }
  if (n === 0) return undefined;
  if (n === UV_EOF) src.sess!.readEnded(src);
  else src.sess!.ioFailed(src, n, "read");
  return undefined;
}

function afterWrite(this: WReq, status: number, dst: TcpHandle): void {
  const src = this.src;
  const ub = this.ubuf;
  this.src = undefined;
  this.buf = undefined;
  this.ubuf = undefined;
  if (ub !== undefined) {
    giveBuffer(ub);
    src!.pinned--;
  }
  const d = dst as Tagged;
  if (d.st & CLOSED) return; // cancelled by close
  if (status < 0) {
    d.sess?.ioFailed(d, status, "write");
    return;
  }
  if (src !== undefined && (src.st & (PAUSED | CLOSED)) === PAUSED && d.writeQueueSize <= HIGH_WATER && src.pinned < MAX_PINNED) {
    src.st &= ~PAUSED;
    const e = src.readStart();
    if (e !== 0) src.sess?.ioFailed(src, e, "read");
  }
}

function afterShutdown(this: ShutdownReq, status: number, handle: TcpHandle): void {
  const h = handle as Tagged;
  if (h.st & CLOSED) return;
  if (status < 0) {
    h.sess?.ioFailed(h, status, "shutdown");
    return;
  }
  h.st |= SHUT;
  h.sess?.sideDone(h);
}

function afterConnect(this: ConnectReq, status: number, handle: TcpHandle): void {
  const up = handle as Tagged;
  const s = up.sess;
  if (s === undefined || s.upstream !== up) {
    closeHandle(up); // given up on (timeout, retry, shutdown) before it completed
    return;
  }
  if (status !== 0) s.retry(errnoError(status, "connect"));
  else s.connected();
}

function onConnection(this: object, err: number, handle: TcpHandle | undefined): void {
  const l = (this as { lb4Owner?: HandleTcpListener }).lb4Owner!;
  if (err !== 0 || handle === undefined) l.acceptErrno(err);
  else l.accept(handle);
}

/** What the direction src → dst holds (HandleSession.heldBytes). */
function held(src: Tagged | undefined, dst: Tagged): number {
  const queued = dst.st & CLOSED ? 0 : dst.writeQueueSize;
  const pinned = src ? src.pinned * READ_BUFFER_BYTES : 0;
  return queued > pinned ? queued : pinned;
}

/** Filled by getpeername/getsockname; read at once. */
const addrOut: SockAddr = { address: "", family: "", port: 0 };

export class HandleSession extends SessionBase implements TcpConn {
  prev: HandleSession | undefined = undefined;
  next: HandleSession | undefined = undefined;
  readonly client: Tagged;
  readonly listener: HandleTcpListener;
  upstream: Tagged | undefined = undefined;
  private isConnected = false;
  private ended = false;
  private local: SockAddr | undefined = undefined;

  constructor(listener: HandleTcpListener, client: TcpHandle, ip: string, port: number, now: number) {
    super(ip, port, now);
    this.listener = listener;
    this.client = tag(client, this, true);
  }

  private sockname(): SockAddr | undefined {
    if (this.local === undefined && !(this.client.st & CLOSED) && this.client.getsockname(addrOut) === 0) this.local = { ...addrOut };
    return this.local;
  }

  get localAddress(): string | undefined {
    return this.sockname()?.address;
  }

  get localPort(): number | undefined {
    return this.sockname()?.port;
  }

  /**
   * Bytes lb4 holds for this connection in user space, per direction: what libuv has queued
   * to write, or the read buffers those writes hold when that is more.
   */
  heldBytes(): number {
    const c = this.client;
    const up = this.upstream;
    return held(up, c) + (up ? held(c, up) : 0);
  }

  get done(): boolean {
    return this.ended;
  }

  /** Pick a member (avoiding failed ones) and connect; refuse the client when none is left. */
  connect(lastError?: Error): void {
    const l = this.listener;
    const member = startTry(this, lastError);
    if (!member) return;
    const up = tag(bindings().newSocket(), this, false);
    this.upstream = up;
    this.connectDeadline = (this.tries === 1 ? this.startedAt : l.deps.clock()) + l.deps.tuning.connectTimeoutMs;
    const addr = member.config.address;
    const port = member.config.protocol_port;
    const v6 = member.v6;
    const local = l.deps.localAddressFor?.(member);
    let err = 0;
    if (local) err = v6 ? up.bind6(local, 0, 0) : up.bind(local, 0);
    if (err === 0) {
      const req = bindings().newConnectReq();
      req.oncomplete = afterConnect;
      err = v6 ? up.connect6(req, addr, port) : up.connect(req, addr, port);
      if (err !== 0) {
        this.retry(errnoError(err, "connect"));
        return;
      }
      // Reading is started now, with the connect pending: libuv registers the socket for
      // both at once and keeps it registered once connected (started after the connect,
      // the registration is made again). No read is delivered before afterConnect, and the
      // read buffer is given then. Where this fails (a bind error libuv reports with the
      // connect), the connect's own error follows and connected() starts reading.
      if (up.readStart() === 0) up.st |= STARTED;
      return;
    }
    this.retry(errnoError(err, local ? "bind" : "connect"));
  }

  connected(): void {
    const up = this.upstream!;
    const c = this.client;
    this.isConnected = true;
    this.connectDeadline = Infinity;
    this.idleSince = this.listener.deps.clock();
    up.setNoDelay(true);
    const header = this.listener.deps.headerFor?.(this, this.member!);
    if (header) {
      const req = wreq!;
      const e = up.writeBuffer(req, header);
      if (e !== 0) {
        this.ioFailed(up, e, "write");
        return;
      }
      if (state[kAsync] !== 0) {
        req.buf = header;
        wreq = newWriteReq();
      }
    }
    c.peer = up;
    up.peer = c;
    up.ubuf = takeBuffer();
    up.useUserBuffer(up.ubuf);
    if (!(up.st & STARTED)) {
      const e = up.readStart();
      if (e !== 0) {
        this.ioFailed(up, e, "read");
        return;
      }
    }
    c.ubuf = takeBuffer();
    c.useUserBuffer(c.ubuf);
    const e = c.readStart();
    if (e !== 0) this.ioFailed(c, e, "read");
  }

  /** The member refused or timed out before connecting: try another one (SPEC §3). */
  retry(err: NodeJS.ErrnoException): void {
    const l = this.listener;
    const up = this.upstream;
    const failed = this.member;
    if (!up || !failed || this.ended) return;
    up.sess = undefined;
    closeHandle(up);
    this.upstream = undefined;
    if (!endFailedTry(this, failed, err)) {
      this.fail("connect_failed", err);
      return;
    }
    l.stats.retries++;
    this.connect(err);
  }

  /** A read, write or shutdown on `h` failed: the side it is on ends the connection. */
  ioFailed(h: Tagged, errno: number, syscall: string): void {
    this.fail(h.isClient ? "client_error" : "member_error", errnoError(errno, syscall));
  }

  /** `src` reached EOF: pass the FIN on, or close both when that was the second one. */
  readEnded(src: Tagged): void {
    src.st |= EOF;
    const dst = src.peer!;
    if (dst.st & CLOSED) {
      this.sideDone(src);
      return;
    }
    if (dst.st & EOF && dst.writeQueueSize === 0 && src.writeQueueSize === 0) {
      // Both ways done, nothing queued: close() delivers what the kernel holds, then the FIN.
      this.closeBoth();
      return;
    }
    const req = bindings().newShutdownReq();
    req.oncomplete = afterShutdown;
    const e = dst.shutdown(req);
    if (e !== 0) {
      this.ioFailed(dst, e, "shutdown");
      return;
    }
    this.sideDone(src);
  }

  /** Close `h` once both its directions are done; the session ends when both handles are closed. */
  sideDone(h: Tagged): void {
    if ((h.st & (EOF | SHUT)) === (EOF | SHUT)) closeHandle(h);
    const up = this.upstream;
    if (this.client.st & CLOSED && (!up || up.st & CLOSED)) this.finish();
  }

  private closeBoth(): void {
    closeHandle(this.client);
    if (this.upstream) closeHandle(this.upstream);
    this.finish();
  }

  /** Close both sides now. */
  fail(reason: EndReason, err?: Error, refused = false): void {
    if (this.ended) return;
    if (this.reason === "closed" || reason === "shutdown") this.reason = reason;
    if (err && !this.error) this.error = err;
    this.connectDeadline = Infinity;
    if (refused) {
      // Never counted as a served connection: no access-log record.
      this.ended = true;
      closeHandle(this.client);
      const l = this.listener;
      l.stats.active--;
      l.budget.give(FDS_PER_CONNECTION);
      this.client.sess = undefined;
      l.sessions.delete(this);
      endShared(this);
      return;
    }
    this.closeBoth();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    const l = this.listener;
    l.sessions.delete(this);
    l.stats.active--;
    l.budget.give(FDS_PER_CONNECTION);
    const c = this.client;
    c.sess = undefined;
    const up = this.upstream;
    if (up) up.sess = undefined;
    const m = this.member;
    if (m) m.active--;
    endShared(this);
    const bytesIn = c.nread;
    const bytesOut = up ? up.nread : 0;
    l.stats.bytesIn += bytesIn;
    l.stats.bytesOut += bytesOut;
    l.deps.onSessionEnd?.(this);
    logConnection(l, this, m, bytesIn, bytesOut);
  }

  /** Bytes read on both sides so far (live traffic, idle detection). */
  get bytesIn(): number {
    return this.client.nread;
  }

  get bytesOut(): number {
    return this.upstream ? this.upstream.nread : 0;
  }

  /** Engine tick: connect timeout, idle timeout, drain deadline. */
  sweep(now: number, idleMs: number): void {
    if (!this.ended) sweepConnection(this, this.isConnected, this.client.nread + (this.upstream ? this.upstream.nread : 0), now, idleMs);
  }
}

export class HandleTcpListener extends TcpListenerBase<HandleSession> {
  constructor(config: ListenerConfig, pool: PoolRuntime, acl: AccessList, deps: TcpListenerDeps) {
    bindings();
    wreq ??= newWriteReq();
    // Accepts are taken over after listen (onListening): net never sees a connection.
    super(config, pool, acl, deps);
  }

  protected onListening(): void {
    if (!takeOverConnections(this.server, onConnection, this)) {
      throw new Error("the listening socket has no native handle to accept on (LB4_DATAPLANE=net avoids this)");
    }
  }

  /** An accept error reported by the taken-over handle. */
  acceptErrno(errno: number): void {
    this.acceptFailed(errnoError(errno, "accept").code!);
  }

  accept(handle: TcpHandle): void {
    if (this.closing || handle.getpeername(addrOut) !== 0) {
      handle.close();
      return;
    }
    const ip = normaliseIp(addrOut.address);
    const port = addrOut.port;
    if (!admit(this, ip, this.stats.active, limitOf(this.config), FDS_PER_CONNECTION)) {
      handle.close();
      return;
    }
    if (this.noDelayPerSocket) handle.setNoDelay(true);
    this.stats.active++;
    const s = new HandleSession(this, handle, ip, port, this.deps.clock());
    this.sessions.add(s);
    begin(s);
  }

}
