/**
 * PROXY protocol v2 binary header (SPEC §7; HAProxy doc/proxy-protocol.txt §2.2):
 * 12-byte signature, ver/cmd (0x21 PROXY, 0x20 LOCAL), fam/transport (0x11 TCP4,
 * 0x12 UDP4, 0x21 TCP6, 0x22 UDP6, 0x00 UNSPEC), 2-byte BE length, then addresses,
 * ports and optional TLVs (skipped).
 */
import { formatIPv4, formatIPv6 } from "./ip.js";
import { HeaderError, NEED_MORE, parseEndpoint, type DecodeResult, type HeaderInput, type ProxyHeaderInfo } from "./types.js";

export const PROXY_V2_SIGNATURE: Readonly<Uint8Array> = Uint8Array.of(
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
);
/** Largest accepted value of the length field (addresses + TLVs); more → LB4.HEADER_TOO_LARGE. */
export const PROXY_V2_MAX_LENGTH = 2048;

const LOCAL_HEADER = Buffer.from([...PROXY_V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00]);

const scratchA = new Uint8Array(16);
const scratchB = new Uint8Array(16);

function put16(out: Buffer, off: number, fam: 4 | 6, bytes: Uint8Array): void {
  if (fam === 6) {
    out.set(bytes, off);
    return;
  }
  // IPv4 side of a mixed pair: ::ffff:a.b.c.d
  out.fill(0, off, off + 10);
  out[off + 10] = 0xff;
  out[off + 11] = 0xff;
  out[off + 12] = bytes[0]!;
  out[off + 13] = bytes[1]!;
  out[off + 14] = bytes[2]!;
  out[off + 15] = bytes[3]!;
}

/**
 * LOCAL → 16 bytes `sig 20 00 00 00` (health checks). An IPv4 and an IPv6 endpoint
 * together → AF_INET6 with the IPv4 side mapped.
 */
export function encodeProxyV2(input: HeaderInput): Buffer {
  if (input.command === "LOCAL") return Buffer.from(LOCAL_HEADER);
  const { source, destination } = input;
  const fs = parseEndpoint("proxy_v2", "source", source, scratchA);
  const fd = parseEndpoint("proxy_v2", "destination", destination, scratchB);
  const t = input.transport === "UDP" ? 0x02 : 0x01;
  const sp = source.port;
  const dp = destination.port;
  let out: Buffer;
  let po: number;
  if (fs === 4 && fd === 4) {
    out = Buffer.allocUnsafe(28);
    out.set(PROXY_V2_SIGNATURE, 0);
    out[12] = 0x21;
    out[13] = 0x10 | t;
    out[14] = 0;
    out[15] = 12;
    out[16] = scratchA[0]!;
    out[17] = scratchA[1]!;
    out[18] = scratchA[2]!;
    out[19] = scratchA[3]!;
    out[20] = scratchB[0]!;
    out[21] = scratchB[1]!;
    out[22] = scratchB[2]!;
    out[23] = scratchB[3]!;
    po = 24;
  } else {
    out = Buffer.allocUnsafe(52);
    out.set(PROXY_V2_SIGNATURE, 0);
    out[12] = 0x21;
    out[13] = 0x20 | t;
    out[14] = 0;
    out[15] = 36;
    put16(out, 16, fs, scratchA);
    put16(out, 32, fd, scratchB);
    po = 48;
  }
  out[po] = sp >>> 8;
  out[po + 1] = sp & 0xff;
  out[po + 2] = dp >>> 8;
  out[po + 3] = dp & 0xff;
  return out;
}

/**
 * Incremental: a signature byte, version, command or family is rejected as soon as it
 * arrives; the length is checked once the 16-byte fixed part is in.
 */
export function decodeProxyV2(buf: Uint8Array): DecodeResult {
  const n = buf.length;
  const m = n < 12 ? n : 12;
  for (let i = 0; i < m; i++) {
    if (buf[i] !== PROXY_V2_SIGNATURE[i]) {
      throw new HeaderError("LB4.HEADER_BAD_SIGNATURE", `proxy_v2: signature byte ${i} is 0x${buf[i]!.toString(16)}, expected 0x${PROXY_V2_SIGNATURE[i]!.toString(16)}`);
    }
  }
  if (n < 13) return NEED_MORE;
  const verCmd = buf[12]!;
  if (verCmd >>> 4 !== 2) {
    throw new HeaderError("LB4.HEADER_UNSUPPORTED", `proxy_v2: version ${verCmd >>> 4}, only version 2 is defined`);
  }
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new HeaderError("LB4.HEADER_UNSUPPORTED", `proxy_v2: command ${cmd} is neither LOCAL (0) nor PROXY (1)`);
  if (n < 14) return NEED_MORE;
  const famByte = buf[13]!;
  const fam = famByte >>> 4;
  const tr = famByte & 0x0f;
  if (fam > 3 || tr > 2) {
    throw new HeaderError("LB4.HEADER_UNSUPPORTED", `proxy_v2: family/transport byte 0x${famByte.toString(16)} is not defined`);
  }
  if (n < 16) return NEED_MORE;
  const len = (buf[14]! << 8) | buf[15]!;
  if (len > PROXY_V2_MAX_LENGTH) {
    throw new HeaderError("LB4.HEADER_TOO_LARGE", `proxy_v2: length ${len} exceeds the accepted maximum ${PROXY_V2_MAX_LENGTH}`);
  }
  // addresses are read only for PROXY over INET/INET6 with a known transport
  const inet = cmd === 1 && tr !== 0 && (fam === 1 || fam === 2);
  const need = inet ? (fam === 1 ? 12 : 36) : 0;
  if (len < need) {
    throw new HeaderError("LB4.HEADER_MALFORMED", `proxy_v2: length ${len} is shorter than the ${need} address bytes of family 0x${famByte.toString(16)}`);
  }
  const headerLength = 16 + len;
  if (n < headerLength) return NEED_MORE;
  const command = cmd === 1 ? "PROXY" : "LOCAL";
  const transport = tr === 1 ? "TCP" : tr === 2 ? "UDP" : "UNKNOWN";
  let info: ProxyHeaderInfo;
  if (!inet) {
    // LOCAL: "discard the protocol block including the family"; UNSPEC/AF_UNIX: use real endpoints
    info = { command, transport: fam === 1 || fam === 2 ? transport : "UNKNOWN" };
  } else if (fam === 1) {
    info = {
      command,
      transport,
      source: { family: 4, address: formatIPv4(buf, 16), port: (buf[24]! << 8) | buf[25]! },
      destination: { family: 4, address: formatIPv4(buf, 20), port: (buf[26]! << 8) | buf[27]! },
    };
  } else {
    info = {
      command,
      transport,
      source: { family: 6, address: formatIPv6(buf, 16), port: (buf[48]! << 8) | buf[49]! },
      destination: { family: 6, address: formatIPv6(buf, 32), port: (buf[50]! << 8) | buf[51]! },
    };
  }
  return { done: true, headerLength, info };
}
