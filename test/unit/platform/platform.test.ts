/** src/platform/: the accessors of Node and pino internals behave as their documented fallbacks would. */
import net from "node:net";
import { once } from "node:events";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { peerAddress, pinoBindings, pinoStream, utf8Write } from "../../../src/platform/node-internals.js";
import { errnoError, streamHandles, UV_EOF } from "../../../src/platform/stream-handles.js";

describe("node internals", () => {
  it.each([
    ["ascii", "hello", 5],
    ["two-byte", "é", 2],
    ["three-byte", "€", 3],
    ["surrogate pair", "😀", 4],
  ])("utf8Write writes %s text at the offset and returns its UTF-8 length", (_name, text, bytes) => {
    const buf = Buffer.alloc(16, 0);
    expect(utf8Write(buf, text, 3)).toBe(bytes);
    expect(buf.subarray(3, 3 + bytes).toString("utf8")).toBe(text);
    expect(buf[2]).toBe(0);
  });

  it("pinoStream is the destination the logger writes to; pinoBindings its child bindings as JSON", () => {
    const dest = new Writable({ write: (_c, _e, cb) => cb() });
    const logger = pino({ level: "info", base: null }, dest);
    expect(pinoStream(logger)).toBe(dest);
    expect(pinoBindings(logger.child({ lb: "lb-1" }))).toBe(',"lb":"lb-1"');
  });

  it("peerAddress reads the client's address and port", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const accepted = once(server, "connection") as Promise<[net.Socket]>;
    const c = net.connect({ port: (server.address() as net.AddressInfo).port, host: "127.0.0.1" });
    await once(c, "connect");
    const [s] = await accepted;
    expect({ ...peerAddress(s) }).toMatchObject({ address: "127.0.0.1", port: c.localPort });
    c.destroy();
    s.destroy();
    server.close();
  });
});

describe("stream handles", () => {
  it.each([
    [-104, "read", "ECONNRESET"],
    [-32, "write", "EPIPE"],
    [-111, "connect", "ECONNREFUSED"],
    [-110, "connect", "ETIMEDOUT"],
    [UV_EOF, "read", "EOF"],
  ])("errnoError(%i, %s) has the readable code %s, never the number", (errno, syscall, code) => {
    const e = errnoError(errno, syscall);
    expect(e.code).toBe(code);
    expect(e.message).toBe(`${syscall} ${code}`);
    expect(e.message).not.toMatch(/-\d/);
  });

  it("the bindings load on this Node", () => {
    expect(streamHandles()).toBeDefined();
  });
});
