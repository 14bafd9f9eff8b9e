/**
 * Membership sources: where the running membership comes from and where an accepted change
 * is made durable. Today the config file plus the runtime overlay under state_dir
 * (`FileMembership`); the etcd source of the scale-out issue implements the same interface.
 * A change reaches a source only after the gate accepted it, and is acknowledged only after
 * the source made it durable.
 */
import type { Config, MemberConfig } from "../config/schema.js";
import { applyOverlay, emptyState, type RuntimeState, type StateStore } from "../state/store.js";

export interface MembershipSource {
  /** Where runtime changes are kept, for messages (a file path); undefined when nowhere. */
  readonly where: string | undefined;
  /** Read what was persisted (at start); `base` is the validated file, which an empty shared store is seeded with. */
  load(base?: Config): Promise<void>;
  /** The persisted facts the gate applies (cross-VPC ever enabled) and the overlay it names members from. */
  facts(): RuntimeState;
  /** The running membership: `base` with the runtime member changes on top. */
  membership(base: Config): Config;
  /** Make what `next` implies durable before it runs (start, reload); the returned undo restores the previous state if it cannot run. */
  acceptConfig(next: Config): Promise<() => Promise<void>>;
  /** Make one pool's member change durable before it is acknowledged. */
  acceptChange(poolId: string, before: readonly MemberConfig[], after: readonly MemberConfig[]): Promise<void>;
}

/** The config file plus the overlay in `state_dir/state.json` (SPEC §8); in memory only without a store. */
export class FileMembership implements MembershipSource {
  private state: RuntimeState = emptyState();

  constructor(private readonly store: StateStore | undefined) {}

  get where(): string | undefined {
    return this.store?.file;
  }

  async load(): Promise<void> {
    if (this.store) this.state = await this.store.load();
  }

  facts(): RuntimeState {
    return this.state;
  }

  membership(base: Config): Config {
    return applyOverlay(base, this.state);
  }

  async acceptConfig(next: Config): Promise<() => Promise<void>> {
    const before = this.state;
    const state: RuntimeState = structuredClone(before);
    for (const lb of next.loadbalancers) if (lb.ip_target_enable && !state.cross_vpc_enabled.includes(lb.id)) state.cross_vpc_enabled.push(lb.id);
    const poolIds = new Set(next.loadbalancers.flatMap((lb) => lb.pools.map((p) => p.id)));
    for (const id of Object.keys(state.members)) if (!poolIds.has(id)) delete state.members[id];
    await this.save(state, JSON.stringify(state) !== JSON.stringify(before));
    return () => this.save(before, this.state !== before);
  }

  async acceptChange(poolId: string, before: readonly MemberConfig[], after: readonly MemberConfig[]): Promise<void> {
    const prev = this.state.members[poolId];
    const o = { upsert: { ...prev?.upsert }, deleted: prev ? [...prev.deleted] : [] };
    const afterIds = new Set(after.map((m) => m.id));
    for (const m of before) {
      if (!afterIds.has(m.id)) {
        delete o.upsert[m.id];
        if (!o.deleted.includes(m.id)) o.deleted.push(m.id);
      }
    }
    const was = new Set(before);
    for (const m of after) {
      if (was.has(m)) continue; // the same object: untouched by this change
      o.upsert[m.id] = m;
      o.deleted = o.deleted.filter((d) => d !== m.id);
    }
    // Other pools' overlays are shared, not copied.
    await this.save({ ...this.state, members: { ...this.state.members, [poolId]: o } }, true);
  }

  /** Durable first (when there is a store and something changed), then current. */
  private async save(state: RuntimeState, changed: boolean): Promise<void> {
    if (this.store && changed) await this.store.save(state);
    this.state = state;
  }
}
