/** Round-trip, split delivery and fuzz properties of the SPEC §7 codecs (fast-check). */
import * as net from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CLIENT_IP_MODES,
  decodeHeader,
  encodeHeader,
  HeaderError,
  type ClientIpMode,
  type DecodeResult,
  type HeaderInput,
} from "../../../src/clientip/index.js";

/** What a decoder should report for an encoder's address text: Node's canonical form, mapped → IPv4. */
function expected(address: string): { family: 4 | 6; address: string } {
  if (net.isIPv4(address)) return { family: 4, address };
  const canon = new net.SocketAddress({ address, family: "ipv6" }).address;
  if (canon.startsWith("::ffff:") && canon.includes(".")) return { family: 4, address: canon.slice(7) };
  return { family: 6, address: canon };
}
/** The IPv4 side of a mixed pair travels mapped into IPv6 (proxy_v1/v2). */
const asV6 = (e: { family: 4 | 6; address: string }) => (e.family === 4 ? { family: 6, address: `::ffff:${e.address}` } : e);

const port = fc.integer({ min: 0, max: 65535 });
const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`));
const endpoint = fc.record({ address, port });
const mode = fc.constantFrom<ClientIpMode>(...CLIENT_IP_MODES);

/** A valid header of any mode, for split and mutation tests. */
const header = fc
  .tuple(mode, endpoint, endpoint, fc.constantFrom<"TCP" | "UDP">("TCP", "UDP"), fc.boolean())
  .map(([m, source, destination, transport, local]) => {
    const t = m === "proxy_v1" ? "TCP" : transport;
    const input: HeaderInput = local && m !== "toa" ? { command: "LOCAL" } : { source, destination, transport: t };
    return { mode: m, bytes: encodeHeader(m, input) };
  });

function isHeaderError(e: unknown): e is HeaderError {
  return e instanceof HeaderError && /^LB4\.HEADER_[A-Z_]+$/.test(e.code);
}
/** decodeHeader, turning a HeaderError into its code and failing on any other throw. */
function attempt(m: ClientIpMode, buf: Uint8Array, atEof = false): DecodeResult | string {
  try {
    return decodeHeader(m, buf, atEof);
  } catch (e) {
    if (!isHeaderError(e)) throw e;
    return e.code;
  }
}

describe("round trip: encode → decode gives the addresses back (every mode)", () => {
  it("random IPv4/IPv6/mapped addresses and ports", () => {
    fc.assert(
      fc.property(mode, endpoint, endpoint, fc.constantFrom<"TCP" | "UDP">("TCP", "UDP"), (m, source, destination, transport) => {
        const t = m === "proxy_v1" ? "TCP" : transport;
        const bytes = encodeHeader(m, { source, destination, transport: t });
        const r = decodeHeader(m, Buffer.concat([bytes, Buffer.from("payload")]));
        if (!r.done) throw new Error("not done");
        expect(r.headerLength).toBe(bytes.length);
        let es = expected(source.address);
        let ed = expected(destination.address);
        if (m !== "toa" && es.family !== ed.family) {
          es = asV6(es) as typeof es;
          ed = asV6(ed) as typeof ed;
        }
        expect(r.info.command).toBe("PROXY");
        expect(r.info.source).toEqual({ ...es, port: source.port });
        if (m === "toa") {
          expect(r.info.destination).toBeUndefined();
          expect(bytes.length).toBe(es.family === 4 ? 8 : 20);
        } else {
          expect(r.info.destination).toEqual({ ...ed, port: destination.port });
          expect(r.info.transport).toBe(t);
        }
        if (m === "proxy_v1") expect(bytes.length).toBeLessThanOrEqual(107);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("split delivery (a header across TCP segments)", () => {
  it("byte by byte: not done until the last byte, then the right headerLength", () => {
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 16 }), ({ mode: m, bytes }, tail) => {
        for (let k = 0; k < bytes.length; k++) {
          expect(decodeHeader(m, bytes.subarray(0, k))).toEqual({ done: false });
          expect(attempt(m, bytes.subarray(0, k), true)).toBe("LB4.HEADER_TRUNCATED");
        }
        const full = Buffer.concat([bytes, tail]);
        for (let k = bytes.length; k <= full.length; k++) {
          expect(decodeHeader(m, full.subarray(0, k), true)).toMatchObject({ done: true, headerLength: bytes.length });
        }
      }),
      { numRuns: 500 },
    );
  });
  it("random chunking with an incrementally grown buffer ends at the same place", () => {
    fc.assert(
      fc.property(header, fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 60 }), ({ mode: m, bytes }, cuts) => {
        let got = Buffer.alloc(0);
        let i = 0;
        let r: DecodeResult = { done: false };
        while (!r.done) {
          const step = cuts[i++ % cuts.length]!;
          got = Buffer.concat([got, bytes.subarray(got.length, got.length + step)]);
          r = decodeHeader(m, got);
        }
        expect(got.length).toBe(bytes.length);
        expect(r.headerLength).toBe(bytes.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe("fuzz: decodeHeader only ever answers or throws HeaderError", () => {
  const check = (m: ClientIpMode, buf: Uint8Array): void => {
    const r = attempt(m, buf);
    if (typeof r === "string") {
      // once bytes prove a header bad, more bytes never rescue it
      expect(attempt(m, Buffer.concat([buf, Buffer.from([0x0d, 0x0a, 0])]))).toBe(r);
      return;
    }
    if (r.done) {
      expect(r.headerLength).toBeGreaterThan(0);
      expect(r.headerLength).toBeLessThanOrEqual(buf.length);
      // every shorter prefix needs more bytes; every longer input agrees
      expect(attempt(m, buf.subarray(0, r.headerLength - 1))).toEqual({ done: false });
      expect(attempt(m, Buffer.concat([buf, Buffer.from("zz")]))).toEqual(r);
    } else {
      expect(attempt(m, buf, true)).toBe("LB4.HEADER_TRUNCATED");
    }
  };

  it("random bytes", () => {
    fc.assert(fc.property(mode, fc.uint8Array({ maxLength: 300 }), (m, buf) => check(m, buf)), { numRuns: 5000 });
  });
  it("random bytes behind a valid prefix (signature, ver/cmd, family)", () => {
    const prefix = fc.constantFrom(
      { m: "proxy_v2" as const, p: "0d0a0d0a000d0a515549540a" },
      { m: "proxy_v2" as const, p: "0d0a0d0a000d0a515549540a21" },
      { m: "proxy_v2" as const, p: "0d0a0d0a000d0a515549540a2111" },
      { m: "proxy_v2" as const, p: "0d0a0d0a000d0a515549540a2021" },
      { m: "proxy_v1" as const, p: Buffer.from("PROXY ").toString("hex") },
      { m: "proxy_v1" as const, p: Buffer.from("PROXY TCP4 ").toString("hex") },
      { m: "proxy_v1" as const, p: Buffer.from("PROXY TCP6 ").toString("hex") },
      { m: "toa" as const, p: "fe08" },
      { m: "toa" as const, p: "fd14" },
    );
    const printable = fc.string({ unit: fc.constantFrom(..."0123456789abcdef.: \r\nTCPUNKOWX"), maxLength: 120 });
    fc.assert(
      fc.property(prefix, fc.oneof(fc.uint8Array({ maxLength: 300 }), printable.map((s) => Buffer.from(s, "latin1"))), ({ m, p }, rest) =>
        check(m, Buffer.concat([Buffer.from(p, "hex"), rest])),
      ),
      { numRuns: 5000 },
    );
  });
  it("mutated valid headers (flip, truncate, insert, delete)", () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), val: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), val: fc.constant(0) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), val: fc.constantFrom(0x20, 0x0d, 0x0a, 0x3a, 0x2e, 0x30, 0x00, 0xff) }),
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), val: fc.constant(0) }),
    );
    fc.assert(
      fc.property(header, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ mode: m, bytes }, muts) => {
        let b = Buffer.from(bytes);
        for (const { kind, at, val } of muts) {
          const i = b.length === 0 ? 0 : at % b.length;
          if (kind === "flip" && b.length > 0) b[i] = val;
          else if (kind === "cut") b = b.subarray(0, i);
          else if (kind === "insert") b = Buffer.concat([b.subarray(0, i), Buffer.from([val]), b.subarray(i)]);
          else if (kind === "delete") b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
        }
        check(m, b);
      }),
      { numRuns: 5000 },
    );
  });
  it("huge buffers are judged on their first bytes (no hang, bounded work)", () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x41);
    for (const m of CLIENT_IP_MODES) {
      const t = performance.now();
      expect(typeof attempt(m, big)).toBe("string");
      expect(performance.now() - t).toBeLessThan(50);
    }
    const v1 = Buffer.concat([Buffer.from("PROXY "), big]);
    expect(attempt("proxy_v1", v1)).toBe("LB4.HEADER_TOO_LARGE");
  });
});
