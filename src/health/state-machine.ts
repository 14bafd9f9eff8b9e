/**
 * The health state machine of SPEC §4 — pure: results in, state and transitions out.
 * No clock is needed here: timing lives in checker.ts.
 */
import type { HealthMonitorSettings } from "./types.js";

/** UNCHECKED: added, no result yet (counts as offline: a member is offline until it passes). */
export type HealthState = "UNCHECKED" | "ONLINE" | "OFFLINE";

export interface MemberHealth {
  readonly state: HealthState;
  /** Consecutive passes; reset by a failure. */
  readonly passes: number;
  /** Consecutive failures; reset by a pass. */
  readonly failures: number;
  /** Restored from before a restart: the first result decides, as for a new member. */
  readonly restored?: boolean;
}

export interface Transition {
  readonly from: HealthState;
  readonly to: "ONLINE" | "OFFLINE";
  readonly reason: string;
}

export type Thresholds = Pick<HealthMonitorSettings, "max_retries" | "max_retries_down">;

export const initialHealth: MemberHealth = Object.freeze({ state: "UNCHECKED", passes: 0, failures: 0 });

/** The last known state from before a restart, kept until the first check after it (SPEC §4). */
export function restoredHealth(state: "ONLINE" | "OFFLINE"): MemberHealth {
  return Object.freeze({ state, passes: 0, failures: 0, restored: true });
}

export interface StepResult {
  readonly health: MemberHealth;
  /** Present only when the state changed. */
  readonly transition?: Transition;
}

/** Feed one check result. Thresholds are read per call, so a settings change applies at once. */
export function applyResult(
  h: MemberHealth,
  ok: boolean,
  detail: string,
  t: Thresholds,
): StepResult {
  const passes = ok ? h.passes + 1 : 0;
  const failures = ok ? 0 : h.failures + 1;
  const why = detail ? `: ${detail}` : "";

  if (h.state === "UNCHECKED") {
    // The first result decides at once, whatever the thresholds.
    const to = ok ? "ONLINE" : "OFFLINE";
    return {
      health: { state: to, passes, failures },
      transition: { from: "UNCHECKED", to, reason: ok ? "first check passed" : `first check failed${why}` },
    };
  }
  if (h.restored) {
    // The first check after a restart decides too; a confirmed state is no transition.
    const to = ok ? "ONLINE" : "OFFLINE";
    const health = { state: to, passes, failures } as const;
    if (to === h.state) return { health };
    return { health, transition: { from: h.state, to, reason: ok ? "first check after restart passed" : `first check after restart failed${why}` } };
  }
  if (h.state === "OFFLINE" && ok && passes >= t.max_retries) {
    return {
      health: { state: "ONLINE", passes, failures },
      transition: { from: "OFFLINE", to: "ONLINE", reason: `${passes} consecutive ${passes === 1 ? "pass" : "passes"}` },
    };
  }
  if (h.state === "ONLINE" && !ok && failures >= t.max_retries_down) {
    return {
      health: { state: "OFFLINE", passes, failures },
      transition: {
        from: "ONLINE",
        to: "OFFLINE",
        reason: `${failures} consecutive ${failures === 1 ? "failure" : "failures"}${why}`,
      },
    };
  }
  return { health: { state: h.state, passes, failures } };
}

/** ONLINE only after a pass decided it; UNCHECKED counts as OFFLINE. */
export function isOnline(h: MemberHealth): boolean {
  return h.state === "ONLINE";
}

/**
 * When a new member's first check runs: a uniform moment in [0, delay) ms, so members
 * added together do not probe in lockstep. `random` is Math.random-like, [0, 1).
 */
export function firstCheckDelayMs(delaySeconds: number, random: () => number): number {
  const span = Math.max(0, Math.floor(delaySeconds * 1000));
  if (span === 0) return 0;
  const r = random();
  // Clamp: a broken random (1, negative, NaN) must still land inside the window.
  const ms = Number.isFinite(r) ? Math.floor(r * span) : 0;
  return Math.min(span - 1, Math.max(0, ms));
}
