/**
 * Address helpers for the pure core (config, ACL, cross-VPC, admin). One parser for all
 * address text: the strict byte parsers of clientip/ip.ts (IPv4 dotted decimal without
 * leading zeros; every RFC 4291 IPv6 text form; no zone ids). Ranges are kept as bigint
 * [start, end] so IPv4 and IPv6 share one shape.
 *
 * Canonical text (what the config schema stores, so duplicates, keys and lookups compare
 * strings): IPv4 dotted decimal; IPv6 as RFC 5952 (lower case, leading zeros dropped, the
 * longest run of two or more zero groups as "::", hex groups only); an IPv4-mapped IPv6
 * address (::ffff:0:0/96, any spelling) is the IPv4 address it maps, since a dual-stack
 * socket reaches the same endpoint either way.
 */
import { formatIPv4, formatIPv6, isIPv4Mapped, parseIPv4Into, parseIPv6Into } from "./clientip/ip.js";

export type Family = 4 | 6;

export interface IpRange {
  family: Family;
  start: bigint;
  end: bigint;
  /** The text it came from, for messages. */
  text: string;
}

/** Scratch for the parser; every function here fills and reads it synchronously. */
const buf = new Uint8Array(16);

/** Parse address text into `buf`: 4 (bytes 0..4), 6 (bytes 0..16) or 0. By spelling, not value. */
function parseInto(s: string): 0 | Family {
  if (typeof s !== "string" || s.length === 0) return 0;
  if (s.indexOf(":") < 0) return parseIPv4Into(s, 0, s.length, buf, 0) ? 4 : 0;
  return parseIPv6Into(s, 0, s.length, buf, 0) ? 6 : 0;
}

function bytesToBigInt(off: number, n: number): bigint {
  let v = 0n;
  for (let i = off; i < off + n; i++) v = (v << 8n) | BigInt(buf[i]!);
  return v;
}

/** 4, 6, or 0 when `s` is not a plain IP address (no prefix length, no zone id). By spelling: "::ffff:1.2.3.4" is 6. */
export function ipFamily(s: string): 0 | Family {
  return parseInto(s);
}

/**
 * The canonical text of a plain address (see the top of this file), or undefined when `s`
 * is not one. "FD00:0:0::5" → "fd00::5", "::ffff:10.0.0.1" → "10.0.0.1".
 */
export function canonicalIp(s: string): string | undefined {
  const f = parseInto(s);
  if (f === 4) return s; // the parser admits only the canonical spelling
  if (f === 0) return undefined;
  return isIPv4Mapped(buf, 0) ? formatIPv4(buf, 12) : formatIPv6(buf, 0, false);
}

/**
 * The canonical text of an address or CIDR: an address as canonicalIp(); a CIDR as its
 * network address and prefix length ("10.0.0.5/16" → "10.0.0.0/16", "FD00:0::/64" →
 * "fd00::/64", "::ffff:10.0.0.0/104" → "10.0.0.0/8"). Undefined when invalid.
 */
export function canonicalRange(text: string): string | undefined {
  const s = text.trim();
  if (s.indexOf("/") < 0) return canonicalIp(s);
  const r = parseRange(s);
  if (!r) return undefined;
  const width = r.family === 4 ? 32 : 128;
  const hostBits = (r.end - r.start).toString(2).length - (r.end === r.start ? 1 : 0);
  return `${formatValue(r.family, r.start)}/${width - hostBits}`;
}

function formatValue(family: Family, v: bigint): string {
  if (family === 4) return bigIntToIpv4(v);
  for (let i = 15; i >= 0; i--, v >>= 8n) buf[i] = Number(v & 0xffn);
  return formatIPv6(buf, 0, false);
}

/** Node reports IPv4 clients of a dual-stack socket as "::ffff:a.b.c.d". */
export function normaliseIp(s: string): string {
  return s.length > 7 && s.startsWith("::ffff:") && s.indexOf(".") > 0 ? s.slice(7) : s;
}

const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parse "a.b.c.d", "a.b.c.d/n", "v6" or "v6/n" into a range; undefined when invalid.
 * IPv4-mapped IPv6 counts as IPv4: a plain address always, a CIDR when its prefix lies
 * inside ::ffff:0:0/96 (length ≥ 96).
 */
export function parseRange(text: string): IpRange | undefined {
  const s = text.trim();
  const slash = s.indexOf("/");
  if (slash < 0) {
    const a = ipToBigInt(s);
    return a && { family: a.family, start: a.value, end: a.value, text };
  }
  const prefix = s.slice(slash + 1);
  if (!PREFIX.test(prefix)) return undefined;
  let bits = Number(prefix);
  const f = parseInto(s.slice(0, slash));
  if (f === 0 || bits > (f === 4 ? 32 : 128)) return undefined;
  let family: Family = f;
  let value = f === 4 ? bytesToBigInt(0, 4) : bytesToBigInt(0, 16);
  if (f === 6 && bits >= 96 && isIPv4Mapped(buf, 0)) {
    family = 4;
    bits -= 96;
    value &= 0xffffffffn;
  }
  const host = BigInt((family === 4 ? 32 : 128) - bits);
  const start = (value >> host) << host;
  return { family, start, end: start | ((1n << host) - 1n), text };
}

/** Numeric value of a plain address, undefined when invalid. IPv4-mapped IPv6 counts as IPv4. */
export function ipToBigInt(s: string): { family: Family; value: bigint } | undefined {
  const f = parseInto(s);
  if (f === 4) return { family: 4, value: bytesToBigInt(0, 4) };
  if (f === 0) return undefined;
  if (isIPv4Mapped(buf, 0)) return { family: 4, value: bytesToBigInt(12, 4) };
  return { family: 6, value: bytesToBigInt(0, 16) };
}

export function rangeContains(r: IpRange, family: Family, value: bigint): boolean {
  return r.family === family && value >= r.start && value <= r.end;
}

export function bigIntToIpv4(v: bigint): string {
  const n = Number(v);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function isLoopback(host: string): boolean {
  const v = ipToBigInt(host);
  if (!v) return host === "localhost";
  return v.family === 4 ? v.value >> 24n === 127n : v.value === 1n;
}
