/**
 * Decisions that must hold for the whole instance when several worker processes accept
 * (SPEC §10): `connection_limit` counted over all workers, and source-IP persistence that
 * holds whichever worker accepts. A worker's data plane asks the primary through this
 * interface; a single process has none and decides locally. Only listeners that need it
 * (a limit, or a pool with session_persistence) pay the round trip; others never see it.
 */
import type { MemberRuntime } from "../model/member.js";

/** A connection waiting for the instance-wide decision. */
export interface ClaimingConn {
  readonly ip: string;
  readonly listener: { readonly config: { readonly id: string; readonly connection_limit: number }; readonly pool: { readonly id: string; readonly config: { readonly session_persistence: unknown } } };
  /** 0 none, 1 asked, 2 holds a slot of the instance's connection_limit. */
  claim: number;
  /** The member the instance's persistence table holds for this client, tried first. */
  sticky: MemberRuntime | undefined;
  /** The answer: admitted (with the sticky member id, if any) or refused by the limit. */
  claimed(ok: boolean, memberId: string | undefined): void;
}

export interface SharedAdmission {
  /** Ask the primary; `conn.claimed()` is called with the answer. */
  claim(conn: ClaimingConn): void;
  /** A connection that held a slot ended. */
  release(listenerId: string): void;
  /** A retry placed a persistent client on another member. */
  stick(poolId: string, ip: string, memberId: string): void;
  /** A persistent client's connection ended: its entry idles from now. */
  touch(poolId: string, ip: string, memberId: string): void;
}

/** CLAIM_* values of ClaimingConn.claim. */
export const CLAIM_NONE = 0;
export const CLAIM_ASKED = 1;
export const CLAIM_HELD = 2;

/** Whether a new connection of this listener needs the primary. */
export function needsClaim(l: ClaimingConn["listener"]): boolean {
  return l.config.connection_limit > 0 || !!l.pool.config.session_persistence;
}
