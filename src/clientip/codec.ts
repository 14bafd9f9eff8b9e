/**
 * One entry for the three client address header codecs of SPEC §7. Pure.
 */
import { decodeProxyV1, encodeProxyV1 } from "./proxy-v1.js";
import { decodeProxyV2, encodeProxyV2 } from "./proxy-v2.js";
import { decodeToa, encodeToa } from "./toa.js";
import { HeaderError, type ClientIpMode, type DecodeResult, type HeaderInput, type ProxyHeaderInfo } from "./types.js";

export {
  CLIENT_IP_MODES,
  HeaderError,
  isClientIpMode,
  type AddressInfo,
  type AddressInfo4,
  type ClientIpMode,
  type DecodeResult,
  type EncodeAddress,
  type HeaderErrorCode,
  type HeaderInput,
  type ProxyHeaderInfo,
} from "./types.js";

function unknownMode(mode: unknown): HeaderError {
  return new HeaderError("LB4.HEADER_UNSUPPORTED", `client_ip mode ${JSON.stringify(mode)} is not toa, proxy_v1 or proxy_v2`);
}

/**
 * The bytes to write first on an upstream connection (or before a UDP datagram, proxy_v2).
 * Throws HeaderError: LB4.HEADER_BAD_ADDRESS (address/port), LB4.HEADER_UNSUPPORTED
 * (UDP in proxy_v1, LOCAL in toa, unknown mode).
 */
export function encodeHeader(mode: ClientIpMode, input: HeaderInput): Buffer {
  switch (mode) {
    case "toa":
      if (input.command === "LOCAL" || input.source === undefined) {
        throw new HeaderError("LB4.HEADER_UNSUPPORTED", "toa has no LOCAL form; send no header for health checks");
      }
      return encodeToa(input.source);
    case "proxy_v1":
      return encodeProxyV1(input);
    case "proxy_v2":
      return encodeProxyV2(input);
    default:
      throw unknownMode(mode);
  }
}

/**
 * Incremental decode of a header at the start of `buf`: `{ done: false }` while more bytes
 * are needed (a header split across segments), else the info and its length. Throws
 * HeaderError as soon as the bytes seen prove the header bad; with `atEof` (no more bytes
 * will come) an incomplete header throws LB4.HEADER_TRUNCATED.
 */
export function decodeHeader(mode: ClientIpMode, buf: Uint8Array, atEof = false): DecodeResult {
  let r: DecodeResult;
  switch (mode) {
    case "toa":
      r = decodeToa(buf);
      break;
    case "proxy_v1":
      r = decodeProxyV1(buf);
      break;
    case "proxy_v2":
      r = decodeProxyV2(buf);
      break;
    default:
      throw unknownMode(mode);
  }
  if (!r.done && atEof) {
    throw new HeaderError("LB4.HEADER_TRUNCATED", `${mode}: input ended after ${buf.length} bytes, inside the header`);
  }
  return r;
}

/** A UDP datagram prefixed with a header (SPEC §7: proxy_v2 on UDP pools): header + payload. */
export function decodeDatagram(
  mode: ClientIpMode,
  datagram: Uint8Array,
): { info: ProxyHeaderInfo; headerLength: number; payload: Uint8Array } {
  const r = decodeHeader(mode, datagram, true);
  if (!r.done) throw new HeaderError("LB4.HEADER_TRUNCATED", `${mode}: datagram shorter than its header`);
  return { info: r.info, headerLength: r.headerLength, payload: datagram.subarray(r.headerLength) };
}
