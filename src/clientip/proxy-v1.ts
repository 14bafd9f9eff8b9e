/**
 * PROXY protocol v1 text header (SPEC §7; HAProxy doc/proxy-protocol.txt §2.1):
 * `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n`, or `PROXY UNKNOWN[ ...]\r\n`;
 * at most 107 bytes including CRLF. Decoding is strict: single spaces, canonical numbers
 * (no heading zeroes), addresses of the announced family, CRLF only.
 */
import { formatIPv6, parseIPv4Into, parseIPv6Into } from "./ip.js";
import { HeaderError, NEED_MORE, parseEndpoint, type DecodeResult, type HeaderInput } from "./types.js";

export const PROXY_V1_MAX_LENGTH = 107;
const UNKNOWN_LINE = "PROXY UNKNOWN\r\n";
// "PROXY "
const PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20] as const;

const scratchA = new Uint8Array(16);
const scratchB = new Uint8Array(16);

function v4Text(original: string, bytes: Uint8Array): string {
  // strict IPv4 text is already canonical; mapped IPv6 text needs re-formatting
  return original.indexOf(":") < 0 ? original : `${bytes[0]!}.${bytes[1]!}.${bytes[2]!}.${bytes[3]!}`;
}

/** Hex-only IPv6 text (§2.1 "sets of 4 hexadecimal digits"), ≤ 39 chars. */
function v6Text(original: string, fam: 4 | 6, bytes: Uint8Array): string {
  if (fam === 4) {
    // mixed families: the IPv4 side travels as ::ffff:a.b.c.d in hex groups
    return `::ffff:${((bytes[0]! << 8) | bytes[1]!).toString(16)}:${((bytes[2]! << 8) | bytes[3]!).toString(16)}`;
  }
  if (original.length <= 39 && original.indexOf(".") < 0 && original.indexOf("%") < 0) return original;
  return formatIPv6(bytes, 0, false);
}

/**
 * LOCAL (health checks) → `PROXY UNKNOWN\r\n`. UDP cannot be expressed in v1 →
 * LB4.HEADER_UNSUPPORTED. An IPv4 and an IPv6 endpoint together → TCP6 with the IPv4
 * side mapped (as HAProxy does).
 */
export function encodeProxyV1(input: HeaderInput): Buffer {
  if (input.command === "LOCAL") return Buffer.from(UNKNOWN_LINE, "latin1");
  if (input.transport === "UDP") {
    throw new HeaderError("LB4.HEADER_UNSUPPORTED", "proxy_v1 carries TCP only; use proxy_v2 for UDP");
  }
  const { source, destination } = input;
  const fs = parseEndpoint("proxy_v1", "source", source, scratchA);
  const fd = parseEndpoint("proxy_v1", "destination", destination, scratchB);
  const line =
    fs === 4 && fd === 4
      ? `PROXY TCP4 ${v4Text(source.address, scratchA)} ${v4Text(destination.address, scratchB)} ${source.port} ${destination.port}\r\n`
      : `PROXY TCP6 ${v6Text(source.address, fs, scratchA)} ${v6Text(destination.address, fd, scratchB)} ${source.port} ${destination.port}\r\n`;
  return Buffer.from(line, "latin1");
}

/**
 * Incremental: not-done until CRLF; throws as soon as a byte proves the line bad
 * (prefix mismatch, bare CR/LF, control byte) or 107 bytes pass without CRLF.
 */
export function decodeProxyV1(buf: Uint8Array): DecodeResult {
  const n = buf.length;
  const m = n < 6 ? n : 6;
  for (let i = 0; i < m; i++) {
    if (buf[i] !== PREFIX[i]) {
      throw new HeaderError("LB4.HEADER_BAD_SIGNATURE", `proxy_v1: byte ${i} is 0x${buf[i]!.toString(16)}, the line must start with "PROXY "`);
    }
  }
  // CR must sit at index ≤ 105 so that CRLF ends within 107 bytes
  const lim = n < PROXY_V1_MAX_LENGTH - 1 ? n : PROXY_V1_MAX_LENGTH - 1;
  for (let i = 6; i < lim; i++) {
    const c = buf[i]!;
    if (c === 0x0d) {
      if (i + 1 === n) return NEED_MORE;
      if (buf[i + 1] !== 0x0a) throw malformed("CR not followed by LF");
      return parseLine(buf, i);
    }
    if (c === 0x0a) throw malformed("LF without CR");
    if (c < 0x20 || c > 0x7e) throw malformed(`byte 0x${c.toString(16)} at ${i} is not printable US-ASCII`);
  }
  if (n >= PROXY_V1_MAX_LENGTH - 1) {
    throw new HeaderError("LB4.HEADER_TOO_LARGE", `proxy_v1: no CRLF within the first ${PROXY_V1_MAX_LENGTH} bytes`);
  }
  return NEED_MORE;
}

function malformed(what: string): HeaderError {
  return new HeaderError("LB4.HEADER_MALFORMED", `proxy_v1: ${what}`);
}

function parseLine(buf: Uint8Array, cr: number): DecodeResult {
  const headerLength = cr + 2;
  // ≤ 100 printable chars: one latin1 string, then index arithmetic
  const s = Buffer.from(buf.buffer, buf.byteOffset, cr).toString("latin1", 6, cr);
  const sp = s.indexOf(" ");
  const proto = sp < 0 ? s : s.slice(0, sp);
  if (proto === "UNKNOWN") {
    // §2.1: the receiver ignores anything after UNKNOWN up to CRLF
    return { done: true, headerLength, info: { command: "PROXY", transport: "UNKNOWN" } };
  }
  if (proto !== "TCP4" && proto !== "TCP6") {
    if (proto === "") throw malformed("empty protocol field");
    throw new HeaderError("LB4.HEADER_UNSUPPORTED", `proxy_v1: protocol ${JSON.stringify(proto)} is not TCP4, TCP6 or UNKNOWN`);
  }
  if (sp < 0) throw malformed(`${proto} without addresses`);
  const a = sp + 1;
  const b = s.indexOf(" ", a);
  const c = b < 0 ? -1 : s.indexOf(" ", b + 1);
  const d = c < 0 ? -1 : s.indexOf(" ", c + 1);
  if (d < 0 || s.indexOf(" ", d + 1) >= 0) throw malformed("expected exactly: PROXY <proto> <src> <dst> <sport> <dport>");
  if (b === a || c === b + 1 || d === c + 1 || d + 1 === s.length) throw malformed("empty field (fields are separated by exactly one space)");
  const sport = parsePort(s, c + 1, d);
  const dport = parsePort(s, d + 1, s.length);
  if (sport < 0 || dport < 0) {
    throw new HeaderError("LB4.HEADER_BAD_ADDRESS", "proxy_v1: ports must be decimal 0..65535 without heading zeroes");
  }
  if (proto === "TCP4") {
    if (!parseIPv4Into(s, a, b, scratchA, 0) || !parseIPv4Into(s, b + 1, c, scratchB, 0)) {
      throw new HeaderError("LB4.HEADER_BAD_ADDRESS", `proxy_v1: TCP4 needs two dotted-quad IPv4 addresses, got ${JSON.stringify(s.slice(a, c))}`);
    }
    return {
      done: true,
      headerLength,
      info: {
        command: "PROXY",
        transport: "TCP",
        source: { family: 4, address: s.slice(a, b), port: sport },
        destination: { family: 4, address: s.slice(b + 1, c), port: dport },
      },
    };
  }
  if (!parseIPv6Into(s, a, b, scratchA, 0) || !parseIPv6Into(s, b + 1, c, scratchB, 0)) {
    throw new HeaderError("LB4.HEADER_BAD_ADDRESS", `proxy_v1: TCP6 needs two IPv6 addresses, got ${JSON.stringify(s.slice(a, c))}`);
  }
  return {
    done: true,
    headerLength,
    info: {
      command: "PROXY",
      transport: "TCP",
      source: { family: 6, address: formatIPv6(scratchA, 0), port: sport },
      destination: { family: 6, address: formatIPv6(scratchB, 0), port: dport },
    },
  };
}

/** Decimal 0..65535, no heading zero, no sign; -1 when invalid. */
function parsePort(s: string, start: number, end: number): number {
  const len = end - start;
  if (len < 1 || len > 5) return -1;
  if (len > 1 && s.charCodeAt(start) === 48) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v > 65535 ? -1 : v;
}
