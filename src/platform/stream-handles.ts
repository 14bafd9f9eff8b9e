/**
 * Node's libuv TCP stream handles (`tcp_wrap`/`stream_wrap` bindings), the undocumented layer
 * under net.Socket. The handle data plane (dataplane/tcp-handles.ts) forwards on them
 * directly: no net.Socket, no stream state per connection. This is the only module that
 * loads the bindings. The conventions (Node 20):
 * - `onread(arrayBuffer)`: the byte count or errno is in `state[kReadBytesOrError]`; with
 *   `useUserBuffer(buf)` bytes land in `buf`, and returning a Buffer from onread swaps it.
 * - `writeBuffer(req, u8)` returns an errno; `state[kLastWriteWasAsync] !== 0` means the write
 *   was queued and its bytes belong to it until `req.oncomplete(status, handle)`.
 * - `connect(req, ip, port)` completes with `req.oncomplete(status, handle)`.
 * They changed once before (v12), so the data plane only runs on them after probe() passed.
 */
import net from "node:net";
import { getSystemErrorName } from "node:util";

/** A libuv TCP handle (TCPWrap), with the methods the data plane calls. */
export interface TcpHandle {
  onread: ((ab: ArrayBuffer | undefined) => Uint8Array | undefined) | null;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  shutdown(req: ShutdownReq): number;
  close(cb?: () => void): void;
  setNoDelay(on: boolean): number;
  getpeername(out: SockAddr): number;
  getsockname(out: SockAddr): number;
  bind(ip: string, port: number): number;
  bind6(ip: string, port: number, flags: number): number;
  connect(req: ConnectReq, ip: string, port: number): number;
  connect6(req: ConnectReq, ip: string, port: number): number;
  listen(backlog: number): number;
}

/** Filled by getpeername/getsockname. */
export interface SockAddr {
  address: string;
  family: string;
  port: number;
}

export interface WriteReq {
  oncomplete: (status: number, handle: TcpHandle) => void;
}
export interface ShutdownReq {
  oncomplete: (status: number, handle: TcpHandle) => void;
}
export interface ConnectReq {
  oncomplete: (status: number, handle: TcpHandle) => void;
}

/** The bindings, typed. */
export interface StreamHandles {
  newSocket(): TcpHandle;
  newWriteReq(): WriteReq;
  newShutdownReq(): ShutdownReq;
  newConnectReq(): ConnectReq;
  /** streamBaseState: read results and the last write's sync/async flag. */
  readonly state: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
  readonly kLastWriteWasAsync: number;
}

/** libuv's end-of-stream code, in onread. */
export const UV_EOF = -4095;

type Ctor<T> = new (...args: unknown[]) => T;

let loaded: StreamHandles | undefined;
let loadError: string | undefined;

/** The bindings, or undefined (see loadProblem()) where this Node does not have them as expected. */
export function streamHandles(): StreamHandles | undefined {
  if (loaded || loadError) return loaded;
  try {
    // process.binding is deprecated (DEP0111, documentation-only on Node 20) and returns the same objects as internalBinding.
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding("tcp_wrap");
    const stream = binding("stream_wrap");
    const TCP = tcp.TCP as Ctor<TcpHandle>;
    const TCPConnectWrap = tcp.TCPConnectWrap as Ctor<ConnectReq>;
    const WriteWrap = stream.WriteWrap as Ctor<WriteReq>;
    const ShutdownWrap = stream.ShutdownWrap as Ctor<ShutdownReq>;
    const constants = tcp.constants as { SOCKET?: number } | undefined;
    const state = stream.streamBaseState;
    const names = ["kReadBytesOrError", "kArrayBufferOffset", "kLastWriteWasAsync"] as const;
    const missing = [
      ...(typeof TCP !== "function" ? ["TCP"] : []),
      ...(typeof TCPConnectWrap !== "function" ? ["TCPConnectWrap"] : []),
      ...(typeof WriteWrap !== "function" ? ["WriteWrap"] : []),
      ...(typeof ShutdownWrap !== "function" ? ["ShutdownWrap"] : []),
      ...(typeof constants?.SOCKET !== "number" ? ["constants.SOCKET"] : []),
      ...(!(state instanceof Int32Array) ? ["streamBaseState"] : []),
      ...names.filter((n) => typeof stream[n] !== "number"),
      ...["readStart", "readStop", "useUserBuffer", "writeBuffer", "shutdown", "close", "connect", "connect6", "bind", "bind6", "getpeername", "getsockname", "setNoDelay"].filter(
        (m) => typeof TCP === "function" && typeof (TCP.prototype as unknown as Record<string, unknown>)[m] !== "function",
      ),
    ];
    if (missing.length) throw new Error(`missing ${missing.join(", ")}`);
    const SOCKET = constants!.SOCKET!;
    loaded = {
      newSocket: () => new TCP(SOCKET),
      newWriteReq: () => new WriteWrap(),
      newShutdownReq: () => new ShutdownWrap(),
      newConnectReq: () => new TCPConnectWrap(),
      state: state as Int32Array,
      kReadBytesOrError: stream.kReadBytesOrError as number,
      kArrayBufferOffset: stream.kArrayBufferOffset as number,
      kLastWriteWasAsync: stream.kLastWriteWasAsync as number,
    };
  } catch (err) {
    loadError = `tcp_wrap/stream_wrap bindings not usable: ${(err as Error).message}`;
  }
  return loaded;
}

/** Why streamHandles() returned undefined. */
export function loadProblem(): string | undefined {
  return loadError;
}

/** The listening handle of a listening net.Server whose accepts `fn` may take over (`this` is that handle). */
export type ConnectionHandler = (this: object, err: number, handle: TcpHandle | undefined) => void;

/**
 * Take over the accepts of a listening net.Server: `fn` gets each accepted handle, and no
 * net.Socket is made. net keeps listen and close (and cluster's SCHED_NONE handle passing).
 * `owner` is stored on the handle for `fn` to find (`this.lb4Owner`). False where the server
 * has no native listening handle.
 */
export function takeOverConnections(server: net.Server, fn: ConnectionHandler, owner: object): boolean {
  const h = (server as unknown as { _handle?: { onconnection?: unknown; lb4Owner?: object } })._handle;
  if (!h || typeof h.onconnection !== "function") return false;
  h.lb4Owner = owner;
  h.onconnection = fn;
  return true;
}

/** An errno from a handle as an Error with its readable code (ECONNRESET, never -104). */
export function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(errno);
  } catch {
    code = `errno ${errno}`;
  }
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno, syscall });
}

/**
 * The self-test: a loopback round trip through exactly the calls the data plane makes —
 * net.Server listen with its onconnection taken over, connect with reading started while
 * it is pending and the read buffer given once connected (the accepted side speaks first),
 * header-style write, a read into a user buffer with a buffer swap, shutdown, EOF, close.
 * Resolves to undefined when every step behaved, else to what did not.
 */
export function probe(timeoutMs = 2000): Promise<string | undefined> {
  const hb = streamHandles();
  if (!hb) return Promise.resolve(loadProblem());
  return new Promise((resolve) => {
    const server = net.createServer({ pauseOnConnect: true });
    const opened: TcpHandle[] = [];
    let settled = false;
    const done = (problem: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const h of opened) h.close();
      server.close();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`no round trip within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    const message = Buffer.from("lb4 data-plane probe");
    const greeting = Buffer.from("lb4 probe greeting");
    // Both directions must arrive: the message (then EOF) at the accepted side, the greeting at the connecting side.
    let pending = 2;
    const arrived = () => {
      if (--pending === 0) done(undefined);
    };
    server.on("error", (err) => done(`probe listener: ${err.message}`));
    server.listen(0, "127.0.0.1", () => {
      const owner = {};
      const ok = takeOverConnections(
        server,
        function (this: object, err, accepted) {
          if ((this as { lb4Owner?: object }).lb4Owner !== owner) return done("onconnection is not called on the listening handle");
          if (err !== 0 || !accepted) return done(`accept failed (${err})`);
          opened.push(accepted);
          const got: Buffer[] = [];
          const first = Buffer.alloc(4);
          const second = Buffer.alloc(64);
          let swapped = false;
          accepted.onread = () => {
            const n = hb.state[hb.kReadBytesOrError]!;
            if (n > 0) {
              got.push(Buffer.from((swapped ? second : first).subarray(0, n)));
              if (!swapped) {
                swapped = true;
                return second;
              }
              return undefined;
            }
            if (n === UV_EOF) {
              const text = Buffer.concat(got);
              if (text.equals(message)) arrived();
              else done(`read ${JSON.stringify(text.toString())}, expected ${JSON.stringify(message.toString())}`);
            } else if (n < 0) done(`read failed (${n})`);
            return undefined;
          };
          accepted.useUserBuffer(first);
          if (accepted.readStart() !== 0) return done("readStart failed");
          // The accepted side speaks first, as some members do.
          const w = hb.newWriteReq();
          w.oncomplete = () => {};
          if (accepted.writeBuffer(w, greeting) !== 0) done("writeBuffer of the greeting failed");
        },
        owner,
      );
      if (!ok) return done("net.Server has no native listening handle");
      const port = (server.address() as net.AddressInfo).port;
      const c = hb.newSocket();
      opened.push(c);
      // The data plane starts reading while the connect is pending and gives the read buffer
      // once connected: the greeting must land in that buffer, after the connect completed.
      let connected = false;
      const readBuffer = Buffer.alloc(64);
      const greeted: Buffer[] = [];
      c.onread = (ab) => {
        const n = hb.state[hb.kReadBytesOrError]!;
        if (!connected) done("a read was delivered before the connect completed");
        else if (n > 0) {
          if (ab !== undefined) {
            done("a read did not land in the buffer given by useUserBuffer");
            return undefined;
          }
          greeted.push(Buffer.from(readBuffer.subarray(0, n)));
          const text = Buffer.concat(greeted);
          if (text.length >= greeting.length) {
            if (text.equals(greeting)) arrived();
            else done(`read ${JSON.stringify(text.toString())} on the connecting side, expected ${JSON.stringify(greeting.toString())}`);
          }
        } else if (n < 0 && n !== UV_EOF) done(`read on the connecting side failed (${n})`);
        return undefined;
      };
      const req = hb.newConnectReq();
      req.oncomplete = (status, handle) => {
        connected = true;
        if (status !== 0 || handle !== c) return done(`connect completed with ${status}`);
        c.useUserBuffer(readBuffer);
        const w = hb.newWriteReq();
        w.oncomplete = () => {};
        const e = c.writeBuffer(w, message);
        if (e !== 0) return done(`writeBuffer returned ${e}`);
        const st = hb.state[hb.kLastWriteWasAsync];
        if (st !== 0 && st !== 1) return done(`kLastWriteWasAsync reads ${st}`);
        const s = hb.newShutdownReq();
        s.oncomplete = (status2) => {
          if (status2 !== 0) done(`shutdown completed with ${status2}`);
        };
        if (c.shutdown(s) !== 0) done("shutdown failed");
      };
      const e = c.connect(req, "127.0.0.1", port);
      if (e !== 0) return done(`connect returned ${e}`);
      if (c.readStart() !== 0) done("readStart while connecting failed");
    });
  });
}
