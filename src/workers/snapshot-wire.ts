/**
 * Snapshots on the wire to a worker (SPEC §10). A snapshot shares every unchanged part with
 * the one before (control/snapshot-builder.ts); the wire form keeps that: a load balancer,
 * pool or member the worker already has is sent as `{ same: id }`, and the worker puts its
 * own object back in that place. So a member change costs its pool on the wire, and the
 * worker's plan() skips the rest by identity, as it does in one process. Pure.
 */
import type { LbSpec, MemberSpec, PoolSpec, Snapshot } from "../model/snapshot.js";

export interface Same {
  readonly same: string;
}

export interface WirePool {
  readonly settings: PoolSpec["settings"];
  readonly members: ReadonlyArray<MemberSpec | Same>;
}

export interface WireLb extends Omit<LbSpec, "pools"> {
  readonly pools: ReadonlyArray<WirePool | Same>;
}

export interface WireSnapshot {
  readonly version: number;
  readonly lbs: ReadonlyArray<WireLb | Same>;
}

const isSame = (x: object): x is Same => "same" in x;

/** `next` for a worker that runs `had`: whatever `had` holds by identity goes as a reference. */
export function toWire(had: Snapshot, next: Snapshot): WireSnapshot {
  const lbs = new Map(had.lbs.map((lb) => [lb.id, lb]));
  return {
    version: next.version,
    lbs: next.lbs.map((lb): WireLb | Same => {
      const was = lbs.get(lb.id);
      if (was === lb) return { same: lb.id };
      const pools = new Map((was?.pools ?? []).map((p) => [p.settings.id, p]));
      return {
        ...lb,
        pools: lb.pools.map((p): WirePool | Same => {
          const wasPool = pools.get(p.settings.id);
          if (wasPool === p) return { same: p.settings.id };
          const members = new Map((wasPool?.members ?? []).map((m) => [m.config.id, m]));
          return { settings: p.settings, members: p.members.map((m) => (members.get(m.config.id) === m ? { same: m.config.id } : m)) };
        }),
      };
    }),
  };
}

/** The snapshot a wire form stands for, on the worker that runs `had`; references resolve to `had`'s objects. */
export function fromWire(had: Snapshot, wire: WireSnapshot): Snapshot {
  const lbs = new Map(had.lbs.map((lb) => [lb.id, lb]));
  const pick = <T>(from: Map<string, T>, id: string, what: string): T => {
    const x = from.get(id);
    if (x === undefined) throw new Error(`snapshot ${wire.version} refers to ${what} "${id}", which this worker does not have`);
    return x;
  };
  return {
    version: wire.version,
    lbs: wire.lbs.map((lb): LbSpec => {
      if (isSame(lb)) return pick(lbs, lb.same, "load balancer");
      const pools = new Map((lbs.get(lb.id)?.pools ?? []).map((p) => [p.settings.id, p]));
      return {
        ...lb,
        pools: lb.pools.map((p): PoolSpec => {
          if (isSame(p)) return pick(pools, p.same, "pool");
          const members = new Map((pools.get(p.settings.id)?.members ?? []).map((m) => [m.config.id, m]));
          return { settings: p.settings, members: p.members.map((m) => (isSame(m) ? pick(members, m.same, "member") : m)) };
        }),
      };
    }),
  };
}
