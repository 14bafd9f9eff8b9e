/** In-process backends on loopback for the reliability cases that need no namespace. */
import dgram from "node:dgram";
import net from "node:net";
import { customServer, type TestServer } from "../../helpers/net.js";

export interface LineServer extends TestServer {
  name: string;
  /** Request lines seen ("r<seq>"), so the test knows which member a request reached. */
  seen: Set<string>;
}

/** The same protocol as fixtures/backend.mjs: every line L gets "NAME L\n" back. */
export async function lineServer(name: string, recordSeen = false): Promise<LineServer> {
  const seen = new Set<string>();
  const t = await customServer((s) => {
    s.setNoDelay(true);
    let buf = "";
    s.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, "");
        buf = buf.slice(i + 1);
        if (recordSeen) seen.add(line);
        s.write(line === "PING" ? "+PONG\r\n" : `${name} ${line}\n`);
      }
      if (buf.length > 65536) s.destroy();
    });
  });
  return Object.assign(t, { name, seen });
}

export interface UdpEcho {
  port: number;
  close(): Promise<void>;
}

/** Echoes every datagram back to its sender. */
export async function udpEcho(host = "127.0.0.1"): Promise<UdpEcho> {
  const s = dgram.createSocket("udp4");
  s.on("message", (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
  s.on("error", () => undefined);
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return { port: s.address().port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

/** A connection through lb4 that answered one request and is held open. */
export interface Held {
  socket: net.Socket;
  ok: boolean;
  error?: string;
}

/** Connect, send one line, wait for its answer (bounded); keep the socket open if it answered. */
export function holdOne(host: string, port: number, seq: number, timeoutMs: number): Promise<Held> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = "";
    let done = false;
    const finish = (ok: boolean, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      if (!ok) s.resetAndDestroy();
      resolve(error === undefined ? { socket: s, ok } : { socket: s, ok, error });
    };
    const t = setTimeout(() => finish(false, "timeout"), timeoutMs);
    s.on("connect", () => s.write(`r${seq}\n`));
    s.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      if (buf.includes("\n")) finish(buf.endsWith(` r${seq}\n`), buf.endsWith(` r${seq}\n`) ? undefined : "bad answer");
    });
    s.on("error", (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
    s.on("close", () => finish(false, "closed"));
  });
}
