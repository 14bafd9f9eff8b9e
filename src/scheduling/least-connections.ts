/**
 * Weighted least connections: the member with the smallest active / effectiveWeight
 * (compared by cross-multiplying, as nginx's ngx_http_upstream_get_least_conn_peer, so
 * equal ratios tie exactly). Ties go in round-robin order: the scan starts one past the
 * last pick and keeps the first minimum, so equal members are taken in turn.
 */
import { isAvoided } from "./round-robin.js";
import type { Algorithm, ClientInfo, Schedulable, Scheduler } from "./types.js";
import { isEligible } from "./weights.js";

export class LeastConnectionsScheduler<M extends Schedulable = Schedulable>
  implements Scheduler<M>
{
  readonly algorithm: Algorithm = "LEAST_CONNECTIONS";
  private members: readonly M[] = [];
  /** Effective weights snapshotted at update(); `active` is read live at pick time. */
  private weights = new Float64Array(0);
  /** Where the next scan starts: one past the previous pick. */
  private cursor = 0;

  update(members: readonly M[]): void {
    const eligible = members.filter(isEligible);
    const weights = new Float64Array(eligible.length);
    for (let i = 0; i < eligible.length; i++) weights[i] = eligible[i]!.effectiveWeight;
    this.members = eligible;
    this.weights = weights;
    if (this.cursor >= eligible.length) this.cursor = 0;
  }

  pick(_client: ClientInfo, avoid?: readonly M[]): M | undefined {
    const members = this.members;
    const weights = this.weights;
    const n = members.length;
    const checkAvoid = avoid !== undefined && avoid.length > 0;
    let best = -1;
    let bestActive = 0;
    let bestWeight = 1;
    let i = this.cursor;
    for (let k = 0; k < n; k++) {
      const m = members[i]!;
      if (!checkAvoid || !isAvoided(m, avoid)) {
        const a = m.active;
        const w = weights[i]!;
        // a / w < bestActive / bestWeight, without dividing.
        if (best < 0 || a * bestWeight < bestActive * w) {
          best = i;
          bestActive = a;
          bestWeight = w;
        }
      }
      if (++i === n) i = 0;
    }
    if (best < 0) return undefined;
    this.cursor = best + 1 === n ? 0 : best + 1;
    return members[best];
  }
}

export function createLeastConnections<M extends Schedulable>(): Scheduler<M> {
  return new LeastConnectionsScheduler<M>();
}
