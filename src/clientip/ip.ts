/**
 * Small, allocation-free IP text <-> bytes helpers for the header codecs (SPEC §7).
 * IPv4 is strict dotted decimal without heading zeroes (proxy-protocol.txt §2.1);
 * IPv6 accepts every RFC 4291 §2.2 text form ("::", embedded IPv4 tail).
 */

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Parses s[start, end) as a dotted quad into out[off..off+4). */
export function parseIPv4Into(s: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let i = start;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= end || s.charCodeAt(i) !== 46) return false;
      i++;
    }
    if (i >= end) return false;
    let c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    let v = c - 48;
    i++;
    if (v !== 0) {
      // a leading "0" must stand alone: no heading zeroes
      for (let digits = 1; i < end; digits++) {
        c = s.charCodeAt(i);
        if (c < 48 || c > 57) break;
        if (digits === 3) return false;
        v = v * 10 + (c - 48);
        i++;
      }
      if (v > 255) return false;
    }
    out[off + part] = v;
  }
  return i === end;
}

/** Parses s[start, end) as IPv6 text into out[off..off+16). No zone id. */
export function parseIPv6Into(s: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let i = start;
  let n = 0; // 16-bit groups written
  let dcolon = -1; // group index where "::" stands
  if (i < end && s.charCodeAt(i) === 58) {
    if (i + 1 >= end || s.charCodeAt(i + 1) !== 58) return false;
    dcolon = 0;
    i += 2;
  }
  if (i < end) {
    for (;;) {
      const groupStart = i;
      let v = 0;
      let nd = 0;
      while (i < end && nd <= 4) {
        const h = hexVal(s.charCodeAt(i));
        if (h < 0) break;
        v = (v << 4) | h;
        nd++;
        i++;
      }
      if (i < end && s.charCodeAt(i) === 46) {
        // embedded IPv4: must be the last 32 bits
        if (n > 6 || !parseIPv4Into(s, groupStart, end, out, off + n * 2)) return false;
        n += 2;
        break;
      }
      if (nd === 0 || nd > 4 || n === 8) return false;
      out[off + n * 2] = v >>> 8;
      out[off + n * 2 + 1] = v & 0xff;
      n++;
      if (i === end) break;
      if (s.charCodeAt(i) !== 58) return false;
      i++;
      if (i < end && s.charCodeAt(i) === 58) {
        if (dcolon >= 0) return false;
        dcolon = n;
        i++;
        if (i === end) break;
      } else if (i === end) {
        return false; // trailing single ":"
      }
    }
  } else if (dcolon < 0) {
    return false; // empty
  }
  if (dcolon < 0) return n === 8;
  if (n > 7) return false;
  const tail = (n - dcolon) * 2;
  const gapEnd = off + 16 - tail;
  out.copyWithin(gapEnd, off + dcolon * 2, off + n * 2);
  out.fill(0, off + dcolon * 2, gapEnd);
  return true;
}

/** True when out[off..off+16) is ::ffff:a.b.c.d. */
export function isIPv4Mapped(b: Uint8Array, off: number): boolean {
  for (let k = 0; k < 10; k++) if (b[off + k] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/**
 * Parses an encoder's address text into out[0..16): returns 4 (bytes at 0..4), 6, or 0
 * when invalid. IPv4-mapped IPv6 ("::ffff:1.2.3.4", as Node reports on dual-stack
 * sockets) counts as IPv4; an IPv6 zone id ("%eth0") is dropped (no header carries it).
 */
export function parseAddressText(s: string, out: Uint8Array): 0 | 4 | 6 {
  if (typeof s !== "string") return 0;
  if (s.indexOf(":") < 0) return parseIPv4Into(s, 0, s.length, out, 0) ? 4 : 0;
  const pct = s.indexOf("%");
  if (!parseIPv6Into(s, 0, pct < 0 ? s.length : pct, out, 0)) return 0;
  if (isIPv4Mapped(out, 0)) {
    out.copyWithin(0, 12, 16);
    return 4;
  }
  return 6;
}

export function formatIPv4(b: Uint8Array, off: number): string {
  return `${b[off]!}.${b[off + 1]!}.${b[off + 2]!}.${b[off + 3]!}`;
}

/**
 * Formats 16 bytes as Node does (libuv inet_ntop: RFC 5952 "::" for the longest zero run
 * of 2+ groups, lower case). With `dotted`, ::a.b.c.d and ::ffff:a.b.c.d keep the IPv4
 * tail as libuv prints them; without, the output is hex groups only (PROXY v1 §2.1).
 */
export function formatIPv6(b: Uint8Array, off: number, dotted = true): string {
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let w = 0; w < 8; w++) {
    if (b[off + 2 * w] === 0 && b[off + 2 * w + 1] === 0) {
      if (curBase < 0) {
        curBase = w;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase >= 0) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase >= 0 && curLen > bestLen) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestLen < 2) bestBase = -1;
  if (dotted && bestBase === 0) {
    if (bestLen === 6) return "::" + formatIPv4(b, off + 12);
    if (bestLen === 5 && b[off + 10] === 0xff && b[off + 11] === 0xff) return "::ffff:" + formatIPv4(b, off + 12);
  }
  let s = "";
  for (let w = 0; w < 8; w++) {
    if (w === bestBase) {
      s += "::";
      w += bestLen - 1;
      continue;
    }
    if (w !== 0 && w !== bestBase + bestLen) s += ":";
    s += ((b[off + 2 * w]! << 8) | b[off + 2 * w + 1]!).toString(16);
  }
  return s;
}
