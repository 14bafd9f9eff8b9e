/**
 * Builds snapshots from the running config and what the control plane knows (health,
 * ramps, cross-VPC facts), sharing every part whose inputs did not change with the previous
 * snapshot: a member change or a health transition rebuilds one pool and its load balancer's
 * spec, and plan() skips the rest by identity.
 */
import type { Config, LoadBalancerConfig, MemberConfig, PoolConfig } from "../config/schema.js";
import type { OperatingStatus } from "../health/types.js";
import type { LbSpec, MemberSpec, PoolSettings, PoolSpec, RampSpec, Snapshot } from "../model/snapshot.js";

/** What the control plane knows about members beyond their config. */
export interface MemberFacts {
  status(pool: PoolConfig, member: MemberConfig): OperatingStatus;
  ramp(pool: PoolConfig, member: MemberConfig): RampSpec | null;
  crossVpc(lb: LoadBalancerConfig, address: string): boolean;
  /** The load balancer's SNAT addresses (SPEC §6 rule 5); [] when cross-VPC is off. */
  snat(lb: LoadBalancerConfig): readonly string[];
}

interface CachedMember {
  source: MemberConfig;
  status: OperatingStatus;
  ramp: RampSpec | null;
  crossVpc: boolean;
  spec: MemberSpec;
}

interface CachedPool {
  source: PoolConfig;
  settings: PoolSettings;
  members: readonly MemberSpec[];
  spec: PoolSpec;
}

interface CachedLb {
  source: LoadBalancerConfig;
  snat: readonly string[];
  pools: readonly PoolSpec[];
  spec: LbSpec;
}

export class SnapshotBuilder {
  private version = 0;
  /** Per pool: its members' cached specs, by member id. */
  private readonly members = new Map<string, Map<string, CachedMember>>();
  private readonly pools = new Map<string, CachedPool>();
  private readonly lbs = new Map<string, CachedLb>();

  /** The snapshot for `config`; `dirty` names pools whose facts (health, ramps) may have changed, all when omitted. */
  build(config: Config, facts: MemberFacts, dirty?: ReadonlySet<string>): Snapshot {
    const seenPools = new Set<string>();
    const lbs: LbSpec[] = [];
    for (const lb of config.loadbalancers) {
      const pools: PoolSpec[] = [];
      for (const pool of lb.pools) {
        seenPools.add(pool.id);
        const cached = this.pools.get(pool.id);
        if (cached && cached.source === pool && dirty && !dirty.has(pool.id)) {
          pools.push(cached.spec);
          continue;
        }
        pools.push(this.buildPool(lb, pool, facts));
      }
      const snat = facts.snat(lb);
      const cached = this.lbs.get(lb.id);
      let spec: LbSpec;
      if (cached && cached.source.vip_address === lb.vip_address && cached.source.listeners === lb.listeners && sameList(cached.pools, pools) && sameList(cached.snat, snat)) {
        spec = cached.spec;
      } else {
        spec = Object.freeze({ id: lb.id, vip: lb.vip_address, snat, listeners: lb.listeners, pools: Object.freeze(pools) });
      }
      this.lbs.set(lb.id, { source: lb, snat, pools: spec.pools, spec });
      lbs.push(spec);
    }
    for (const k of this.pools.keys()) {
      if (seenPools.has(k)) continue;
      this.pools.delete(k);
      this.members.delete(k);
    }
    const lbIds = new Set(config.loadbalancers.map((l) => l.id));
    for (const k of this.lbs.keys()) if (!lbIds.has(k)) this.lbs.delete(k);
    return Object.freeze({ version: ++this.version, lbs: Object.freeze(lbs) });
  }

  private buildPool(lb: LoadBalancerConfig, pool: PoolConfig, facts: MemberFacts): PoolSpec {
    const cached = this.pools.get(pool.id);
    const members: MemberSpec[] = [];
    const was = this.members.get(pool.id);
    const now = new Map<string, CachedMember>();
    for (const m of pool.members) {
      const status = facts.status(pool, m);
      const ramp = facts.ramp(pool, m);
      const crossVpc = facts.crossVpc(lb, m.address);
      let c = was?.get(m.id);
      if (!c || c.source !== m || c.status !== status || !sameRamp(c.ramp, ramp) || c.crossVpc !== crossVpc) {
        c = { source: m, status, ramp, crossVpc, spec: Object.freeze({ config: m, status, crossVpc, ramp }) };
      }
      now.set(m.id, c);
      members.push(c.spec);
    }
    this.members.set(pool.id, now);
    let settings: PoolSettings;
    if (cached && cached.source === pool) settings = cached.settings;
    else {
      const { members: _members, ...rest } = pool;
      settings = Object.freeze(rest);
    }
    const spec: PoolSpec =
      cached && cached.settings === settings && sameList(cached.members, members) ? cached.spec : Object.freeze({ settings, members: Object.freeze(members) });
    this.pools.set(pool.id, { source: pool, settings, members: spec.members, spec });
    return spec;
  }
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameRamp(a: RampSpec | null, b: RampSpec | null): boolean {
  return a === b || (a !== null && b !== null && a.durationMs === b.durationMs && a.startedAt === b.startedAt);
}
