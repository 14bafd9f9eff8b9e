/**
 * TOA-style stream prefix (SPEC §7): IPv4 client `FE 08 PORT(2 BE) IPv4(4)` (8 bytes),
 * IPv6 client `FD 14 PORT(2 BE) IPv6(16)` (20 bytes). Kind/length as the TOA module's
 * TCP options 254/8 and 253/20. Only the source (client) travels.
 */
import { formatIPv4, formatIPv6 } from "./ip.js";
import { HeaderError, NEED_MORE, parseEndpoint, type DecodeResult, type EncodeAddress } from "./types.js";

export const TOA_KIND_V4 = 0xfe;
export const TOA_LEN_V4 = 8;
export const TOA_KIND_V6 = 0xfd;
export const TOA_LEN_V6 = 20;

const scratch = new Uint8Array(16);

export function encodeToa(source: EncodeAddress): Buffer {
  const fam = parseEndpoint("toa", "source", source, scratch);
  const p = source.port;
  if (fam === 4) {
    const out = Buffer.allocUnsafe(TOA_LEN_V4);
    out[0] = TOA_KIND_V4;
    out[1] = TOA_LEN_V4;
    out[2] = p >>> 8;
    out[3] = p & 0xff;
    out[4] = scratch[0]!;
    out[5] = scratch[1]!;
    out[6] = scratch[2]!;
    out[7] = scratch[3]!;
    return out;
  }
  const out = Buffer.allocUnsafe(TOA_LEN_V6);
  out[0] = TOA_KIND_V6;
  out[1] = TOA_LEN_V6;
  out[2] = p >>> 8;
  out[3] = p & 0xff;
  out.set(scratch, 4);
  return out;
}

/** Incremental: not-done until the whole 8/20 bytes are in; a wrong kind/length byte throws at once. */
export function decodeToa(buf: Uint8Array): DecodeResult {
  const n = buf.length;
  if (n === 0) return NEED_MORE;
  const kind = buf[0];
  const len = kind === TOA_KIND_V4 ? TOA_LEN_V4 : kind === TOA_KIND_V6 ? TOA_LEN_V6 : 0;
  if (len === 0) {
    throw new HeaderError("LB4.HEADER_BAD_SIGNATURE", `toa: first byte 0x${hex2(kind!)} is neither 0xfe (IPv4) nor 0xfd (IPv6)`);
  }
  if (n < 2) return NEED_MORE;
  if (buf[1] !== len) {
    throw new HeaderError("LB4.HEADER_BAD_SIGNATURE", `toa: length byte 0x${hex2(buf[1]!)} after kind 0x${hex2(kind!)}, expected ${len}`);
  }
  if (n < len) return NEED_MORE;
  const port = (buf[2]! << 8) | buf[3]!;
  const address = len === TOA_LEN_V4 ? formatIPv4(buf, 4) : formatIPv6(buf, 4);
  return {
    done: true,
    headerLength: len,
    info: { command: "PROXY", transport: "TCP", source: { family: len === TOA_LEN_V4 ? 4 : 6, address, port } },
  };
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}
