/**
 * Configured weight → effective weight (HAProxy's uweight → eweight). Slow start, health,
 * drain and admin state change only the effective weight; schedulers read nothing else.
 * Pure: time comes in as `now` (ms).
 */

import type { OperatingStatus } from "../health/types.js";

export type { OperatingStatus };

/** Slow-start ramp of one member (SPEC §4). */
export interface Ramp {
  /** Ramp length, ms. */
  durationMs: number;
  /** When the ramp began (first ONLINE, or at once without a monitor); undefined = not yet. */
  startedAt?: number;
  /** Once ended, never again. */
  ended: boolean;
}

/**
 * The ramp a newly added member gets (SPEC §4): only with slow start on, only when the pool
 * already had a member, never at start-up. Without a monitor it starts at once; with one,
 * at the first ONLINE.
 */
export function rampForNewMember(opts: {
  slowStart: { enable: boolean; duration: number };
  poolHadMembers: boolean;
  startup: boolean;
  monitored: boolean;
  now: number;
}): Ramp | undefined {
  if (!opts.slowStart.enable || !opts.poolHadMembers || opts.startup) return undefined;
  return { durationMs: opts.slowStart.duration * 1000, ended: false, ...(opts.monitored ? {} : { startedAt: opts.now }) };
}

/** Lowest share of its weight a ramping member gets, so it is "near 0" but still tried. */
export const RAMP_FLOOR = 0.01;

/** The ramp's factor in (0, 1]; marks the ramp ended when its time is up. */
export function rampFactor(ramp: Ramp | undefined, now: number): number {
  if (!ramp || ramp.ended || ramp.startedAt === undefined) return 1;
  const f = (now - ramp.startedAt) / ramp.durationMs;
  if (f >= 1) {
    ramp.ended = true;
    return 1;
  }
  return Math.max(RAMP_FLOOR, f);
}

export interface WeightInputs {
  weight: number;
  adminUp: boolean;
  /** Removed from its pool (connections may still be draining). */
  removed: boolean;
  status: OperatingStatus;
  rampFactor: number;
}

/** Effective weight for scheduling; 0 = no new connections. */
export function effectiveWeight(w: WeightInputs): number {
  if (w.removed || !w.adminUp || w.weight <= 0 || w.status === "OFFLINE") return 0;
  return w.weight * w.rampFactor;
}

/** Fail-open weight (pool_health.minimum_healthy_member_count: 1): health is ignored. */
export function failOpenWeight(w: WeightInputs): number {
  if (w.removed || !w.adminUp || w.weight <= 0) return 0;
  return w.weight;
}

/**
 * Whether a member may take a new connection: the one eligibility rule. effectiveWeight()
 * (or failOpenWeight()) decided it when the pool refreshed; everything else reads it here.
 */
export function isEligible(m: { effectiveWeight: number }): boolean {
  return m.effectiveWeight > 0;
}
