/**
 * MurmurHash3_x86_32 (Austin Appleby, SMHasher, public domain), written out so every lb4
 * process (and any other implementation) hashes the same string to the same value.
 * Input is the string's UTF-8 bytes. ASCII strings (IP addresses, "address:port" keys)
 * are hashed straight from charCodeAt with no allocation; anything else is encoded first.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3_x86_32 of the UTF-8 bytes of `s`, as an unsigned 32-bit integer. */
export function murmur3(s: string, seed = 0): number {
  const len = s.length;
  const blocks = len & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    const b0 = s.charCodeAt(i);
    const b1 = s.charCodeAt(i + 1);
    const b2 = s.charCodeAt(i + 2);
    const b3 = s.charCodeAt(i + 3);
    if ((b0 | b1 | b2 | b3) > 0x7f) return murmur3Bytes(Buffer.from(s, "utf8"), seed);
    let k = b0 | (b1 << 8) | (b2 << 16) | (b3 << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (len & 3) {
    case 3: {
      const b = s.charCodeAt(i + 2);
      if (b > 0x7f) return murmur3Bytes(Buffer.from(s, "utf8"), seed);
      k ^= b << 16;
    }
    // falls through
    case 2: {
      const b = s.charCodeAt(i + 1);
      if (b > 0x7f) return murmur3Bytes(Buffer.from(s, "utf8"), seed);
      k ^= b << 8;
    }
    // falls through
    case 1: {
      const b = s.charCodeAt(i);
      if (b > 0x7f) return murmur3Bytes(Buffer.from(s, "utf8"), seed);
      k ^= b;
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
    }
  }
  return fmix32(h ^ len);
}

/** MurmurHash3_x86_32 of raw bytes, as an unsigned 32-bit integer. */
export function murmur3Bytes(bytes: Uint8Array, seed = 0): number {
  const len = bytes.length;
  const blocks = len & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= bytes[i + 2]! << 16;
    // falls through
    case 2:
      k ^= bytes[i + 1]! << 8;
    // falls through
    case 1:
      k ^= bytes[i]!;
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
  }
  return fmix32(h ^ len);
}

/** MurmurHash3's finaliser: full avalanche, so `h % M` uses every input bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
