/**
 * Client-address header fuzzing (fast-check): random bytes and mutated valid toa / proxy_v1 /
 * proxy_v2 headers, to the decoder and over real sockets to the `lb4/client-ip` server
 * (src/clientip/server.ts). Every input is either a well-formed header (the handler gets a
 * real IP address) or rejected with an LB4.HEADER_* code; nothing throws anything else,
 * nothing hangs, and the server keeps accepting.
 */
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeHeader, encodeHeader, HeaderError, type ClientIpMode } from "../../src/clientip/codec.js";
import { createServer, type ClientAddress } from "../../src/clientip/server.js";
import { waitFor } from "../helpers/net.js";
import { envInt } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";

const MODES: ClientIpMode[] = ["toa", "proxy_v1", "proxy_v2"];
const SEED = envInt("LB4_FUZZ_SEED", Date.now() % 2 ** 31);
const DECODE_RUNS = envInt("LB4_FUZZ_RUNS", 400) * 10;
const SOCKET_RUNS = 150;

const endpoint = fc.oneof(
  fc.record({ address: fc.ipV4(), port: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ address: fc.ipV6(), port: fc.integer({ min: 0, max: 65535 }) }),
);

/** A valid header of `mode` for a random client, or undefined where the mode cannot carry it. */
function validHeader(mode: ClientIpMode, src: { address: string; port: number }, dst: { address: string; port: number }, local: boolean): Buffer | undefined {
  try {
    if (local && mode !== "toa") return encodeHeader(mode, { command: "LOCAL" });
    return encodeHeader(mode, { source: src, destination: net.isIPv6(src.address) === net.isIPv6(dst.address) ? dst : src });
  } catch (err) {
    if (err instanceof HeaderError) return undefined;
    throw err;
  }
}

type Edit = { kind: "flip"; at: number; bit: number } | { kind: "cut"; at: number } | { kind: "insert"; at: number; bytes: Uint8Array } | { kind: "set"; at: number; byte: number };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.constantFrom(0, 0x0a, 0x0d, 0x20, 0x3a, 0xff, 0x21, 0x11, 0x7f) }),
);

function applyEdits(b: Buffer, edits: Edit[]): Buffer {
  let out = Buffer.from(b);
  for (const e of edits) {
    if (out.length === 0) break;
    const at = e.at % out.length;
    if (e.kind === "flip") out[at]! ^= 1 << e.bit;
    else if (e.kind === "set") out[at] = e.byte;
    else if (e.kind === "cut") out = out.subarray(0, at);
    else out = Buffer.concat([out.subarray(0, at), e.bytes, out.subarray(at)]);
  }
  return out;
}

/** Bytes to offer as a header of `mode`: pure noise, or a valid header mutated, plus a payload. */
const input = (mode: ClientIpMode) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc
      .tuple(endpoint, endpoint, fc.boolean(), fc.array(edit, { maxLength: 4 }), fc.uint8Array({ maxLength: 32 }))
      .map(([s, d, local, edits, payload]) => {
        const h = validHeader(mode, s, d, local) ?? Buffer.alloc(0);
        return Buffer.concat([applyEdits(h, edits), Buffer.from(payload)]);
      }),
    fc.string({ unit: fc.constantFrom(..."PROXY TCP4 TCP6 UNKNOWN 0123456789.:abcdef\r\n"), maxLength: 120 }).map((s) => Buffer.from(s, "latin1")),
  );

describe("client-address header fuzzing", () => {
  it.each(MODES)(`%s: ${DECODE_RUNS} inputs to decodeHeader: a header, "need more", or an LB4.HEADER_* error`, (mode) => {
    const bad: string[] = [];
    let parsed = 0;
    let rejected = 0;
    for (const buf of fc.sample(input(mode), { numRuns: DECODE_RUNS, seed: SEED })) {
      for (const atEof of [false, true]) {
        try {
          const r = decodeHeader(mode, buf, atEof);
          if (r.done) {
            parsed++;
            if (r.headerLength <= 0 || r.headerLength > buf.length) bad.push(`headerLength ${r.headerLength} of ${buf.length}: ${buf.toString("hex")}`);
            const src = r.info.source;
            if (src && (net.isIP(src.address) === 0 || src.port < 0 || src.port > 65535)) bad.push(`garbage address ${JSON.stringify(src)}: ${buf.toString("hex")}`);
          } else if (atEof) bad.push(`"need more" at end of input: ${buf.toString("hex")}`);
        } catch (err) {
          if (!(err instanceof HeaderError) || !/^LB4\.HEADER_/.test(err.code)) bad.push(`${(err as Error)?.name}: ${(err as Error)?.message} for ${buf.toString("hex")}`);
          else rejected++;
        }
      }
    }
    figure(`fuzz: ${mode} decoder`, `${DECODE_RUNS} inputs × (more to come, at end) (seed ${SEED}): ${parsed} parsed, ${rejected} rejected with LB4.HEADER_*, ${bad.length} wrong`, "a header with a real IP, or an LB4.HEADER_* error; never another exception");
    expect(bad.slice(0, 10), `seed ${SEED}`).toEqual([]);
  });

  describe.each(MODES)("%s: random bytes to the lb4/client-ip server over a socket", (mode) => {
    let server: net.Server;
    let port: number;
    const outcomes: Array<{ ok: true; client: ClientAddress } | { ok: false; code: string }> = [];
    const waiters: Array<() => void> = [];
    const crashes: unknown[] = [];
    const accepted = new Set<net.Socket>();
    const onCrash = (err: unknown) => crashes.push(err);
    beforeAll(async () => {
      process.on("uncaughtException", onCrash);
      server = createServer({ mode, timeoutMs: 3000 }, (socket, client) => {
        outcomes.push({ ok: true, client });
        socket.on("error", () => undefined);
        socket.resume(); // read what follows the header, so the peer's FIN closes the socket
        socket.end("ok\n");
        for (const w of waiters.splice(0)) w();
      });
      server.on("clientError", (err: HeaderError) => {
        outcomes.push({ ok: false, code: err.code });
        for (const w of waiters.splice(0)) w();
      });
      server.on("connection", (s) => {
        accepted.add(s);
        s.on("close", () => accepted.delete(s));
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      process.off("uncaughtException", onCrash);
      const open = accepted.size;
      for (const s of accepted) s.destroy();
      await new Promise((r) => server.close(r));
      expect(open, "server-side sockets still open after every client closed").toBe(0);
    });

    it(`${SOCKET_RUNS} connections: each gets a header parsed or rejected with LB4.HEADER_*, the server keeps accepting`, async () => {
      const inputs = fc.sample(input(mode), { numRuns: SOCKET_RUNS, seed: SEED + 7 });
      const stuck: string[] = [];
      for (const buf of inputs) {
        const n = outcomes.length;
        const s = net.connect({ host: "127.0.0.1", port });
        s.on("error", () => undefined);
        s.on("data", () => undefined);
        await new Promise<void>((r) => s.once("connect", () => r()));
        s.end(buf);
        // The server answers every connection one way or the other; bounded by the header timeout and margin.
        const answered = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 6000);
          const check = () => {
            if (outcomes.length > n) {
              clearTimeout(t);
              resolve(true);
            } else waiters.push(check);
          };
          check();
        });
        s.destroy();
        if (!answered) stuck.push(buf.toString("hex"));
      }
      const ok = outcomes.filter((o) => o.ok).length;
      const codes: Record<string, number> = {};
      for (const o of outcomes) if (!o.ok) codes[o.code] = (codes[o.code] ?? 0) + 1;
      const garbage = outcomes.filter((o) => o.ok && net.isIP(o.client.address) === 0);
      // Still accepting: a valid header after all that.
      const probe = validHeader(mode, { address: "192.0.2.7", port: 4242 }, { address: "192.0.2.1", port: 80 }, false)!;
      const before = outcomes.length;
      const s = net.connect({ host: "127.0.0.1", port });
      s.on("error", () => undefined);
      s.on("data", () => undefined);
      s.end(probe);
      await waitFor(() => outcomes.length > before, 5000, "the probe connection's outcome");
      s.destroy();
      await waitFor(() => accepted.size === 0, 5000, "every server-side socket closed").catch(() => undefined);
      const last = outcomes[outcomes.length - 1]!;
      figure(`fuzz: ${mode} server (lb4/client-ip)`, `${SOCKET_RUNS} connections with random/mutated headers (seed ${SEED + 7}): ${ok} parsed, rejected: ${JSON.stringify(codes)}; ${stuck.length} unanswered; ${crashes.length} uncaught exceptions`, "each connection parsed or rejected with an LB4.HEADER_* code; no crash; the server keeps accepting");
      expect(crashes).toEqual([]);
      expect(stuck.slice(0, 5)).toEqual([]);
      expect(garbage).toEqual([]);
      for (const code of Object.keys(codes)) expect(code).toMatch(/^LB4\.HEADER_/);
      expect(last.ok && last.client.address).toBe("192.0.2.7");
    });
  });
});
