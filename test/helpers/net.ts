/** Real loopback peers and bounded waits for integration tests. */
import net from "node:net";
import dgram from "node:dgram";
import { once } from "node:events";

/** A port number that was free a moment ago (the config needs a real number). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  // Reserve both TCP and UDP so one number serves either listener type.
  for (let attempt = 0; attempt < 20; attempt++) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, host, () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    const u = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    const ok = await new Promise<boolean>((r) => {
      u.once("error", () => r(false));
      u.bind(port, host, () => r(true));
    });
    await new Promise<void>((r) => u.close(() => r()));
    if (ok) return port;
  }
  throw new Error("no free port found");
}

/** Poll until `cond` holds, every `intervalMs`, at most `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition", intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface TestServer {
  server: net.Server;
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

async function listen(server: net.Server, host: string, port = 0): Promise<TestServer> {
  const t: TestServer = {
    server,
    port: 0,
    accepted: 0,
    sockets: new Set(),
    close: async () => {
      for (const s of t.sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  server.on("connection", (s) => {
    t.accepted++;
    t.sockets.add(s);
    s.on("close", () => t.sockets.delete(s));
    s.on("error", () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  t.port = (server.address() as net.AddressInfo).port;
  return t;
}

/** Writes its name and closes: tells which member served a connection. */
export function nameServer(name: string, host = "127.0.0.1", port = 0): Promise<TestServer> {
  return listen(
    net.createServer((s) => s.end(name)),
    host,
    port,
  );
}

/** Echoes every byte; half-close aware (ends its side when the client ends). */
export function echoServer(host = "127.0.0.1", port = 0): Promise<TestServer> {
  return listen(
    net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)),
    host,
    port,
  );
}

/** A server with a test-specific connection handler. */
export function customServer(handler: (s: net.Socket) => void, opts: net.ServerOpts = {}, host = "127.0.0.1"): Promise<TestServer> {
  return listen(net.createServer(opts, handler), host);
}

/** Holds connections open without writing. */
export function silentServer(host = "127.0.0.1", port = 0): Promise<TestServer> {
  return listen(net.createServer(() => undefined), host, port);
}

/** Connect, optionally send, read until the server closes; bounded. */
export async function request(port: number, opts: { host?: string; send?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
  const s = net.connect({ port, host: opts.host ?? "127.0.0.1" });
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  s.on("error", () => undefined); // a refused connection may be reset; the bytes tell the story
  if (opts.send !== undefined) s.write(opts.send);
  const timer = setTimeout(() => s.destroy(new Error("request timed out")), opts.timeoutMs ?? 5000);
  await new Promise((r) => s.once("close", r)); // not events.once: it rejects on 'error'
  clearTimeout(timer);
  return Buffer.concat(chunks).toString();
}

/** Connect and wait for the connection to be up (resolves with the socket). */
export async function connect(port: number, host = "127.0.0.1"): Promise<net.Socket> {
  const s = net.connect({ port, host });
  await once(s, "connect");
  return s;
}

/** Resolve with the socket's close, or reject after timeoutMs. */
export function closed(s: net.Socket, timeoutMs = 5000): Promise<void> {
  if (s.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("socket did not close in time")), timeoutMs);
    s.once("close", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
