/**
 * Backend side of SPEC §7 (the counterpart of the TOA kernel module): read and strip a
 * toa / proxy_v1 / proxy_v2 header from an accepted socket. The only file of
 * src/clientip that touches sockets.
 */
import * as net from "node:net";
import { decodeHeader } from "./codec.js";
import { HeaderError, isClientIpMode, type ClientIpMode, type ProxyHeaderInfo } from "./types.js";

export const DEFAULT_HEADER_TIMEOUT_MS = 5000;

export interface ClientAddress {
  /** The client as the header tells it, or the socket's peer when `local`. */
  address: string;
  port: number;
  family: 4 | 6;
  header: ProxyHeaderInfo | undefined;
  /** The header carried no client (proxy_v2 LOCAL/UNSPEC, proxy_v1 UNKNOWN): the socket's own peer is reported. */
  local: boolean;
}

export interface ReadClientAddressOptions {
  mode: ClientIpMode;
  /** Whole-header deadline, default 5000 ms; 0 or Infinity = none. */
  timeoutMs?: number;
}

type Done = (err: HeaderError | undefined, client: ClientAddress | undefined) => void;

function checkOptions(opts: ReadClientAddressOptions): void {
  if (!isClientIpMode(opts?.mode)) {
    throw new HeaderError("LB4.HEADER_UNSUPPORTED", `client_ip mode ${JSON.stringify(opts?.mode)} is not toa, proxy_v1 or proxy_v2`);
  }
}

function toClient(socket: net.Socket, header: ProxyHeaderInfo): ClientAddress {
  const src = header.source;
  if (src !== undefined && header.command === "PROXY") {
    return { address: src.address, port: src.port, family: src.family, header, local: false };
  }
  return {
    address: socket.remoteAddress ?? "",
    port: socket.remotePort ?? 0,
    family: socket.remoteFamily === "IPv6" ? 6 : 4,
    header,
    local: true,
  };
}

/**
 * Core reader, callback once. Reads in paused mode ('readable' + read()), so nothing is
 * lost: bytes after the header are unshift()ed before `done` runs, and removing the
 * 'readable' listener lets a later 'data' listener or pipe() start the flow.
 */
function readHeader(socket: net.Socket, opts: ReadClientAddressOptions, done: Done): void {
  const mode = opts.mode;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
  let buf: Buffer | undefined;
  let finished = false;
  const timer =
    timeoutMs > 0 && Number.isFinite(timeoutMs)
      ? setTimeout(() => fail(new HeaderError("LB4.HEADER_TIMEOUT", `${mode}: no complete header within ${timeoutMs} ms`)), timeoutMs)
      : undefined;

  const cleanup = (): void => {
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    socket.removeListener("readable", onReadable);
    socket.removeListener("end", onEnd);
    socket.removeListener("error", onError);
    socket.removeListener("close", onClose);
  };
  const fail = (err: HeaderError): void => {
    if (finished) return;
    cleanup();
    socket.destroy();
    done(err, undefined);
  };
  const truncated = (cause?: unknown): HeaderError =>
    new HeaderError(
      "LB4.HEADER_TRUNCATED",
      `${mode}: connection ended after ${buf?.length ?? 0} bytes, before the header was complete`,
      cause === undefined ? undefined : { cause },
    );

  function onReadable(): void {
    let chunk: unknown;
    while (!finished && (chunk = socket.read()) !== null) {
      if (typeof chunk === "string") chunk = Buffer.from(chunk, "latin1"); // setEncoding() was called; best effort
      const c = chunk as Buffer;
      buf = buf === undefined ? c : Buffer.concat([buf, c]);
      let r;
      try {
        r = decodeHeader(mode, buf);
      } catch (err) {
        fail(err instanceof HeaderError ? err : new HeaderError("LB4.HEADER_MALFORMED", String(err), { cause: err }));
        return;
      }
      if (r.done) {
        cleanup();
        if (r.headerLength < buf.length) socket.unshift(buf.subarray(r.headerLength));
        done(undefined, toClient(socket, r.info));
        return;
      }
    }
  }
  function onEnd(): void {
    fail(truncated());
  }
  function onError(err: Error): void {
    fail(truncated(err));
  }
  function onClose(): void {
    fail(truncated());
  }

  socket.on("readable", onReadable);
  socket.on("end", onEnd);
  socket.on("error", onError);
  socket.on("close", onClose);
  // called too late (peer already gone): no event will come
  if (socket.destroyed || socket.readableEnded) fail(truncated());
}

/**
 * Reads the header from a just-accepted socket, strips it and resolves the client
 * address; bytes after the header stay in the socket for the application. Rejects with
 * HeaderError (LB4.HEADER_BAD_SIGNATURE, _MALFORMED, _BAD_ADDRESS, _TOO_LARGE,
 * _UNSUPPORTED, _TRUNCATED, _TIMEOUT) and destroys the socket.
 */
export function readClientAddress(socket: net.Socket, opts: ReadClientAddressOptions): Promise<ClientAddress> {
  return new Promise((resolve, reject) => {
    checkOptions(opts);
    readHeader(socket, opts, (err, client) => (err !== undefined ? reject(err) : resolve(client!)));
  });
}

export type ClientIpServerOptions = ReadClientAddressOptions & net.ServerOpts;

/**
 * A net.Server whose `handler` runs once the header is read (synchronously from the
 * socket event, so a throwing handler surfaces like any net handler). A bad header
 * closes the connection and emits `'clientError'(err, socket)` on the server.
 */
export function createServer(
  opts: ClientIpServerOptions,
  handler: (socket: net.Socket, client: ClientAddress) => void,
): net.Server {
  checkOptions(opts);
  const { mode, timeoutMs, ...serverOpts } = opts;
  const readOpts: ReadClientAddressOptions = timeoutMs === undefined ? { mode } : { mode, timeoutMs };
  const server = net.createServer(serverOpts, (socket) => {
    readHeader(socket, readOpts, (err, client) => {
      if (err !== undefined) server.emit("clientError", err, socket);
      else handler(socket, client!);
    });
  });
  return server;
}
