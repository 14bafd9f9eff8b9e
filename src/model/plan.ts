/**
 * plan(current, next): what the data plane must do to go from one snapshot to the next —
 * which listeners to bind, retire or update in place, which pools to add, update or remove.
 * Pure. Parts shared by identity between the snapshots are unchanged by construction and
 * skipped without a look inside, so a member change plans in O(pools of its load balancer).
 */
import type { ListenerConfig } from "../config/schema.js";
import type { LbSpec, PoolSpec, Snapshot } from "./snapshot.js";

export interface ListenerStep {
  lbId: string;
  vip: string;
  listener: ListenerConfig;
}

export interface PoolStep {
  lbId: string;
  pool: PoolSpec;
}

export interface Plan {
  /** Load balancers that are new or whose address or SNAT addresses changed. */
  lbs: { upsert: LbSpec[]; remove: string[] };
  /** New listeners, and those whose address, port or protocol changed (bound anew). */
  bind: ListenerStep[];
  /** Ids of running listeners that stop accepting: removed, or replaced by a bind. */
  retire: string[];
  /** Listeners kept bound whose settings changed (limit, access list, idle timeout, pool). */
  update: ListenerStep[];
  pools: { add: PoolStep[]; update: PoolStep[]; remove: Array<{ lbId: string; poolId: string }> };
}

/** Same socket: what a bind depends on. */
function sameBinding(a: ListenerStep, b: ListenerStep): boolean {
  return a.lbId === b.lbId && a.vip === b.vip && a.listener.protocol === b.listener.protocol && a.listener.protocol_port === b.listener.protocol_port;
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

export function plan(current: Snapshot, next: Snapshot): Plan {
  const out: Plan = { lbs: { upsert: [], remove: [] }, bind: [], retire: [], update: [], pools: { add: [], update: [], remove: [] } };
  const curLbs = new Map(current.lbs.map((lb) => [lb.id, lb]));
  const nextLbs = new Map(next.lbs.map((lb) => [lb.id, lb]));
  const curListeners = new Map<string, ListenerStep>();
  const curPools = new Map<string, PoolStep>();
  for (const lb of current.lbs) {
    for (const l of lb.listeners) curListeners.set(l.id, { lbId: lb.id, vip: lb.vip, listener: l });
    for (const p of lb.pools) curPools.set(p.settings.id, { lbId: lb.id, pool: p });
  }
  const seenListeners = new Set<string>();
  const seenPools = new Set<string>();

  for (const lb of next.lbs) {
    const cur = curLbs.get(lb.id);
    if (cur === lb) {
      for (const l of lb.listeners) seenListeners.add(l.id);
      for (const p of lb.pools) seenPools.add(p.settings.id);
      continue;
    }
    if (!cur || cur.vip !== lb.vip || !sameJson(cur.snat, lb.snat)) out.lbs.upsert.push(lb);
    for (const listener of lb.listeners) {
      seenListeners.add(listener.id);
      const step: ListenerStep = { lbId: lb.id, vip: lb.vip, listener };
      const was = curListeners.get(listener.id);
      if (!was || !sameBinding(was, step)) {
        if (was) out.retire.push(listener.id);
        out.bind.push(step);
      } else if (was.listener !== listener && !sameJson(was.listener, listener)) {
        out.update.push(step);
      }
    }
    for (const pool of lb.pools) {
      const id = pool.settings.id;
      seenPools.add(id);
      const was = curPools.get(id);
      if (!was) out.pools.add.push({ lbId: lb.id, pool });
      else if (was.lbId !== lb.id) {
        out.pools.remove.push({ lbId: was.lbId, poolId: id });
        out.pools.add.push({ lbId: lb.id, pool });
      } else if (was.pool !== pool) out.pools.update.push({ lbId: lb.id, pool });
    }
  }
  for (const id of curListeners.keys()) if (!seenListeners.has(id)) out.retire.push(id);
  for (const [id, step] of curPools) if (!seenPools.has(id)) out.pools.remove.push({ lbId: step.lbId, poolId: id });
  for (const id of curLbs.keys()) if (!nextLbs.has(id)) out.lbs.remove.push(id);
  return out;
}

/** Nothing to do. */
export function isEmptyPlan(p: Plan): boolean {
  return (
    p.lbs.upsert.length + p.lbs.remove.length + p.bind.length + p.retire.length + p.update.length + p.pools.add.length + p.pools.update.length + p.pools.remove.length ===
    0
  );
}
