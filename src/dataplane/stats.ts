/**
 * Plain counters per listener, bumped on the connection path (a property increment, no
 * labels, no strings). metrics/ reads them on scrape, so nothing here is per-chunk.
 */
export class ListenerStats {
  /** Connections (TCP) or flows (UDP) accepted and handed to a member, counted at that moment. */
  total = 0;
  active = 0;
  refusedAcl = 0;
  refusedLimit = 0;
  refusedNoMember = 0;
  /** Refused because the data plane's share of file descriptors was used up (fd-budget.ts). */
  refusedFdLimit = 0;
  connectErrors = 0;
  retries = 0;
  /**
   * Bytes client→member and member→client of connections/flows that ended; the listener's
   * traffic() adds those still open.
   */
  bytesIn = 0;
  bytesOut = 0;
  /** UDP datagrams of flows that ended (traffic() adds the open ones). */
  datagramsIn = 0;
  datagramsOut = 0;
  /** Closed by idle timeout, by drain, by shutdown. */
  idleClosed = 0;
  drainClosed = 0;
}

/** How a connection or flow ended, as written in the access log. */
export type EndReason =
  | "closed"
  | "client_error"
  | "member_error"
  | "connect_failed"
  | "idle_timeout"
  | "drained"
  | "shutdown"
  | "member_unreachable";

/** Bytes and datagrams forwarded so far, open connections/flows included (read at scrape). */
export interface Traffic {
  bytesIn: number;
  bytesOut: number;
  datagramsIn: number;
  datagramsOut: number;
}
