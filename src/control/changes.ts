/**
 * What a reload changed, in an operator's words: listeners bound or retired (from the
 * data plane's plan) and members added, removed, re-weighted or otherwise changed (from the
 * two configs). Pure.
 */
import type { Config, MemberConfig } from "../config/schema.js";
import type { Plan } from "../model/plan.js";

export interface ReloadChanges {
  listeners_bound: string[];
  listeners_retired: string[];
  members_added: string[];
  members_removed: string[];
  members_reweighted: Array<{ pool_id: string; member_id: string; from: number; to: number }>;
  /** Other field changes (address, port, admin state, name), as pool/member. */
  members_changed: string[];
}

function membersByPool(c: Config): Map<string, Map<string, MemberConfig>> {
  const out = new Map<string, Map<string, MemberConfig>>();
  for (const lb of c.loadbalancers) for (const p of lb.pools) out.set(p.id, new Map(p.members.map((m) => [m.id, m])));
  return out;
}

export function describeChanges(prev: Config, next: Config, plan: Plan): ReloadChanges {
  const bound = new Set(plan.bind.map((b) => b.listener.id));
  const out: ReloadChanges = {
    listeners_bound: [...bound],
    // A listener bound anew (new port) retires its old socket: that is one change, shown as bound.
    listeners_retired: plan.retire.filter((id) => !bound.has(id)),
    members_added: [],
    members_removed: [],
    members_reweighted: [],
    members_changed: [],
  };
  const before = membersByPool(prev);
  const after = membersByPool(next);
  for (const [poolId, ms] of after) {
    const was = before.get(poolId) ?? new Map<string, MemberConfig>();
    for (const [id, m] of ms) {
      const o = was.get(id);
      if (!o) out.members_added.push(`${poolId}/${id}`);
      else if (o !== m) {
        if (o.weight !== m.weight) out.members_reweighted.push({ pool_id: poolId, member_id: id, from: o.weight, to: m.weight });
        const { weight: _a, ...restO } = o;
        const { weight: _b, ...restM } = m;
        if (JSON.stringify(restO) !== JSON.stringify(restM)) out.members_changed.push(`${poolId}/${id}`);
      }
    }
    for (const id of was.keys()) if (!ms.has(id)) out.members_removed.push(`${poolId}/${id}`);
  }
  for (const [poolId, ms] of before) if (!after.has(poolId)) for (const id of ms.keys()) out.members_removed.push(`${poolId}/${id}`);
  return out;
}

/** One line: "bound ls-2; retired ls-1; +2 members, -1, 1 re-weighted" or "no change". */
export function summarizeChanges(c: ReloadChanges): string {
  const parts: string[] = [];
  if (c.listeners_bound.length) parts.push(`bound ${c.listeners_bound.join(", ")}`);
  if (c.listeners_retired.length) parts.push(`retired ${c.listeners_retired.join(", ")}`);
  if (c.members_added.length) parts.push(`${c.members_added.length} member(s) added`);
  if (c.members_removed.length) parts.push(`${c.members_removed.length} removed`);
  if (c.members_reweighted.length) parts.push(`${c.members_reweighted.length} re-weighted`);
  if (c.members_changed.length) parts.push(`${c.members_changed.length} changed`);
  return parts.length ? parts.join("; ") : "no change";
}
