/**
 * What the engine's per-connection hooks (header, session end) read of a TCP connection,
 * the same on either data plane (tcp.ts on net.Socket, tcp-handles.ts on libuv handles).
 */
import type { ListenerConfig } from "../config/schema.js";
import type { MemberRuntime } from "../model/member.js";
import type { PoolRuntime } from "../model/pool.js";
import type { ClientInfo } from "../scheduling/types.js";
import type { SharedAdmission } from "./shared-admission.js";

export interface TcpConn extends ClientInfo {
  readonly member: MemberRuntime | undefined;
  readonly listener: { readonly pool: PoolRuntime; readonly config: ListenerConfig; readonly deps: { readonly vip: string; readonly shared?: SharedAdmission | undefined } };
  /** The address the client connected to (getsockname), for headers; undefined if unknown. */
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
}
