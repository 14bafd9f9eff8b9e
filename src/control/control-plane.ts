/**
 * The control plane: the one gate, the runtime state under state_dir, health wiring,
 * slow-start ramps, the read model and the event stream. Every change — start, reload, a
 * member change, a health transition — ends as a snapshot handed to the data plane, which
 * plans and applies it. Changes are serialised: each sees the result of the one before.
 */
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { sleep, systemClock, systemTimers, type Clock, type Timers } from "../clock.js";
import { encodeHeader } from "../clientip/codec.js";
import type { Config, ConfigInput, LoadBalancerConfig, MemberConfig, MemberInput, PoolConfig } from "../config/schema.js";
import { allocateSnatAddresses, backendSubnets, isCrossVpc, vpcView, type VpcView } from "../crossvpc/rules.js";
import { DataPlane, type DataPlaneOptions, type DataPlanePort, type LbRuntime } from "../dataplane/dataplane.js";
import type { Listener } from "../dataplane/listener.js";
import { usableLocalAddresses } from "../dataplane/local-address.js";
import type { TcpTuning } from "../dataplane/tcp.js";
import { Lb4Error, NotFoundError } from "../errors.js";
import { HealthChecker } from "../health/checker.js";
import type { Transition } from "../health/state-machine.js";
import type { OperatingStatus, ProbeResult } from "../health/types.js";
import { memberKey } from "../model/member.js";
import type { PoolRuntime } from "../model/pool.js";
import { headerModeOf, type RampSpec } from "../model/snapshot.js";
import { rampForNewMember } from "../scheduling/weights.js";
import { silentLogger } from "../log.js";
import { StateStore, type HealthSnapshot } from "../state/store.js";
import { FileMembership, type MembershipSource } from "./membership.js";
import type { Plan } from "../model/plan.js";
import { describeChanges, summarizeChanges, type ReloadChanges } from "./changes.js";
import { EventLog } from "./events.js";
import { gate, gateMemberChange } from "./gate.js";
import { SnapshotBuilder, type MemberFacts } from "./snapshot-builder.js";
import { EtcdMembership, StoreConflict, type Captured } from "../cluster/etcd-membership.js";
import { InstanceRegistry } from "../cluster/instances.js";
import type { InstanceRecord } from "../cluster/layout.js";
import { EtcdClient } from "../store/etcd.js";
import { VERSION } from "../version.js";

/** Tries of a member change that loses compare-and-swaps to other instances (SPEC §11), before 409. */
const STORE_CAS_TRIES = 20;
/** A lost compare-and-swap waits up to this many ms per try before the next (random, so racing instances spread out). */
const STORE_CAS_BACKOFF_MS = 5;

export interface Tuning extends TcpTuning {
  /** Data-plane tick: idle/connect/drain sweep and slow-start refresh. */
  tickMs: number;
  /** How long close() lets open connections finish before closing them. */
  shutdownGraceMs: number;
}

export const DEFAULT_TUNING: Tuning = { connectTimeoutMs: 5000, tickMs: 1000, shutdownGraceMs: 10_000 };

/** How often the shutdown wait looks whether every connection has ended. */
const SHUTDOWN_POLL_MS = 50;
/** health.json is written at most this often. */
const HEALTH_SAVE_MS = 1000;

export interface EngineOptions {
  logger?: Logger;
  clock?: Clock;
  /** Timers for the data-plane tick, health checks, state writes and the shutdown wait (tests pass FakeTimers on the same FakeClock). */
  timers?: Timers;
  tuning?: Partial<Tuning>;
  /** Random source for the first health check's moment (tests pin it). */
  random?: () => number;
  /**
   * Persist runtime member changes and cross-VPC facts under the config's state_dir
   * (`lb4 start` turns this on; embedding opts in).
   */
  persistState?: boolean;
  /** The data plane to run snapshots on; default: a DataPlane in this process (startLoadBalancer's `workers` passes the primary's). */
  dataPlane?: (opts: DataPlaneOptions) => DataPlanePort;
}

export interface MemberPatch {
  weight?: number;
  admin_state_up?: boolean;
  name?: string;
}

/** A health-checked member: where it lives, for transitions and the read model. */
interface Checked {
  lbId: string;
  poolId: string;
  memberId: string;
  /** address:port, as persisted in health.json. */
  endpoint: string;
}

/** Observers of health results (metrics). */
export type HealthResultHook = (pool: { lbId: string; id: string }, member: { id: string }, r: ProbeResult, ms: number) => void;

export class Engine {
  /** The running config: the base config with runtime member changes applied. */
  config!: Config;
  /** The config as given (file or object), before runtime member changes. */
  base!: Config;
  /** Where membership comes from and where accepted changes are made durable. */
  private source: MembershipSource = new FileMembership(undefined);
  /** state_dir, for health.json (and the file membership's state.json). */
  private store: StateStore | undefined;
  private readonly persistState: boolean;
  /** Last known health from before this start (SPEC §4: a restart is not a new member); used by the first commit only. */
  private restoredHealth: HealthSnapshot["members"] = {};
  /** A coalesced write of health.json is due. */
  private healthSave: unknown;
  /** The health.json write under way, if any (close() waits for it). */
  private healthSaving: Promise<void> = Promise.resolve();
  readonly logger: Logger;
  readonly clock: Clock;
  private readonly timers: Timers;
  readonly tuning: Tuning;
  readonly dataPlane: DataPlanePort;
  readonly health: HealthChecker;
  readonly events = new EventLog();
  /** Health-check key (`pool/member`) → the member it checks. */
  private readonly checked = new Map<string, Checked>();
  /** Slow-start ramps by `pool/member` (SPEC §4); the start time is set at the first ONLINE. */
  private readonly ramps = new Map<string, RampSpec>();
  private readonly snapshots = new SnapshotBuilder();
  /** Cross-VPC source addresses per load balancer: allocated, and present on this host. */
  private readonly snat = new Map<string, { allocated: string[]; usable: string[] }>();
  /** VPC views per load balancer config object (a new config brings new objects). */
  private vpcs = new WeakMap<LoadBalancerConfig, VpcView | undefined>();
  /** Reloads applied and refused (metrics). */
  readonly reloads = { ok: 0, failed: 0 };
  readonly healthResultHooks: HealthResultHook[] = [];
  private closed = false;
  /** With a `cluster:` block: the etcd source and the instance registry (they share one client). */
  private cluster: { source: EtcdMembership; registry: InstanceRegistry } | undefined;
  /** The store revision the running config was built from. */
  private storeApplied = 0;
  private storeApplyQueued = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Changes queued or running. */
  private inFlight = 0;

  constructor(opts: EngineOptions = {}) {
    this.logger = opts.logger ?? silentLogger();
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.persistState = opts.persistState ?? false;
    const dpOpts: DataPlaneOptions = { logger: this.logger, clock: this.clock, timers: this.timers, tuning: this.tuning };
    this.dataPlane = opts.dataPlane ? opts.dataPlane(dpOpts) : new DataPlane(dpOpts);
    this.health = new HealthChecker({
      clock: this.clock,
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      onTransition: (key, t) => this.onHealthTransition(key, t),
      onResult: (key, r, ms) => {
        const c = this.checked.get(key);
        if (c) for (const h of this.healthResultHooks) h({ lbId: c.lbId, id: c.poolId }, { id: c.memberId }, r, ms);
      },
      onError: (err) => this.logger.error({ err }, "health-check callback failed"),
    });
  }

  /** Validate and start from a config; throws ConfigError / NotSupportedError, nothing left bound. */
  async start(input: Config | ConfigInput): Promise<void> {
    const base = this.validate(input);
    if (this.persistState) {
      this.store = new StateStore(path.resolve(base.state_dir));
      const stale = await this.store.removeStaleTemps();
      if (stale > 0) this.logger.info({ ev: "state_cleanup", removed: stale }, `removed ${stale} temporary file(s) left in ${this.store.dir} by an interrupted write`);
      this.restoredHealth = (await this.store.loadHealth()).members;
    }
    if (base.cluster) {
      const c = base.cluster;
      const client = new EtcdClient({ endpoints: c.etcd });
      const source = new EtcdMembership({ cluster: c, client, stateDir: this.persistState ? path.resolve(base.state_dir) : undefined, logger: this.logger, onChange: () => this.fromStore() });
      const registry = new InstanceRegistry(
        client,
        c,
        { instance_id: c.instance_id ?? os.hostname(), advertise: c.advertise ?? base.admin?.listen ?? "", version: VERSION, pid: process.pid, started_at: new Date().toISOString() },
        this.logger,
      );
      this.cluster = { source, registry };
      this.source = source;
    } else {
      this.source = new FileMembership(this.store);
    }
    await this.source.load(base);
    const { input: running, cap } = this.candidate(base);
    const config = this.validate(running, true);
    await this.source.acceptConfig(config);
    await this.commit(config, true);
    this.ranStore(cap);
    this.cluster?.registry.start(this.storeApplied);
    const restored = Object.keys(this.restoredHealth).length;
    this.restoredHealth = {};
    if (restored > 0) this.logger.info({ ev: "health_restored", members: restored }, "members keep their last known health until their first check, which runs now");
    this.base = base;
    // Changes the watch delivered while starting.
    if (this.cluster?.source.pending) this.fromStore();
  }

  /** The membership a config is validated from: the source's, and with etcd the view it was taken from. */
  private candidate(base: Config): { input: Config; cap?: Captured } {
    const c = this.cluster;
    if (!c) return { input: this.source.membership(base) };
    const cap = c.source.capture();
    return { input: c.source.membership(base, cap.lbs), cap };
  }

  /** The running config now is the captured view: member changes build on it, and the instance reports its revision. */
  private ranStore(cap: Captured | undefined): void {
    if (!cap || !this.cluster) return;
    this.cluster.source.ran(cap);
    this.markStoreApplied(cap.contentRevision);
  }

  /**
   * The store changed (another instance's change, a catch-up after etcd came back): apply
   * it as a reload would, behind any change in flight. One queued at a time: it reads the
   * view when it runs, so later events are in it.
   */
  private fromStore(): void {
    if (this.storeApplyQueued || !this.cluster) return;
    this.storeApplyQueued = true;
    const run = this.serialise(async () => {
      this.storeApplyQueued = false;
      if (this.closed || !this.config || !this.base) return;
      await this.applyStoreView();
    });
    run.catch((err: unknown) => this.logger.error({ err }, "applying a store change failed"));
  }

  /** The running config now matches the store up to `revision` (default: the view's newest change). */
  private markStoreApplied(revision = this.cluster!.source.contentRevision): void {
    if (revision <= this.storeApplied) return;
    this.storeApplied = revision;
    this.cluster!.registry.applied(revision);
  }

  /** A reload (of the file, or of what the store holds) ran or was refused: counted and in the event ring. */
  private recordReload(err?: Error): void {
    if (err) {
      this.reloads.failed++;
      this.events.push({ type: "reload", result: "failed", error: err.message });
    } else {
      this.reloads.ok++;
      this.events.push({ type: "reload", result: "ok" });
    }
  }

  /** Validate and run what the store holds now (inside a serialised change). */
  private async applyStoreView(): Promise<void> {
    const source = this.cluster!.source;
    if (!source.pending) return;
    const { input, cap } = this.candidate(this.base);
    const revision = cap!.contentRevision;
    let config: Config;
    try {
      config = this.validate(input, true);
    } catch (err) {
      source.refused(cap!);
      this.recordReload(err as Error);
      this.logger.error({ ev: "store_change_refused", revision, err: (err as Error).message }, `the store's revision ${revision} does not validate here; this instance keeps running revision ${this.storeApplied}`);
      return;
    }
    const prev = this.config;
    const plan = await this.commit(config, false);
    this.ranStore(cap);
    const changes = describeChanges(prev, config, plan);
    this.recordReload();
    this.logger.info({ ev: "store_applied", revision, changes }, `applied store revision ${revision}: ${summarizeChanges(changes)}`);
  }

  /**
   * The single gate for any candidate config: schema, cross-field and cross-VPC rules
   * (with the persisted "ever enabled" facts), and what this build can serve.
   */
  validate(input: unknown, withState = false): Config {
    return gate(input, withState ? this.gateState() : {});
  }

  /** Replace the base config (file or object) and re-apply runtime member changes on top, as a diff. */
  reload(input: Config | ConfigInput): Promise<ReloadChanges> {
    return this.serialise(async () => {
      let changes: ReloadChanges;
      try {
        const base = this.validate(input);
        const { input: running, cap } = this.candidate(base);
        const config = this.validate(running, true);
        const undo = await this.source.acceptConfig(config);
        const prev = this.config;
        let plan: Plan;
        try {
          plan = await this.commit(config, false);
        } catch (err) {
          // Nothing runs differently (a bind failed): neither may the persisted facts (a pool's overlay, cross-VPC on).
          await undo().catch((e: unknown) => this.logger.error({ err: e }, "could not restore the state after a refused reload"));
          throw err;
        }
        this.ranStore(cap);
        changes = describeChanges(prev, config, plan);
        this.base = base;
      } catch (err) {
        this.recordReload(err as Error);
        this.logger.warn({ ev: "reload_failed", err: (err as Error).message }, "reload refused; the running configuration stays");
        throw err;
      }
      this.recordReload();
      this.logger.info({ ev: "reload", changes }, `configuration reloaded: ${summarizeChanges(changes)}`);
      return changes;
    });
  }

  addMember(poolId: string, member: MemberInput): Promise<MemberConfig> {
    return this.changeMembers(poolId, "member_added", (members) => {
      members.push(member as MemberConfig);
      return members.length - 1;
    });
  }

  updateMember(poolId: string, memberId: string, patch: MemberPatch): Promise<MemberConfig> {
    return this.changeMembers(poolId, "member_updated", (members) => {
      const i = this.indexOf(members, memberId);
      // Only the fields SPEC §8 lets a PUT change; id and address are a member's identity.
      const { weight, admin_state_up, name } = patch;
      members[i] = {
        ...members[i]!,
        ...(weight !== undefined ? { weight } : {}),
        ...(admin_state_up !== undefined ? { admin_state_up } : {}),
        ...(name !== undefined ? { name } : {}),
      };
      return i;
    });
  }

  removeMember(poolId: string, memberId: string): Promise<MemberConfig> {
    let removed: MemberConfig | undefined;
    return this.changeMembers(poolId, "member_removed", (members) => {
      removed = members.splice(this.indexOf(members, memberId), 1)[0];
      return -1;
    }).then(() => removed!);
  }

  private indexOf(members: MemberConfig[], id: string): number {
    const i = members.findIndex((m) => m.id === id);
    if (i < 0) throw new NotFoundError("member", id);
    return i;
  }

  /**
   * Every runtime member change: edit a copy of the pool's member list, pass it through the
   * gate, persist the overlay, then commit it for that pool alone. A rejected change leaves
   * config, state file and traffic untouched. Cost follows the pool, not the instance: only
   * the touched member is re-parsed and nothing unchanged is copied.
   */
  private changeMembers(poolId: string, event: "member_added" | "member_updated" | "member_removed", edit: (members: MemberConfig[]) => number): Promise<MemberConfig> {
    return this.serialise(async () => {
      for (let attempt = 1; ; attempt++) {
        const { lbIndex, poolIndex } = this.locatePool(poolId);
        const before = this.config.loadbalancers[lbIndex]!.pools[poolIndex]!.members;
        const members = before.slice();
        const changed = edit(members);
        const next = gateMemberChange(this.config, { lbIndex, poolIndex, members, changed }, this.gateState());
        const after = next.loadbalancers[lbIndex]!.pools[poolIndex]!.members;
        try {
          await this.source.acceptChange(poolId, before, after);
        } catch (err) {
          // Another instance changed the load balancer first: validate again on what it wrote.
          if (!(err instanceof StoreConflict) || attempt >= STORE_CAS_TRIES) throw err;
          await sleep(this.timers, Math.random() * STORE_CAS_BACKOFF_MS * attempt);
          await this.cluster!.source.catchUp();
          await this.applyStoreView();
          continue;
        }
        try {
          if (this.closed) throw new Lb4Error("LB4.CLOSED", "the load balancer is closed");
          await this.commit(next, false, new Set([poolId]));
        } catch (err) {
          // Committed to etcd but not run here: run the store's view again rather than build on the old one.
          if (this.cluster) {
            this.cluster.source.invalidate();
            this.fromStore();
          }
          throw err;
        }
        // Our own write is the newest change unless others are waiting to be applied (they mark it then).
        if (this.cluster && !this.cluster.source.pending) this.markStoreApplied();
        const result = changed >= 0 ? after[changed]! : before.find((m) => !after.includes(m))!;
        this.events.push({ type: event, pool_id: poolId, member_id: result.id });
        return result;
      }
    });
  }

  /** What the gate needs of the membership source: its persisted facts and where they live. */
  private gateState(): { state: ReturnType<MembershipSource["facts"]>; stateFile?: string } {
    const where = this.source.where;
    return { state: this.source.facts(), ...(where ? { stateFile: where } : {}) };
  }

  /**
   * Run `next`: decide member facts (new ramps, health of new members), publish the
   * snapshot, and once the data plane took it, wire health checks to match. `pools` limits
   * the work to the pools a member change touched.
   */
  private async commit(next: Config, initial: boolean, pools?: ReadonlySet<string>): Promise<Plan> {
    if (this.closed) throw new Lb4Error("LB4.CLOSED", "the load balancer is closed");
    const prev = initial ? undefined : this.config;
    const now = this.clock.now();
    const snat = new Map<string, { allocated: string[]; usable: string[] }>();
    for (const lb of next.loadbalancers) {
      const allocated = lb.ip_target_enable ? allocateSnatAddresses(lb, this.vpcOf(next, lb)) : [];
      const had = this.snat.get(lb.id);
      // A member change reuses what is known; a start or reload looks again (addresses may have been added to the host).
      const reuse = had && pools && had.allocated.join() === allocated.join();
      snat.set(lb.id, reuse ? had : { allocated, usable: await usableLocalAddresses(allocated, !pools) });
    }

    // Ramps for members new to a pool that already had members (SPEC §4), decided before the snapshot.
    const ramps = new Map<string, RampSpec>();
    // "Had members" is asked of the same pool in the same load balancer (a pool moved elsewhere starts over).
    const prevPools = new Map<string, PoolConfig>();
    if (prev) for (const lb of prev.loadbalancers) for (const p of lb.pools) prevPools.set(`${lb.id}/${p.id}`, p);
    for (const lb of next.loadbalancers) {
      for (const pool of lb.pools) {
        if (pools && !pools.has(pool.id)) continue;
        const was = prevPools.get(`${lb.id}/${pool.id}`);
        const old = new Map((was?.members ?? []).map((m) => [m.id, m]));
        const monitored = isMonitored(pool);
        for (const m of pool.members) {
          const key = `${pool.id}/${m.id}`;
          const o = old.get(m.id);
          if (o && o.address === m.address && o.protocol_port === m.protocol_port) continue;
          const r = rampForNewMember({ slowStart: pool.slow_start, poolHadMembers: !!was && was.members.length > 0, startup: initial, monitored, now });
          if (r) ramps.set(key, { durationMs: r.durationMs, startedAt: r.startedAt ?? null });
          else if (this.ramps.has(key)) ramps.set(key, NO_RAMP); // replaced member: its old ramp goes
        }
      }
    }

    const facts = this.facts(next, snat, ramps);
    const plan = await this.dataPlane.apply(this.snapshots.build(next, facts, pools));

    // The data plane runs it: commit the control side (nothing below fails).
    for (const [lbId, s] of snat) {
      const had = this.snat.get(lbId);
      this.snat.set(lbId, s);
      const lb = next.loadbalancers.find((l) => l.id === lbId)!;
      if (lb.ip_target_enable && (had?.allocated.join() !== s.allocated.join() || had?.usable.join() !== s.usable.join())) {
        this.logger.info(
          { ev: "crossvpc", lb: lbId, backend_subnet_cidrs: backendSubnets(lb, this.vpcOf(next, lb)).map((x) => x.subnet.cidr.text), source_addresses: s.allocated, on_host: s.usable },
          "cross-VPC backends enabled: allow the backend subnet CIDRs in the members' security groups",
        );
      }
    }
    for (const id of [...this.snat.keys()]) if (!snat.has(id)) this.snat.delete(id);
    for (const [k, r] of ramps) {
      if (r === NO_RAMP) this.ramps.delete(k);
      else this.ramps.set(k, r);
    }
    this.syncHealth(prev, next, pools);
    this.config = next;
    return plan;
  }

  /** The facts a snapshot of `config` is built from; `pending` holds commit-time ramps not stored yet. */
  private facts(config: Config, snat: ReadonlyMap<string, { usable: string[]; allocated: string[] }>, pending: ReadonlyMap<string, RampSpec>): MemberFacts {
    return {
      status: (pool, m) => this.statusOf(pool, m),
      ramp: (pool, m) => {
        const k = `${pool.id}/${m.id}`;
        const r = pending.get(k) ?? this.ramps.get(k) ?? null;
        return r === NO_RAMP ? null : r;
      },
      crossVpc: (lb, address) => isCrossVpc(this.vpcOf(config, lb), address),
      snat: (lb) => snat.get(lb.id)?.usable ?? [],
    };
  }

  private vpcOf(config: Config, lb: LoadBalancerConfig): VpcView | undefined {
    if (this.vpcs.has(lb)) return this.vpcs.get(lb);
    const v = vpcView(config, lb.vpc_id);
    this.vpcs.set(lb, v);
    return v;
  }

  /**
   * What health says of a member, in the API's words: NO_MONITOR without an active monitor;
   * otherwise the checker's state, OFFLINE until a first pass (or its restored health).
   */
  private statusOf(pool: PoolConfig, m: MemberConfig): OperatingStatus {
    if (!isMonitored(pool)) return "NO_MONITOR";
    const key = `${pool.id}/${m.id}`;
    const endpoint = memberKey(m.address, m.protocol_port);
    // A check of another address (the member moved) says nothing about this one: unchecked, so OFFLINE.
    const s = this.checked.get(key)?.endpoint === endpoint ? this.health.status(key) : undefined;
    if (s) return s.status;
    const saved = this.restoredHealth[key];
    return saved && saved.endpoint === endpoint ? saved.state : "OFFLINE";
  }

  /** Start, update or stop checks so they match `next` (all pools, or the ones named). */
  private syncHealth(prev: Config | undefined, next: Config, pools?: ReadonlySet<string>): void {
    const wanted = new Set<string>();
    for (const lb of next.loadbalancers) {
      for (const pool of lb.pools) {
        if (pools && !pools.has(pool.id)) continue;
        const hm = pool.healthmonitor;
        const monitored = isMonitored(pool);
        const usable = this.snat.get(lb.id)?.usable[0];
        for (const m of pool.members) {
          const key = `${pool.id}/${m.id}`;
          wanted.add(key);
          const endpoint = memberKey(m.address, m.protocol_port);
          const c = this.checked.get(key);
          if (c && c.endpoint !== endpoint) this.stopChecking(key);
          if (!monitored || !hm) {
            this.stopChecking(key);
            continue;
          }
          const crossVpc = isCrossVpc(this.vpcOf(next, lb), m.address);
          const mode = headerModeOf(pool.client_ip, crossVpc);
          const target = {
            address: m.address,
            port: m.protocol_port,
            // Checks that send a header use its LOCAL form (SPEC §7); toa has none, so checks send nothing.
            ...(mode === "proxy_v1" || mode === "proxy_v2" ? { prefix: encodeHeader(mode, { command: "LOCAL" }) } : {}),
            ...(crossVpc && usable ? { localAddress: usable } : {}),
          };
          if (this.health.has(key)) {
            this.health.update(key, hm, target);
            this.checked.set(key, { lbId: lb.id, poolId: pool.id, memberId: m.id, endpoint });
            continue;
          }
          // A member known before a restart keeps its last health until its first check (SPEC §4).
          const saved = this.restoredHealth[key];
          const restored = saved && saved.endpoint === endpoint ? saved.state : undefined;
          this.checked.set(key, { lbId: lb.id, poolId: pool.id, memberId: m.id, endpoint });
          this.health.add(key, target, hm, restored ? { restored } : {});
        }
      }
    }
    // Members gone: all of them not wanted, or (for a change to named pools) those pools' members that left.
    const gone = (key: string) => !wanted.has(key);
    if (!pools) {
      for (const key of [...this.checked.keys()]) if (gone(key)) this.stopChecking(key);
      for (const key of [...this.ramps.keys()]) if (gone(key)) this.ramps.delete(key);
      return;
    }
    for (const lb of prev?.loadbalancers ?? []) {
      for (const pool of lb.pools) {
        if (!pools.has(pool.id)) continue;
        for (const m of pool.members) {
          const key = `${pool.id}/${m.id}`;
          if (!gone(key)) continue;
          this.stopChecking(key);
          this.ramps.delete(key);
        }
      }
    }
  }

  private stopChecking(key: string): void {
    if (this.health.remove(key)) this.scheduleHealthSave();
    this.checked.delete(key);
  }

  private onHealthTransition(key: string, t: Transition): void {
    const c = this.checked.get(key);
    if (!c) return;
    const ramp = this.ramps.get(key);
    // The first ONLINE starts a pending slow-start ramp; flapping later does not move it.
    if (t.to === "ONLINE" && ramp && ramp.startedAt === null) this.ramps.set(key, { ...ramp, startedAt: this.clock.now() });
    this.logger.info(
      { ev: "health", pool: c.poolId, member: c.memberId, address: c.endpoint, from: t.from, to: t.to, reason: t.reason },
      `member ${c.memberId} ${t.from} -> ${t.to}`,
    );
    this.events.push({ type: "health", pool_id: c.poolId, member_id: c.memberId, address: c.endpoint, from: t.from, to: t.to, reason: t.reason });
    this.scheduleHealthSave();
    this.publish(new Set([c.poolId]));
  }

  /**
   * A new snapshot for facts that changed outside a config change (health). At once when no
   * change is in flight, so an OFFLINE member stops getting connections in the same turn;
   * otherwise behind the change, which could not see it (and would overwrite it).
   */
  private publish(pools: ReadonlySet<string>): void {
    const run = async () => {
      if (this.closed || !this.config) return;
      await this.dataPlane.apply(this.snapshots.build(this.config, this.facts(this.config, this.snat, new Map()), pools));
    };
    const done = this.inFlight === 0 ? run() : this.serialise(run);
    done.catch((err: unknown) => this.logger.error({ err }, "publishing a snapshot failed"));
  }

  pool(poolId: string): PoolRuntime | undefined {
    return this.dataPlane.pool(poolId);
  }

  listener(listenerId: string): Listener | undefined {
    return this.dataPlane.listener(listenerId);
  }

  /** Load balancers as the data plane runs them (metrics, status). */
  get lbs(): ReadonlyMap<string, LbRuntime> {
    return this.dataPlane.lbs;
  }

  /** Open connections/flows across all listeners, retired ones included. */
  get activeConnections(): number {
    return this.dataPlane.activeConnections;
  }

  /** Fresh counters from every worker before a read (no-op in one process). */
  async refreshCounters(): Promise<void> {
    await this.dataPlane.refresh?.();
  }

  /** The worker processes (SPEC §10), or [] in one process. */
  workers(): ReturnType<NonNullable<DataPlanePort["workers"]>> {
    return this.dataPlane.workers?.() ?? [];
  }

  /** A member's health-check state: UNCHECKED until its first result; undefined without a monitor. */
  memberHealth(poolId: string, memberId: string): "UNCHECKED" | "ONLINE" | "OFFLINE" | undefined {
    return this.health.status(`${poolId}/${memberId}`)?.state;
  }

  /**
   * Stop accepting at once, let connections finish for up to graceMs (on the injected clock),
   * then close what is left (logged `end: "shutdown"`). Never waits on a client.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A change in flight (a reload binding a listener) finishes first; queued ones see `closed`.
    await this.queue;
    const graceMs = opts.graceMs ?? this.tuning.shutdownGraceMs;
    await this.dataPlane.stopAccepting();
    const deadline = this.clock.now() + graceMs;
    for (let left = graceMs; this.activeConnections > 0 && left > 0; left = deadline - this.clock.now()) {
      await sleep(this.timers, Math.min(SHUTDOWN_POLL_MS, left));
    }
    this.dataPlane.destroyAll();
    // Destroyed sockets report 'close' within a few loop turns; bounded, so a leaked count cannot hold the exit.
    for (let turns = 0; this.activeConnections > 0 && turns < 200; turns++) await new Promise((r) => setTimeout(r, 5));
    if (this.activeConnections > 0) this.logger.warn({ ev: "shutdown_leftover", active: this.activeConnections }, "connections still counted after shutdown");
    await this.dataPlane.close();
    if (this.healthSave !== undefined) {
      this.timers.clear(this.healthSave);
      this.healthSave = undefined;
      await this.saveHealth();
    }
    await this.healthSaving;
    await this.health.close();
    if (this.cluster) {
      await this.cluster.registry.close();
      await this.cluster.source.close();
      // Watches are closed by their owners; the client holds nothing else open.
    }
  }

  /** With a `cluster:` block: whether etcd answers and the store revision this instance runs (SPEC §11). */
  clusterStatus(): { store: "ok" | "unreachable"; revision: number; instance_id: string; started_from: string } | undefined {
    const c = this.cluster;
    if (!c) return undefined;
    return { store: c.source.storeUp ? "ok" : "unreachable", revision: this.storeApplied, instance_id: c.registry.instanceId, started_from: c.source.startedFrom };
  }

  /** The live instances of the cluster (from etcd); undefined when standalone. */
  async instances(): Promise<InstanceRecord[] | undefined> {
    return this.cluster?.registry.list();
  }

  /** Coalesce health.json writes: at most one per HEALTH_SAVE_MS, off the change path. */
  private scheduleHealthSave(): void {
    if (!this.store || this.healthSave !== undefined || this.closed) return;
    this.healthSave = this.timers.set(() => {
      this.healthSave = undefined;
      this.healthSaving = this.saveHealth();
    }, HEALTH_SAVE_MS);
  }

  private async saveHealth(): Promise<void> {
    if (!this.store) return;
    const members: HealthSnapshot["members"] = {};
    for (const [key, c] of this.checked) {
      const state = this.health.status(key)?.state;
      if (state === "ONLINE" || state === "OFFLINE") members[key] = { endpoint: c.endpoint, state };
    }
    try {
      await this.store.saveHealth({ version: 1, members });
    } catch (err) {
      this.logger.warn({ ev: "health_save_failed", err: (err as Error).message }, `cannot write ${this.store.healthFile}; a restart will check members from scratch`);
    }
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight++;
    const task = async () => {
      try {
        return await fn();
      } finally {
        this.inFlight--;
      }
    };
    const run = this.queue.then(task, task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private locatePool(poolId: string): { lbIndex: number; poolIndex: number } {
    for (const [lbIndex, lb] of this.config.loadbalancers.entries()) {
      const poolIndex = lb.pools.findIndex((p) => p.id === poolId);
      if (poolIndex >= 0) return { lbIndex, poolIndex };
    }
    throw new NotFoundError("pool", poolId);
  }
}

/** A member that had a ramp and was replaced: the marker that drops the old ramp. */
const NO_RAMP: RampSpec = Object.freeze({ durationMs: 0, startedAt: null });

function isMonitored(pool: PoolConfig): boolean {
  return pool.healthmonitor !== null && pool.healthmonitor.admin_state_up;
}
