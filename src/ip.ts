/**
 * Address helpers for the pure core (config, ACL, cross-VPC). Parsing is done by
 * ip-address; ranges are kept as bigint [start, end] so IPv4 and IPv6 share one shape.
 */
import { Address4, Address6 } from "ip-address";

export type Family = 4 | 6;

export interface IpRange {
  family: Family;
  start: bigint;
  end: bigint;
  /** The text it came from, for messages. */
  text: string;
}

/** 4, 6, or 0 when `s` is not a plain IP address (no prefix length). */
export function ipFamily(s: string): 0 | Family {
  if (s.includes("/")) return 0;
  if (Address4.isValid(s)) return 4;
  if (Address6.isValid(s) && !s.includes("%")) return 6;
  return 0;
}

/** Node reports IPv4 clients of a dual-stack socket as "::ffff:a.b.c.d". */
export function normaliseIp(s: string): string {
  return s.length > 7 && s.startsWith("::ffff:") && s.indexOf(".") > 0 ? s.slice(7) : s;
}

/** Parse "a.b.c.d", "a.b.c.d/n", "v6" or "v6/n" into a range; undefined when invalid. */
export function parseRange(text: string): IpRange | undefined {
  const s = normaliseIp(text.trim());
  try {
    if (Address4.isValid(s)) {
      const a = new Address4(s);
      return { family: 4, start: a.startAddress().bigInt(), end: a.endAddress().bigInt(), text };
    }
    if (Address6.isValid(s) && !s.includes("%")) {
      const a = new Address6(s);
      const v4 = a.is4() ? a.to4() : undefined;
      if (v4 && !s.includes("/")) {
        const b = v4.bigInt();
        return { family: 4, start: b, end: b, text };
      }
      return { family: 6, start: a.startAddress().bigInt(), end: a.endAddress().bigInt(), text };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Numeric value of a plain address, undefined when invalid. IPv4-mapped IPv6 counts as IPv4. */
export function ipToBigInt(s: string): { family: Family; value: bigint } | undefined {
  const r = parseRange(s);
  if (!r || r.start !== r.end || s.includes("/")) return undefined;
  return { family: r.family, value: r.start };
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
