import * as net from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatIPv6, parseAddressText, parseIPv4Into, parseIPv6Into } from "../../../src/clientip/ip.js";

const v4 = (s: string): boolean => parseIPv4Into(s, 0, s.length, new Uint8Array(4), 0);
const v6 = (s: string): boolean => parseIPv6Into(s, 0, s.length, new Uint8Array(16), 0);
/** Node's own formatting of an IPv6 text (libuv inet_ntop). */
const nodeFormat = (s: string): string => new net.SocketAddress({ address: s, family: "ipv6" }).address;

describe("IPv4 text (proxy-protocol.txt §2.1)", () => {
  it.each(["0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.1", "192.168.100.200"])("accepts %s", (s) => {
    expect(v4(s)).toBe(true);
  });
  it.each(["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1.2.3.00", "1..3.4", " 1.2.3.4", "1.2.3.4 ", "+1.2.3.4", "1.2.3.4a", "1000.1.1.1", "a.b.c.d"])(
    "rejects %j",
    (s) => {
      expect(v4(s)).toBe(false);
    },
  );
  it("agrees with net.isIPv4 on generated and mangled text", () => {
    const text = fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.string({ unit: fc.constantFrom(..."0123456789.") , maxLength: 18 }));
    fc.assert(fc.property(text, (s) => v4(s) === net.isIPv4(s)), { numRuns: 3000 });
  });
});

describe("IPv6 text (RFC 4291 §2.2)", () => {
  it.each(["::", "::1", "1::", "1:2:3:4:5:6:7:8", "1::8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "ABCD:ef01::", "0000:0000:0000:0000:0000:0000:0000:0001"])(
    "accepts %s",
    (s) => {
      expect(v6(s)).toBe(true);
    },
  );
  it.each(["", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", ":1::", "1:", "::1::", "1:::2", "12345::", "g::", "1.2.3.4", "::1.2.3", "::01.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4:5", "fe80::1%eth0", "::ffff:1.2.3.4.5"])(
    "rejects %j",
    (s) => {
      expect(v6(s)).toBe(false);
    },
  );
  it("agrees with net.isIPv6 on generated and mangled text", () => {
    const text = fc.oneof(
      fc.ipV6(),
      fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF:.g"), maxLength: 45 }),
      fc.ipV6().chain((s) => fc.nat(s.length).map((k) => s.slice(0, k) + s.slice(k + 1))),
    );
    fc.assert(fc.property(text, (s) => v6(s) === net.isIPv6(s)), { numRuns: 5000 });
  });
  it("formats bytes exactly as Node does (libuv inet_ntop), for random and zero-heavy addresses", () => {
    const word = fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
        const b = new Uint8Array(16);
        words.forEach((w, i) => {
          b[2 * i] = w >> 8;
          b[2 * i + 1] = w & 0xff;
        });
        const text = formatIPv6(b, 0);
        const back = new Uint8Array(16);
        expect(parseIPv6Into(text, 0, text.length, back, 0)).toBe(true);
        expect(back).toEqual(b);
        expect(text).toBe(nodeFormat(text));
        // hex-only form: no dots, ≤ 39 chars, same bytes
        const hex = formatIPv6(b, 0, false);
        expect(hex).not.toContain(".");
        expect(hex.length).toBeLessThanOrEqual(39);
        expect(parseIPv6Into(hex, 0, hex.length, back, 0)).toBe(true);
        expect(back).toEqual(b);
      }),
      { numRuns: 3000 },
    );
  });
  it("parseAddressText: IPv4-mapped counts as IPv4, zone ids are dropped", () => {
    const out = new Uint8Array(16);
    expect(parseAddressText("::ffff:127.0.0.1", out)).toBe(4);
    expect([...out.subarray(0, 4)]).toEqual([127, 0, 0, 1]);
    expect(parseAddressText("::FFFF:7f00:1", out)).toBe(4);
    expect(parseAddressText("fe80::1%eth0", out)).toBe(6);
    expect(parseAddressText("::1", out)).toBe(6);
    expect(parseAddressText("localhost", out)).toBe(0);
    expect(parseAddressText(undefined as unknown as string, out)).toBe(0);
  });
});
