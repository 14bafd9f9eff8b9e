/** Specific bad inputs and their stable error codes (SPEC §7: reject, never pass garbage on). */
import { describe, expect, it } from "vitest";
import { Lb4Error } from "../../../src/errors.js";
import {
  decodeDatagram,
  decodeHeader,
  encodeHeader,
  HeaderError,
  type ClientIpMode,
  type HeaderErrorCode,
  type HeaderInput,
} from "../../../src/clientip/index.js";

const SIG = "0d0a0d0a000d0a515549540a";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HeaderError);
    expect(e).toBeInstanceOf(Lb4Error);
    return (e as HeaderError).code;
  }
  return "no error";
}
const dec = (m: ClientIpMode, b: Buffer | string, eof = false) => () =>
  decodeHeader(m, typeof b === "string" ? Buffer.from(b, "latin1") : b, eof);
const v2 = (h: string) => Buffer.from(h.replace(/\s+/g, ""), "hex");

describe("proxy_v1 decode errors", () => {
  const cases: [string, HeaderErrorCode][] = [
    ["PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 1.1.1.1 1.1.1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 01.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 ::1 ::1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP6 1.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP6 1::2::3 ::1 1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 65536 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 01 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 +1 2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 1 0x2\r\n", "LB4.HEADER_BAD_ADDRESS"],
    ["PROXY TCP4  1.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 1 2 \r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 1 2 3\r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4\r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY \r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 1 2\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4 1.1.1.1 1.1.1.1 1 2\r\r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY TCP4\t1.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_MALFORMED"],
    ["PROXY UDP4 1.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_UNSUPPORTED"],
    ["PROXY TCP5 1.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_UNSUPPORTED"],
    ["proxy TCP4 1.1.1.1 1.1.1.1 1 2\r\n", "LB4.HEADER_BAD_SIGNATURE"],
    ["GET / HTTP/1.1\r\n", "LB4.HEADER_BAD_SIGNATURE"],
  ];
  it.each(cases)("%j → %s", (line, code) => {
    expect(codeOf(dec("proxy_v1", line))).toBe(code);
  });
  it("a wrong first byte is rejected at once", () => {
    expect(codeOf(dec("proxy_v1", "G"))).toBe("LB4.HEADER_BAD_SIGNATURE");
    expect(codeOf(dec("proxy_v1", "PROXX"))).toBe("LB4.HEADER_BAD_SIGNATURE");
    expect(codeOf(dec("proxy_v1", "PROX"))).toBe("no error");
  });
  it("a bare LF is rejected as soon as it is seen", () => {
    expect(codeOf(dec("proxy_v1", "PROXY TCP4 1.2\n"))).toBe("LB4.HEADER_MALFORMED");
  });
  it("no CRLF within 107 bytes → too large, without waiting for more", () => {
    expect(codeOf(dec("proxy_v1", "PROXY " + "A".repeat(99)))).toBe("no error"); // 105 bytes
    expect(codeOf(dec("proxy_v1", "PROXY " + "A".repeat(100)))).toBe("LB4.HEADER_TOO_LARGE"); // 106: CR could only be at 106
    expect(codeOf(dec("proxy_v1", "PROXY " + "A".repeat(200)))).toBe("LB4.HEADER_TOO_LARGE");
    // a 107-byte UNKNOWN line is the longest accepted; 108 is not
    const l107 = "PROXY UNKNOWN " + "f".repeat(91) + "\r\n";
    expect(l107.length).toBe(107);
    expect(decodeHeader("proxy_v1", Buffer.from(l107))).toMatchObject({ done: true, headerLength: 107 });
    expect(codeOf(dec("proxy_v1", "PROXY UNKNOWN " + "f".repeat(92) + "\r\n"))).toBe("LB4.HEADER_TOO_LARGE");
  });
  it("truncated: needs more, and at EOF an error", () => {
    expect(decodeHeader("proxy_v1", Buffer.from("PROXY TCP4 1.1.1.1 1.1.1.1 1 2\r"))).toEqual({ done: false });
    expect(codeOf(dec("proxy_v1", "PROXY TCP4 1.1.1.1 1.1.1.1 1 2\r", true))).toBe("LB4.HEADER_TRUNCATED");
    expect(codeOf(dec("proxy_v1", "", true))).toBe("LB4.HEADER_TRUNCATED");
  });
});

describe("proxy_v2 decode errors", () => {
  it("a wrong signature byte is rejected as soon as it arrives", () => {
    expect(codeOf(dec("proxy_v2", v2("0d0a0d0a01")))).toBe("LB4.HEADER_BAD_SIGNATURE");
    expect(codeOf(dec("proxy_v2", v2("0d0a0d0a00")))).toBe("no error");
    expect(codeOf(dec("proxy_v2", "PROXY TCP4 1.1.1.1 1.1.1.1 1 2\r\n"))).toBe("LB4.HEADER_BAD_SIGNATURE");
  });
  it("unknown version / command / family / transport → unsupported", () => {
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 11`)))).toBe("LB4.HEADER_UNSUPPORTED");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 31`)))).toBe("LB4.HEADER_UNSUPPORTED");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 22`)))).toBe("LB4.HEADER_UNSUPPORTED");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 41`)))).toBe("LB4.HEADER_UNSUPPORTED");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 13`)))).toBe("LB4.HEADER_UNSUPPORTED");
  });
  it("oversized length is rejected from the fixed 16 bytes alone", () => {
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 11 0801`)))).toBe("LB4.HEADER_TOO_LARGE");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 11 ffff`)))).toBe("LB4.HEADER_TOO_LARGE");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 11 0800`)))).toBe("no error");
  });
  it("length shorter than the family's addresses → malformed", () => {
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 11 000b`)))).toBe("LB4.HEADER_MALFORMED");
    expect(codeOf(dec("proxy_v2", v2(`${SIG} 21 21 000c`)))).toBe("LB4.HEADER_MALFORMED");
    // LOCAL ignores the address block, so any length is fine
    expect(decodeHeader("proxy_v2", v2(`${SIG} 20 21 0000`))).toMatchObject({ done: true, headerLength: 16 });
  });
  it("truncated: needs more, and at EOF an error", () => {
    const h = v2(`${SIG} 21 11 000c 01020304 05060708 0050`);
    expect(decodeHeader("proxy_v2", h)).toEqual({ done: false });
    expect(codeOf(dec("proxy_v2", h, true))).toBe("LB4.HEADER_TRUNCATED");
  });
});

describe("toa decode errors", () => {
  it("unknown kind or length byte → bad signature", () => {
    expect(codeOf(dec("toa", v2("00")))).toBe("LB4.HEADER_BAD_SIGNATURE");
    expect(codeOf(dec("toa", v2("fe09")))).toBe("LB4.HEADER_BAD_SIGNATURE");
    expect(codeOf(dec("toa", v2("fd08")))).toBe("LB4.HEADER_BAD_SIGNATURE");
  });
  it("truncated: needs more, and at EOF an error", () => {
    expect(decodeHeader("toa", v2("fe080050c0a8"))).toEqual({ done: false });
    expect(codeOf(dec("toa", v2("fe080050c0a8"), true))).toBe("LB4.HEADER_TRUNCATED");
  });
});

describe("encoder errors", () => {
  const good = { source: { address: "1.2.3.4", port: 1 }, destination: { address: "5.6.7.8", port: 2 } };
  const cases: [string, ClientIpMode, HeaderInput, HeaderErrorCode][] = [
    ["bad IPv4 text", "toa", { ...good, source: { address: "999.1.1.1", port: 1 } }, "LB4.HEADER_BAD_ADDRESS"],
    ["hostname", "proxy_v1", { ...good, destination: { address: "localhost", port: 2 } }, "LB4.HEADER_BAD_ADDRESS"],
    ["bad IPv6 text", "proxy_v2", { ...good, source: { address: "1:::2", port: 1 } }, "LB4.HEADER_BAD_ADDRESS"],
    ["port 65536", "proxy_v2", { ...good, source: { address: "1.2.3.4", port: 65536 } }, "LB4.HEADER_BAD_ADDRESS"],
    ["port -1", "proxy_v1", { ...good, destination: { address: "1.2.3.4", port: -1 } }, "LB4.HEADER_BAD_ADDRESS"],
    ["port 1.5", "toa", { ...good, source: { address: "1.2.3.4", port: 1.5 } }, "LB4.HEADER_BAD_ADDRESS"],
    ["UDP in proxy_v1", "proxy_v1", { ...good, transport: "UDP" }, "LB4.HEADER_UNSUPPORTED"],
    ["LOCAL in toa", "toa", { command: "LOCAL" }, "LB4.HEADER_UNSUPPORTED"],
    ["unknown mode", "proxy_v3" as ClientIpMode, good, "LB4.HEADER_UNSUPPORTED"],
  ];
  it.each(cases)("%s", (_name, m, input, code) => {
    expect(codeOf(() => encodeHeader(m, input))).toBe(code);
  });
  it("unknown mode on decode", () => {
    expect(codeOf(dec("off" as ClientIpMode, "x"))).toBe("LB4.HEADER_UNSUPPORTED");
  });
});

describe("decodeDatagram (proxy_v2 on UDP pools, SPEC §7)", () => {
  it("splits header and payload", () => {
    const h = encodeHeader("proxy_v2", { ...{ source: { address: "10.1.1.1", port: 5353 }, destination: { address: "10.0.0.1", port: 53 } }, transport: "UDP" });
    const d = decodeDatagram("proxy_v2", Buffer.concat([h, Buffer.from("query")]));
    expect(d.headerLength).toBe(28);
    expect(Buffer.from(d.payload).toString()).toBe("query");
    expect(d.info).toMatchObject({ transport: "UDP", source: { address: "10.1.1.1", port: 5353 } });
  });
  it("a datagram shorter than its header is truncated", () => {
    expect(codeOf(() => decodeDatagram("proxy_v2", v2(`${SIG} 21 12 000c 0102`)))).toBe("LB4.HEADER_TRUNCATED");
  });
});
