/**
 * `lb4/client-ip` (SPEC §7): the header codecs and the backend-side reader.
 *
 *   import { createServer } from "lb4/client-ip";
 *   createServer({ mode: "proxy_v2" }, (socket, client) => { ... client.address ... });
 */
export * from "./codec.js";
export { encodeToa, decodeToa, TOA_KIND_V4, TOA_KIND_V6, TOA_LEN_V4, TOA_LEN_V6 } from "./toa.js";
export { encodeProxyV1, decodeProxyV1, PROXY_V1_MAX_LENGTH } from "./proxy-v1.js";
export { encodeProxyV2, decodeProxyV2, PROXY_V2_SIGNATURE, PROXY_V2_MAX_LENGTH } from "./proxy-v2.js";
export {
  readClientAddress,
  createServer,
  DEFAULT_HEADER_TIMEOUT_MS,
  type ClientAddress,
  type ReadClientAddressOptions,
  type ClientIpServerOptions,
} from "./server.js";
