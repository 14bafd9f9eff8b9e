/**
 * The one home of undocumented Node and pino internals that lb4 uses outside the stream
 * handles (those are in stream-handles.ts): a socket's `_handle`, `Buffer#utf8Write` and
 * pino's stream and bindings symbols. Each accessor has a documented fallback, so a Node or
 * pino change degrades speed, not behaviour.
 */
import type net from "node:net";
import { pino, type Logger } from "pino";

interface NativeTcp {
  getpeername?: (out: object) => number;
  setNoDelay?: (on: boolean) => number;
}

function handleOf(x: net.Socket | net.Server): NativeTcp | undefined {
  return (x as unknown as { _handle?: NativeTcp })._handle ?? undefined;
}

/** Filled by peerAddress(); read at once, before the next call. */
const peerOut = { address: "", family: "", port: 0 };

/**
 * The client's address and port, from getpeername into one shared object. `socket.remoteAddress`
 * would allocate a result object per connection and add a `_peername` property to each
 * socket, one more hidden-class transition on objects every stream function touches.
 */
export function peerAddress(socket: net.Socket): { address: string; port: number } {
  const handle = handleOf(socket);
  if (typeof handle?.getpeername === "function" && handle.getpeername(peerOut) === 0) return peerOut;
  peerOut.address = socket.remoteAddress ?? "";
  peerOut.port = socket.remotePort ?? 0;
  return peerOut;
}

/**
 * TCP_NODELAY on the listening socket, so accepted sockets inherit it (Linux copies it into
 * each child socket): one setsockopt per listener instead of one per connection. A proxy
 * must not add Nagle delays to what either side sends. Returns false where that is not
 * available, and the caller sets it per socket.
 */
export function setListenerNoDelay(server: net.Server): boolean {
  if (process.platform !== "linux") return false;
  const handle = handleOf(server);
  return typeof handle?.setNoDelay === "function" && handle.setNoDelay(true) === 0;
}

/** The native listening handle of a listening net.Server (the handle data plane takes over its onconnection). */
export function listeningHandle(server: net.Server): object | undefined {
  return handleOf(server);
}

interface Utf8Writable {
  utf8Write(s: string, offset: number): number;
}
const hasUtf8Write = typeof (Buffer.prototype as unknown as Partial<Utf8Writable>).utf8Write === "function";

/**
 * `s` as UTF-8 into `buf` at `offset`; returns the bytes written. `Buffer#utf8Write` is
 * Buffer#write without its argument normalisation; Buffer#write where it is gone.
 */
export function utf8Write(buf: Buffer, s: string, offset: number): number {
  return hasUtf8Write ? (buf as unknown as Utf8Writable).utf8Write(s, offset) : buf.write(s, offset, "utf8");
}

/** The destination stream a pino logger writes to (pino.symbols.streamSym), or undefined. */
export function pinoStream(logger: Logger): unknown {
  const sym = pino.symbols?.streamSym;
  return sym ? (logger as unknown as Record<symbol, unknown>)[sym] : undefined;
}

/** A pino logger's bindings as its serialized JSON fragment (`,"k":"v"…`), or "" (pino.symbols.chindingsSym). */
export function pinoBindings(logger: Logger): string {
  const sym = pino.symbols?.chindingsSym;
  const v = sym ? (logger as unknown as Record<symbol, unknown>)[sym] : undefined;
  return typeof v === "string" ? v : "";
}
