/**
 * Runtime pool: its members, their effective weights and the scheduler fed with the
 * eligible ones. refresh() is the only place eligibility is computed; it runs off the hot
 * path (on any member/health change and on the engine tick while ramps or drains run).
 */
import type { PoolConfig } from "../config/schema.js";
import { createScheduler } from "../scheduling/registry.js";
import type { ClientInfo, Scheduler } from "../scheduling/types.js";
import { effectiveWeight, failOpenWeight, isEligible, rampFactor } from "../scheduling/weights.js";
import { PersistenceTable } from "../persistence/table.js";
import { MemberRuntime } from "./member.js";

/** Built-in cap of the source-IP persistence table per pool. */
export const PERSISTENCE_CAP = 100_000;

export class PoolRuntime {
  config: PoolConfig;
  readonly lbId: string;
  readonly members = new Map<string, MemberRuntime>();
  /** Removed members whose connections are still open (draining or running out). */
  readonly leaving = new Set<MemberRuntime>();
  scheduler: Scheduler<MemberRuntime>;
  eligible: MemberRuntime[] = [];
  /** All members offline and pool_health says forward anyway. */
  failOpen = false;
  /** True while any member ramps, so the engine tick keeps refreshing. */
  ramping = false;

  /** Source-IP stickiness (session_persistence), when configured. */
  persistence: PersistenceTable<MemberRuntime> | undefined;
  private readonly now: () => number;
  /** Keep a persistence table here (false in a worker: the primary holds the instance's). */
  private readonly localPersistence: boolean;

  constructor(lbId: string, config: PoolConfig, now: () => number, opts: { persistence?: boolean } = {}) {
    this.lbId = lbId;
    this.config = config;
    this.now = now;
    this.localPersistence = opts.persistence ?? true;
    this.scheduler = createScheduler<MemberRuntime>(config.lb_algorithm);
    this.configurePersistence();
  }

  get id(): string {
    return this.config.id;
  }

  setConfig(config: PoolConfig): void {
    if (config.lb_algorithm !== this.config.lb_algorithm) {
      this.scheduler = createScheduler<MemberRuntime>(config.lb_algorithm);
    }
    this.config = config;
    this.configurePersistence();
  }

  private configurePersistence(): void {
    const sp = this.config.session_persistence;
    if (!sp || !this.localPersistence) {
      this.persistence = undefined;
      return;
    }
    const timeoutMs = sp.persistence_timeout * 60_000;
    if (this.persistence) this.persistence.timeoutMs = timeoutMs;
    else this.persistence = new PersistenceTable<MemberRuntime>(timeoutMs, PERSISTENCE_CAP);
  }

  /**
   * Choose a member for a new connection. With persistence, a client keeps its member while
   * that member stays eligible (and has not just failed for this connection).
   */
  pick(client: ClientInfo, avoid?: readonly MemberRuntime[]): MemberRuntime | undefined {
    const table = this.persistence;
    if (!table) return this.scheduler.pick(client, avoid);
    const now = this.now();
    const stuck = table.get(client.ip, now);
    if (stuck && isEligible(stuck) && !(avoid && avoid.includes(stuck))) {
      table.set(client.ip, stuck, now);
      return stuck;
    }
    const m = this.scheduler.pick(client, avoid);
    if (m) table.set(client.ip, m, now);
    return m;
  }

  /** A connection of this client ended: persistence idles from now. */
  touch(ip: string, member: MemberRuntime): void {
    const table = this.persistence;
    if (!table) return;
    const now = this.now();
    if (table.get(ip, now) === member) table.set(ip, member, now);
  }

  /** Recompute effective weights, eligibility, drain deadlines; feed the scheduler. */
  refresh(now: number): void {
    const eligible: MemberRuntime[] = [];
    let ramping = false;
    for (const m of this.members.values()) {
      const f = rampFactor(m.ramp, now);
      if (m.ramp && !m.ramp.ended && m.ramp.startedAt !== undefined) ramping = true;
      m.effectiveWeight = effectiveWeight(m.weightInputs(f));
      if (isEligible(m)) eligible.push(m);
    }
    this.failOpen = false;
    if (eligible.length === 0 && this.config.pool_health.minimum_healthy_member_count >= 1) {
      for (const m of this.members.values()) {
        m.effectiveWeight = failOpenWeight(m.weightInputs(1));
        if (isEligible(m)) eligible.push(m);
      }
      this.failOpen = eligible.length > 0;
    }
    for (const m of this.members.values()) this.trackDrain(m, isEligible(m), now);
    this.ramping = ramping;
    this.eligible = eligible;
    this.scheduler.update(eligible);
  }

  /** Take a member out: no new connections; its open ones drain or run out. */
  remove(id: string, now: number): MemberRuntime | undefined {
    const m = this.members.get(id);
    if (!m) return undefined;
    this.members.delete(id);
    m.removed = true;
    m.effectiveWeight = 0;
    this.trackDrain(m, false, now);
    if (m.active > 0) this.leaving.add(m);
    this.persistence?.forgetMember(m);
    return m;
  }

  /** Forget leaving members whose last connection closed. */
  forgetIdleLeavers(): void {
    for (const m of this.leaving) if (m.active === 0) this.leaving.delete(m);
  }

  private trackDrain(m: MemberRuntime, eligible: boolean, now: number): void {
    if (eligible) {
      m.drainDeadline = Infinity;
    } else if (m.wasEligible && this.config.connection_drain.enable) {
      m.drainDeadline = now + this.config.connection_drain.timeout * 1000;
    }
    m.wasEligible = eligible;
  }
}
