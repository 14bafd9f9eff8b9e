/**
 * Listener access control (SPEC §3 `ipgroup`), pure. The list is compiled once into
 * sorted, merged IPv4 intervals (binary search, no allocation per check) and IPv6 ranges.
 * white: only listed addresses pass (empty list denies all); black: listed ones are
 * refused (empty list allows all).
 */
import { parseAddressText } from "../clientip/ip.js";
import { parseRange } from "../ip.js";

/** bigint → 16 big-endian bytes, for byte-wise range checks without bigint on the hot path. */
function v6Bytes(v: bigint): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function compare16(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

export type IpGroupType = "white" | "black";

export interface AccessList {
  /** True when a client with this address may connect. */
  allows(ip: string): boolean;
}

export const ALLOW_ALL: AccessList = { allows: () => true };

/** Dotted quad → uint32, or -1 when not a plain IPv4 address. Hot path: no allocation. */
export function parseIpv4(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

class CompiledList implements AccessList {
  constructor(
    private readonly white: boolean,
    private readonly starts: Float64Array,
    private readonly ends: Float64Array,
    private readonly v6: ReadonlyArray<{ start: Uint8Array; end: Uint8Array }>,
  ) {}

  /** Scratch buffer for parsing IPv6 clients (single-threaded, never escapes). */
  private readonly scratch = new Uint8Array(16);

  allows(ip: string): boolean {
    return this.listed(ip) === this.white;
  }

  private listed(ip: string): boolean {
    let v4 = parseIpv4(ip);
    if (v4 < 0 && ip.startsWith("::ffff:")) v4 = parseIpv4(ip.slice(7));
    if (v4 >= 0) {
      // Rightmost interval starting at or below v4.
      let lo = 0;
      let hi = this.starts.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (this.starts[mid]! <= v4) lo = mid + 1;
        else hi = mid - 1;
      }
      return hi >= 0 && v4 <= this.ends[hi]!;
    }
    if (this.v6.length === 0) return false;
    const b = this.scratch;
    if (parseAddressText(ip, b) !== 6) return false;
    for (const r of this.v6) if (compare16(b, r.start) >= 0 && compare16(b, r.end) <= 0) return true;
    return false;
  }
}

/** Compile a validated ip_list (addresses or CIDRs; validation rejects bad entries first). */
export function compileAccessList(group: { type: IpGroupType; ip_list: readonly string[] } | null | undefined): AccessList {
  if (!group) return ALLOW_ALL;
  const v4: Array<[number, number]> = [];
  const v6: Array<{ start: Uint8Array; end: Uint8Array }> = [];
  for (const entry of group.ip_list) {
    const r = parseRange(entry);
    if (!r) continue;
    if (r.family === 4) v4.push([Number(r.start), Number(r.end)]);
    else v6.push({ start: v6Bytes(r.start), end: v6Bytes(r.end) });
  }
  v4.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of v4) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return new CompiledList(
    group.type === "white",
    Float64Array.from(merged, (r) => r[0]),
    Float64Array.from(merged, (r) => r[1]),
    v6,
  );
}
