/**
 * Shared types and the one error class of the client address header codecs (SPEC §7).
 * Pure: no sockets here.
 */
import { Lb4Error } from "../errors.js";
import { parseAddressText } from "./ip.js";

/** The header kinds of SPEC §7 (config's `auto`/`off` resolve to one of these or none). */
export type ClientIpMode = "toa" | "proxy_v1" | "proxy_v2";

export const CLIENT_IP_MODES: readonly ClientIpMode[] = ["toa", "proxy_v1", "proxy_v2"];

export function isClientIpMode(v: unknown): v is ClientIpMode {
  return v === "toa" || v === "proxy_v1" || v === "proxy_v2";
}

/** One endpoint as decoded from a header. */
export interface AddressInfo {
  family: 4 | 6;
  address: string;
  port: number;
}
/** Alias kept for the name used in the design brief. */
export type AddressInfo4 = AddressInfo;

/** An endpoint given to an encoder; the family is taken from the address text. */
export interface EncodeAddress {
  address: string;
  port: number;
  family?: 4 | 6;
}

/**
 * What a header said. `source`/`destination` are absent when the header carries no
 * address: proxy_v2 LOCAL or UNSPEC/AF_UNIX, proxy_v1 UNKNOWN; TOA has no destination.
 */
export interface ProxyHeaderInfo {
  command: "PROXY" | "LOCAL";
  transport: "TCP" | "UDP" | "UNKNOWN";
  source?: AddressInfo;
  destination?: AddressInfo;
}

/** Encoder input. LOCAL (health checks, SPEC §7) needs no addresses. */
export type HeaderInput =
  | {
      command?: "PROXY";
      source: EncodeAddress;
      destination: EncodeAddress;
      /** Default "TCP". */
      transport?: "TCP" | "UDP";
    }
  | {
      command: "LOCAL";
      source?: EncodeAddress;
      destination?: EncodeAddress;
      transport?: "TCP" | "UDP";
    };

export type DecodeResult =
  | { done: false }
  | { done: true; info: ProxyHeaderInfo; headerLength: number };

/** Shared "need more bytes" answer: decoders allocate nothing while waiting. */
export const NEED_MORE: { readonly done: false } = Object.freeze({ done: false as const });

export type HeaderErrorCode =
  | "LB4.HEADER_TRUNCATED"
  | "LB4.HEADER_BAD_SIGNATURE"
  | "LB4.HEADER_TOO_LARGE"
  | "LB4.HEADER_BAD_ADDRESS"
  | "LB4.HEADER_UNSUPPORTED"
  | "LB4.HEADER_MALFORMED"
  | "LB4.HEADER_TIMEOUT";

/** A client address header could not be encoded or decoded (SPEC §7). Match on `code`. */
export class HeaderError extends Lb4Error {
  declare readonly code: HeaderErrorCode;
  constructor(code: HeaderErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Throws LB4.HEADER_BAD_ADDRESS unless `port` is an integer 0..65535. */
export function checkPort(port: unknown, what: string): asserts port is number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HeaderError("LB4.HEADER_BAD_ADDRESS", `${what} port must be an integer 0..65535, got ${String(port)}`);
  }
}

/**
 * Check one endpoint of a header to encode and parse its address into `out`; returns the
 * family. Throws LB4.HEADER_BAD_ADDRESS naming the codec and the endpoint.
 */
export function parseEndpoint(codec: string, which: "source" | "destination", ep: EncodeAddress, out: Uint8Array): 4 | 6 {
  checkPort(ep.port, which);
  const family = parseAddressText(ep.address, out);
  if (family === 0) throw new HeaderError("LB4.HEADER_BAD_ADDRESS", `${codec}: ${which} address ${JSON.stringify(ep.address)} is not an IP address`);
  return family;
}
