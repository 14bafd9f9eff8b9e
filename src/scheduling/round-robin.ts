/**
 * Smooth weighted round robin, as nginx's ngx_http_upstream_get_peer
 * (src/http/ngx_http_upstream_round_robin.c): on every pick each candidate's `current`
 * grows by its weight, the largest `current` wins and gives back the sum of the weights.
 * Exact over a cycle of sum(weights) picks for integer weights, and never bursty:
 * {5,1,1} gives a a b a c a a.
 */
import type { Algorithm, ClientInfo, Schedulable, Scheduler } from "./types.js";
import { isEligible } from "./weights.js";

/**
 * Whether `m` is one of the members that already failed for this connection. Matches by
 * identity, then by key, so a retry still avoids a member whose object was replaced by
 * an update() in between. Shared by every scheduler (one home for the rule).
 */
export function isAvoided(m: Schedulable, avoid: readonly Schedulable[]): boolean {
  for (let i = 0; i < avoid.length; i++) {
    const a = avoid[i]!;
    if (a === m || a.key === m.key) return true;
  }
  return false;
}

export class RoundRobinScheduler<M extends Schedulable = Schedulable> implements Scheduler<M> {
  readonly algorithm: Algorithm = "ROUND_ROBIN";
  private members: readonly M[] = [];
  private weights = new Float64Array(0);
  /** nginx's `current_weight`, per member, same index as `members`. */
  private current = new Float64Array(0);
  /** Sum of `weights`: the `total` of a pick that avoids no one. */
  private total = 0;

  update(members: readonly M[]): void {
    // Keep `current` for members that stay, so a weight change (slow start ticks every
    // few seconds) continues the rotation instead of restarting it.
    const previous = new Map<string, number>();
    for (let i = 0; i < this.members.length; i++) {
      previous.set(this.members[i]!.key, this.current[i]!);
    }
    const eligible = members.filter(isEligible);
    const n = eligible.length;
    const weights = new Float64Array(n);
    const current = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const m = eligible[i]!;
      weights[i] = m.effectiveWeight;
      current[i] = previous.get(m.key) ?? 0;
      total += m.effectiveWeight;
    }
    this.members = eligible;
    this.weights = weights;
    this.current = current;
    this.total = total;
  }

  pick(_client: ClientInfo, avoid?: readonly M[]): M | undefined {
    const n = this.members.length;
    const w = this.weights;
    const cur = this.current;
    let best = -1;
    let bestCurrent = -Infinity;
    let total: number;
    if (avoid === undefined || avoid.length === 0) {
      total = this.total;
      for (let i = 0; i < n; i++) {
        const c = cur[i]! + w[i]!;
        cur[i] = c;
        if (c > bestCurrent) {
          bestCurrent = c;
          best = i;
        }
      }
    } else {
      // Avoided members sit this pick out entirely, as nginx's `tried` bitmap.
      total = 0;
      for (let i = 0; i < n; i++) {
        if (isAvoided(this.members[i]!, avoid)) continue;
        const c = cur[i]! + w[i]!;
        cur[i] = c;
        total += w[i]!;
        if (c > bestCurrent) {
          bestCurrent = c;
          best = i;
        }
      }
    }
    if (best < 0) return undefined;
    cur[best] = bestCurrent - total;
    return this.members[best];
  }
}

export function createRoundRobin<M extends Schedulable>(): Scheduler<M> {
  return new RoundRobinScheduler<M>();
}
