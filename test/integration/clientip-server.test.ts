/** lb4/client-ip backend reader over real loopback sockets (SPEC §7). */
import * as net from "node:net";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import {
  createServer,
  encodeHeader,
  HeaderError,
  readClientAddress,
  type ClientAddress,
  type ClientIpMode,
  type HeaderInput,
} from "../../src/clientip/index.js";

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as net.AddressInfo).port;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connect(port: number): Promise<net.Socket> {
  const c = net.connect(port, "127.0.0.1");
  sockets.push(c);
  await once(c, "connect");
  return c;
}
/** Everything the peer sends until it closes. */
function collect(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on("data", (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.on("end", () => resolve(Buffer.concat(chunks)));
    s.on("error", reject);
  });
}
/** Writes `bytes` in `parts` pieces with a pause between, so they arrive as separate segments. */
async function writeSplit(s: net.Socket, bytes: Buffer, parts: number, delayMs = 15): Promise<void> {
  const step = Math.max(1, Math.ceil(bytes.length / parts));
  for (let i = 0; i < bytes.length; i += step) {
    s.write(bytes.subarray(i, i + step));
    await sleep(delayMs);
  }
}

/** Server that records the client address and echoes back everything it receives, then closes. */
function echoServer(mode: ClientIpMode, timeoutMs?: number) {
  const clients: ClientAddress[] = [];
  const errors: unknown[] = [];
  const received: Promise<Buffer>[] = [];
  const server = createServer(timeoutMs === undefined ? { mode } : { mode, timeoutMs }, (socket, client) => {
    clients.push(client);
    received.push(collect(socket));
    socket.pipe(socket);
  });
  server.on("clientError", (err) => errors.push(err));
  return { server, clients, errors, received };
}

const cases: { mode: ClientIpMode; input: HeaderInput; client: Partial<ClientAddress> }[] = [
  { mode: "toa", input: { source: { address: "203.0.113.7", port: 40001 }, destination: { address: "10.0.0.1", port: 80 } }, client: { address: "203.0.113.7", port: 40001, family: 4, local: false } },
  { mode: "toa", input: { source: { address: "2001:db8::7", port: 40002 }, destination: { address: "::1", port: 80 } }, client: { address: "2001:db8::7", port: 40002, family: 6, local: false } },
  { mode: "proxy_v1", input: { source: { address: "198.51.100.9", port: 50000 }, destination: { address: "10.0.0.1", port: 443 } }, client: { address: "198.51.100.9", port: 50000, family: 4, local: false } },
  { mode: "proxy_v1", input: { source: { address: "2001:db8::9", port: 1 }, destination: { address: "2001:db8::1", port: 443 } }, client: { address: "2001:db8::9", port: 1, family: 6, local: false } },
  { mode: "proxy_v2", input: { source: { address: "192.0.2.33", port: 65535 }, destination: { address: "10.0.0.1", port: 8080 } }, client: { address: "192.0.2.33", port: 65535, family: 4, local: false } },
  { mode: "proxy_v2", input: { source: { address: "2001:db8::33", port: 0 }, destination: { address: "2001:db8::1", port: 8080 } }, client: { address: "2001:db8::33", port: 0, family: 6, local: false } },
];

describe("createServer: header split across segments, then payload", () => {
  it.each(cases)("$mode $client.address", async ({ mode, input, client }) => {
    const { server, clients, errors, received } = echoServer(mode);
    const port = await listen(server);
    const c = await connect(port);
    const echoed = collect(c);
    const header = encodeHeader(mode, input);
    // header in 3 delayed writes; the last header byte shares a segment with the payload
    await writeSplit(c, header.subarray(0, header.length - 1), 3);
    c.write(Buffer.concat([header.subarray(header.length - 1), Buffer.from("hello ")]));
    await sleep(10);
    c.end("world");
    expect((await echoed).toString()).toBe("hello world");
    expect(errors).toEqual([]);
    expect(clients).toHaveLength(1);
    expect(clients[0]).toMatchObject(client);
    expect(clients[0]!.header?.command).toBe("PROXY");
    expect((await received[0]!).toString()).toBe("hello world");
  });

  it("a large payload in the same write as the header arrives intact", async () => {
    const { server, received } = echoServer("proxy_v2");
    const port = await listen(server);
    const c = await connect(port);
    const echoed = collect(c);
    const payload = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
    c.end(Buffer.concat([encodeHeader("proxy_v2", cases[4]!.input), payload]));
    expect((await echoed).equals(payload)).toBe(true);
    expect((await received[0]!).equals(payload)).toBe(true);
  });

  it("proxy_v2 LOCAL (health check) reports the socket's own peer, local: true", async () => {
    const { server, clients } = echoServer("proxy_v2");
    const port = await listen(server);
    const c = await connect(port);
    const echoed = collect(c);
    const localPort = c.localPort;
    c.end(Buffer.concat([encodeHeader("proxy_v2", { command: "LOCAL" }), Buffer.from("ping")]));
    expect((await echoed).toString()).toBe("ping");
    expect(clients[0]).toMatchObject({ address: "127.0.0.1", port: localPort, family: 4, local: true, header: { command: "LOCAL" } });
  });

  it("header, then the server speaks first", async () => {
    const server = createServer({ mode: "proxy_v1" }, (socket, client) => {
      socket.write(`220 hello ${client.address}\r\n`);
      socket.on("data", (d: Buffer) => {
        if (d.toString().includes("QUIT")) socket.end("221 bye\r\n");
      });
    });
    const port = await listen(server);
    const c = await connect(port);
    const all = collect(c);
    const greeted = once(c, "data") as Promise<[Buffer]>;
    await writeSplit(c, encodeHeader("proxy_v1", cases[2]!.input), 4);
    // the client sends nothing after the header until it has the greeting
    const [greeting] = await greeted;
    expect(greeting.toString()).toBe("220 hello 198.51.100.9\r\n");
    c.write("QUIT\r\n");
    expect((await all).toString()).toBe("220 hello 198.51.100.9\r\n221 bye\r\n");
  });
});

describe("createServer: bad headers close the connection and emit clientError", () => {
  async function expectRejected(mode: ClientIpMode, send: (c: net.Socket) => Promise<void> | void, code: string, timeoutMs?: number) {
    const { server, clients } = echoServer(mode, timeoutMs);
    const clientError = once(server, "clientError") as Promise<[HeaderError, net.Socket]>;
    const port = await listen(server);
    const c = await connect(port);
    c.on("error", () => {}); // a reset is as good as a close here
    const closed = once(c, "close");
    await send(c);
    const [err, sock] = await clientError;
    expect(err).toBeInstanceOf(HeaderError);
    expect(err.code).toBe(code);
    expect(sock.destroyed).toBe(true);
    await closed;
    expect(clients).toEqual([]);
  }

  it("malformed proxy_v1 (bad address)", async () => {
    await expectRejected("proxy_v1", (c) => void c.write("PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\nGET /"), "LB4.HEADER_BAD_ADDRESS");
  });
  it("wrong signature (plain HTTP to a proxy_v2 server) is rejected on the first bytes", async () => {
    await expectRejected("proxy_v2", (c) => void c.write("G"), "LB4.HEADER_BAD_SIGNATURE");
  });
  it("oversized proxy_v2 length", async () => {
    await expectRejected("proxy_v2", (c) => void c.write(Buffer.from("0d0a0d0a000d0a515549540a2111ffff", "hex")), "LB4.HEADER_TOO_LARGE");
  });
  it("connection ended mid-header → truncated", async () => {
    const h = encodeHeader("toa", cases[1]!.input);
    await expectRejected("toa", (c) => void c.end(h.subarray(0, 10)), "LB4.HEADER_TRUNCATED");
  });
  it("no header in time → timeout", async () => {
    await expectRejected("proxy_v1", () => {}, "LB4.HEADER_TIMEOUT", 150);
  });
  it("the server keeps serving after bad clients", async () => {
    const { server, clients, errors } = echoServer("toa");
    const port = await listen(server);
    const bad = await connect(port);
    bad.on("error", () => {});
    bad.write("xx");
    await once(bad, "close");
    const good = await connect(port);
    const echoed = collect(good);
    good.end(Buffer.concat([encodeHeader("toa", cases[0]!.input), Buffer.from("ok")]));
    expect((await echoed).toString()).toBe("ok");
    expect(errors).toHaveLength(1);
    expect(clients).toHaveLength(1);
  });
});

describe("readClientAddress on a plain net.Server", () => {
  it("resolves the client and leaves the payload readable (async/await handler)", async () => {
    const result = new Promise<{ client: ClientAddress; data: string }>((resolve, reject) => {
      const server = net.createServer(async (socket) => {
        try {
          const client = await readClientAddress(socket, { mode: "proxy_v2" });
          await sleep(20); // the application may read later; bytes wait in the socket
          resolve({ client, data: (await collect(socket)).toString() });
        } catch (e) {
          reject(e);
        }
      });
      void listen(server).then(async (port) => {
        const c = await connect(port);
        const h = encodeHeader("proxy_v2", cases[5]!.input);
        await writeSplit(c, Buffer.concat([h, Buffer.from("abc")]), 5);
        c.end("def");
      });
    });
    const { client, data } = await result;
    expect(client).toMatchObject({ address: "2001:db8::33", port: 0, family: 6, local: false });
    expect(data).toBe("abcdef");
  });
  it("rejects with HeaderError and destroys the socket", async () => {
    const result = new Promise<{ err: unknown; socket: net.Socket }>((resolve) => {
      const server = net.createServer((socket) => {
        readClientAddress(socket, { mode: "toa" }).then(
          () => resolve({ err: undefined, socket }),
          (err: unknown) => resolve({ err, socket }),
        );
      });
      void listen(server).then(async (port) => {
        const c = await connect(port);
        c.on("error", () => {});
        c.write(Buffer.from([0x01, 0x02]));
      });
    });
    const { err, socket } = await result;
    expect(err).toBeInstanceOf(HeaderError);
    expect((err as HeaderError).code).toBe("LB4.HEADER_BAD_SIGNATURE");
    expect(socket.destroyed).toBe(true);
  });
  it("called on a socket that is already gone: rejects at once, no wait for the timeout", async () => {
    const s = new net.Socket();
    s.destroy();
    await expect(readClientAddress(s, { mode: "proxy_v1" })).rejects.toMatchObject({ code: "LB4.HEADER_TRUNCATED" });
  });
  it("an unknown mode is refused up front", async () => {
    await expect(readClientAddress(new net.Socket(), { mode: "auto" as ClientIpMode })).rejects.toMatchObject({ code: "LB4.HEADER_UNSUPPORTED" });
    expect(() => createServer({ mode: "off" as ClientIpMode }, () => {})).toThrow(HeaderError);
  });
});
