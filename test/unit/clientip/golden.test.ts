/** Golden byte vectors, written by hand from SPEC §7 and proxy-protocol.txt. */
import { describe, expect, it } from "vitest";
import { decodeHeader, encodeHeader, type ClientIpMode, type HeaderInput, type ProxyHeaderInfo } from "../../../src/clientip/index.js";

const SIG = "0d0a0d0a000d0a515549540a";
const hex = (s: string): string => s.replace(/\s+/g, "");
const ep = (address: string, port: number) => ({ address, port });

interface Golden {
  name: string;
  mode: ClientIpMode;
  input: HeaderInput;
  hex: string;
  /** What decoding the bytes gives back. */
  info: ProxyHeaderInfo;
}

const v4pair = { source: ep("1.2.3.4", 80), destination: ep("5.6.7.8", 443) };
const v6pair = { source: ep("2001:db8::1", 1234), destination: ep("2001:db8::2", 5678) };
const tcp4Info = (transport: "TCP" | "UDP"): ProxyHeaderInfo => ({
  command: "PROXY",
  transport,
  source: { family: 4, address: "1.2.3.4", port: 80 },
  destination: { family: 4, address: "5.6.7.8", port: 443 },
});
const tcp6Info = (transport: "TCP" | "UDP"): ProxyHeaderInfo => ({
  command: "PROXY",
  transport,
  source: { family: 6, address: "2001:db8::1", port: 1234 },
  destination: { family: 6, address: "2001:db8::2", port: 5678 },
});

const goldens: Golden[] = [
  // --- toa: FE 08 PORT IPv4 / FD 14 PORT IPv6
  {
    name: "toa IPv4",
    mode: "toa",
    input: { source: ep("192.168.1.10", 8080), destination: ep("10.0.0.1", 80) },
    hex: "fe 08 1f90 c0a8010a",
    info: { command: "PROXY", transport: "TCP", source: { family: 4, address: "192.168.1.10", port: 8080 } },
  },
  {
    name: "toa IPv4-mapped input is sent as IPv4",
    mode: "toa",
    input: { source: ep("::ffff:10.0.0.1", 1), destination: ep("10.0.0.2", 80) },
    hex: "fe 08 0001 0a000001",
    info: { command: "PROXY", transport: "TCP", source: { family: 4, address: "10.0.0.1", port: 1 } },
  },
  {
    name: "toa IPv6",
    mode: "toa",
    input: { source: ep("2001:db8::1", 443), destination: ep("2001:db8::2", 80) },
    hex: "fd 14 01bb 20010db8 00000000 00000000 00000001",
    info: { command: "PROXY", transport: "TCP", source: { family: 6, address: "2001:db8::1", port: 443 } },
  },
  {
    name: "toa IPv6 loopback, port 65535",
    mode: "toa",
    input: { source: ep("::1", 65535), destination: ep("::1", 80) },
    hex: "fd 14 ffff 00000000 00000000 00000000 00000001",
    info: { command: "PROXY", transport: "TCP", source: { family: 6, address: "::1", port: 65535 } },
  },
  // --- proxy_v1: "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\n"
  {
    name: "proxy_v1 TCP4",
    mode: "proxy_v1",
    input: v4pair,
    hex: "50524f585920 54435034 20 312e322e332e34 20 352e362e372e38 20 3830 20 343433 0d0a",
    info: tcp4Info("TCP"),
  },
  {
    name: "proxy_v1 TCP4 (proxy-protocol.txt §2.1 example)",
    mode: "proxy_v1",
    input: { source: ep("192.168.0.1", 56324), destination: ep("192.168.0.11", 443) },
    hex: Buffer.from("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "latin1").toString("hex"),
    info: {
      command: "PROXY",
      transport: "TCP",
      source: { family: 4, address: "192.168.0.1", port: 56324 },
      destination: { family: 4, address: "192.168.0.11", port: 443 },
    },
  },
  {
    name: "proxy_v1 TCP6",
    mode: "proxy_v1",
    input: v6pair,
    hex: Buffer.from("PROXY TCP6 2001:db8::1 2001:db8::2 1234 5678\r\n", "latin1").toString("hex"),
    info: tcp6Info("TCP"),
  },
  {
    name: "proxy_v1 TCP6 with a dotted tail is re-written in hex groups",
    mode: "proxy_v1",
    input: { source: ep("1:2:3:4:5:6:1.2.3.4", 1), destination: ep("::1", 2) },
    hex: Buffer.from("PROXY TCP6 1:2:3:4:5:6:102:304 ::1 1 2\r\n", "latin1").toString("hex"),
    info: {
      command: "PROXY",
      transport: "TCP",
      source: { family: 6, address: "1:2:3:4:5:6:102:304", port: 1 },
      destination: { family: 6, address: "::1", port: 2 },
    },
  },
  {
    name: "proxy_v1 mixed families → TCP6 with the IPv4 side mapped",
    mode: "proxy_v1",
    input: { source: ep("10.0.0.1", 1), destination: ep("2001:db8::2", 2) },
    hex: Buffer.from("PROXY TCP6 ::ffff:a00:1 2001:db8::2 1 2\r\n", "latin1").toString("hex"),
    info: {
      command: "PROXY",
      transport: "TCP",
      source: { family: 6, address: "::ffff:10.0.0.1", port: 1 },
      destination: { family: 6, address: "2001:db8::2", port: 2 },
    },
  },
  {
    name: "proxy_v1 LOCAL → UNKNOWN",
    mode: "proxy_v1",
    input: { command: "LOCAL" },
    hex: "50524f585920 554e4b4e4f574e 0d0a",
    info: { command: "PROXY", transport: "UNKNOWN" },
  },
  // --- proxy_v2
  {
    name: "proxy_v2 TCP4",
    mode: "proxy_v2",
    input: v4pair,
    hex: `${SIG} 21 11 000c 01020304 05060708 0050 01bb`,
    info: tcp4Info("TCP"),
  },
  {
    name: "proxy_v2 UDP4",
    mode: "proxy_v2",
    input: { ...v4pair, transport: "UDP" },
    hex: `${SIG} 21 12 000c 01020304 05060708 0050 01bb`,
    info: tcp4Info("UDP"),
  },
  {
    name: "proxy_v2 TCP6",
    mode: "proxy_v2",
    input: v6pair,
    hex: `${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 162e`,
    info: tcp6Info("TCP"),
  },
  {
    name: "proxy_v2 UDP6",
    mode: "proxy_v2",
    input: { ...v6pair, transport: "UDP" },
    hex: `${SIG} 21 22 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 162e`,
    info: tcp6Info("UDP"),
  },
  {
    name: "proxy_v2 mixed families → TCP6 with the IPv4 side mapped",
    mode: "proxy_v2",
    input: { source: ep("10.0.0.1", 1), destination: ep("2001:db8::2", 2) },
    hex: `${SIG} 21 21 0024 00000000000000000000ffff0a000001 20010db8000000000000000000000002 0001 0002`,
    info: {
      command: "PROXY",
      transport: "TCP",
      source: { family: 6, address: "::ffff:10.0.0.1", port: 1 },
      destination: { family: 6, address: "2001:db8::2", port: 2 },
    },
  },
  {
    name: "proxy_v2 TCP4 as captured from HAProxy (172.19.0.1:42578 → 172.19.0.3:80)",
    mode: "proxy_v2",
    input: { source: ep("172.19.0.1", 42578), destination: ep("172.19.0.3", 80) },
    hex: "0d0a0d0a000d0a515549540a2111000cac130001ac130003a6520050",
    info: {
      command: "PROXY",
      transport: "TCP",
      source: { family: 4, address: "172.19.0.1", port: 42578 },
      destination: { family: 4, address: "172.19.0.3", port: 80 },
    },
  },
  {
    name: "proxy_v2 LOCAL (health checks, SPEC §7)",
    mode: "proxy_v2",
    input: { command: "LOCAL" },
    hex: `${SIG} 20 00 0000`,
    info: { command: "LOCAL", transport: "UNKNOWN" },
  },
];

describe("golden vectors (SPEC §7)", () => {
  it.each(goldens)("encode: $name", (g) => {
    expect(encodeHeader(g.mode, g.input).toString("hex")).toBe(hex(g.hex));
  });
  it.each(goldens)("decode: $name", (g) => {
    const bytes = Buffer.from(hex(g.hex), "hex");
    const withPayload = Buffer.concat([bytes, Buffer.from("GET / HTTP/1.1\r\n")]);
    expect(decodeHeader(g.mode, withPayload)).toEqual({ done: true, headerLength: bytes.length, info: g.info });
  });
  it("encoders return fresh buffers (LOCAL is not a shared constant)", () => {
    const a = encodeHeader("proxy_v2", { command: "LOCAL" });
    a[0] = 0;
    expect(encodeHeader("proxy_v2", { command: "LOCAL" })[0]).toBe(0x0d);
  });
});

describe("decode-only vectors", () => {
  it("proxy_v2 skips TLVs inside the length", () => {
    // TCP4 + PP2_TYPE_NOOP (0x04) of 4 bytes + PP2_TYPE_AUTHORITY (0x02) "ab": len 12 + 7 + 5 = 24 (0x18)
    const h = Buffer.from(hex(`${SIG} 21 11 0018 01020304 05060708 0050 01bb 04 0004 00000000 02 0002 6162`), "hex");
    expect(h.length).toBe(40);
    expect(decodeHeader("proxy_v2", Buffer.concat([h, Buffer.from("x")]))).toEqual({ done: true, headerLength: 40, info: tcp4Info("TCP") });
  });
  it("proxy_v2 LOCAL with an address block: the block is skipped and ignored", () => {
    const h = Buffer.from(hex(`${SIG} 20 11 000c 01020304 05060708 0050 01bb`), "hex");
    expect(decodeHeader("proxy_v2", h)).toEqual({ done: true, headerLength: 28, info: { command: "LOCAL", transport: "TCP" } });
  });
  it("proxy_v2 PROXY over UNSPEC and AF_UNIX: no address, length honoured", () => {
    expect(decodeHeader("proxy_v2", Buffer.from(hex(`${SIG} 21 00 0003 aabbcc`), "hex"))).toEqual({
      done: true,
      headerLength: 19,
      info: { command: "PROXY", transport: "UNKNOWN" },
    });
    const unix = Buffer.concat([Buffer.from(hex(`${SIG} 21 31 00d8`), "hex"), Buffer.alloc(216)]);
    expect(decodeHeader("proxy_v2", unix)).toEqual({ done: true, headerLength: 232, info: { command: "PROXY", transport: "UNKNOWN" } });
  });
  it("proxy_v1 UNKNOWN with trailing fields (the receiver ignores them)", () => {
    const line = "PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n";
    expect(decodeHeader("proxy_v1", Buffer.from(line))).toEqual({ done: true, headerLength: line.length, info: { command: "PROXY", transport: "UNKNOWN" } });
  });
  it("proxy_v1 TCP6 addresses come back in Node's canonical form", () => {
    const r = decodeHeader("proxy_v1", Buffer.from("PROXY TCP6 2001:0DB8:0:0:0:0:0:1 ::FFFF:1.2.3.4 0 65535\r\n"));
    expect(r).toMatchObject({
      done: true,
      info: { source: { family: 6, address: "2001:db8::1", port: 0 }, destination: { family: 6, address: "::ffff:1.2.3.4", port: 65535 } },
    });
  });
  it("proxy_v1 longest IPv6 line (104 bytes) decodes", () => {
    const f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const line = `PROXY TCP6 ${f} ${f} 65535 65535\r\n`;
    expect(line.length).toBe(104);
    expect(decodeHeader("proxy_v1", Buffer.from(line))).toMatchObject({ done: true, headerLength: 104 });
  });
});
