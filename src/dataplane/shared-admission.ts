/**
 * Decisions that must hold for the whole instance when several worker processes accept
 * (SPEC §10): `connection_limit` counted over all workers, and source-IP persistence that
 * holds whichever worker accepts. A worker's data plane goes through this interface; a
 * single process has none and decides locally.
 *
 * - Limits: the primary leases slots of a listener's limit to workers in blocks; a worker
 *   admits on a slot it holds without asking, asks only when it has none free, and gives
 *   idle slots back (at once when the primary reclaims them for another worker).
 * - Persistence: the primary holds the table; each new connection of a persistent pool asks
 *   it which member the client is stuck to (one round trip).
 */
import type { MemberRuntime } from "../model/member.js";

/** A connection waiting for the instance-wide decision. */
export interface ClaimingConn {
  readonly ip: string;
  readonly listener: { readonly config: { readonly id: string; readonly connection_limit: number }; readonly pool: { readonly id: string; readonly config: { readonly session_persistence: unknown } } };
  /** CLAIM_NONE, CLAIM_ASKED (waiting for a slot), CLAIM_HELD (holds a slot of the limit). */
  claim: number;
  /** The member the instance's persistence table holds for this client, tried first. */
  sticky: MemberRuntime | undefined;
  /** A slot of the listener's limit: granted (possibly in the same call) or refused. */
  slotted(ok: boolean): void;
  /** The persistence table's answer: the member id the client is stuck to, if any. */
  claimed(memberId: string | undefined): void;
}

export interface SharedAdmission {
  /** A slot of the listener's connection_limit; `conn.slotted()` says whether there is one. */
  acquire(conn: ClaimingConn): void;
  /** A connection that held a slot ended. */
  releaseSlot(listenerId: string): void;
  /** Which member the instance's persistence table holds for the client; `conn.claimed()` answers. */
  claim(conn: ClaimingConn): void;
  /** A retry placed a persistent client on another member. */
  stick(poolId: string, ip: string, memberId: string): void;
  /** A persistent client's connection ended: its entry idles from now. */
  touch(poolId: string, ip: string, memberId: string): void;
}

/** CLAIM_* values of ClaimingConn.claim. */
export const CLAIM_NONE = 0;
export const CLAIM_ASKED = 1;
export const CLAIM_HELD = 2;
