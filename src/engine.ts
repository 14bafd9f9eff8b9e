/**
 * The engine: turns a validated Config into running listeners and pools, and applies every
 * later change (reload, member API) as a diff against what runs. All changes go through
 * validateConfig() on a whole candidate config first, so one rule has one home.
 */
import path from "node:path";
import type { Logger } from "pino";
import { applyOverlay, emptyState, StateStore, type HealthSnapshot, type RuntimeState } from "./state/store.js";
import { gate, gateMemberChange } from "./control/gate.js";
import { compileAccessList } from "./acl/ipgroup.js";
import { sleep, systemClock, systemTimers, type Clock, type Timers } from "./clock.js";
import type { Config, ConfigInput, ListenerConfig, LoadBalancerConfig, MemberConfig, MemberInput, PoolConfig } from "./config/schema.js";
import { allocateSnatAddresses, backendSubnets, isCrossVpc, vpcView } from "./crossvpc/rules.js";
import { encodeHeader } from "./clientip/codec.js";
import { usableLocalAddresses } from "./dataplane/local-address.js";
import { RateLimitedLog } from "./dataplane/ratelimit.js";
import { AccessLog } from "./dataplane/access-log.js";
import type { Listener } from "./dataplane/listener.js";
import { TcpListener, type TcpTuning } from "./dataplane/tcp.js";
import { UdpListener } from "./dataplane/udp.js";
import { Lb4Error, NotFoundError } from "./errors.js";
import { silentLogger } from "./log.js";
import { HealthChecker } from "./health/checker.js";
import type { Transition } from "./health/state-machine.js";
import type { ProbeResult } from "./health/types.js";
import { MemberRuntime, memberKey } from "./model/member.js";
import { rampForNewMember } from "./scheduling/weights.js";
import { PoolRuntime } from "./model/pool.js";

export interface Tuning extends TcpTuning {
  /** Engine tick: idle/connect/drain sweep and slow-start refresh. */
  tickMs: number;
  /** How long close() lets open connections finish before closing them. */
  shutdownGraceMs: number;
}

/** How often the shutdown wait looks whether every connection has ended. */
const SHUTDOWN_POLL_MS = 50;
/** health.json is written at most this often. */
const HEALTH_SAVE_MS = 1000;

export const DEFAULT_TUNING: Tuning = { connectTimeoutMs: 5000, tickMs: 1000, shutdownGraceMs: 10_000 };

export interface EngineOptions {
  logger?: Logger;
  clock?: Clock;
  /** Timers for health checks, state writes and the shutdown wait (tests pass FakeTimers on the same FakeClock). */
  timers?: Timers;
  tuning?: Partial<Tuning>;
  /** Random source for the first health check's moment (tests pin it). */
  random?: () => number;
  /**
   * Persist runtime member changes and cross-VPC facts under the config's state_dir
   * (`lb4 start` turns this on; embedding opts in).
   */
  persistState?: boolean;
}

interface LbRuntime {
  config: LoadBalancerConfig;
  pools: Map<string, PoolRuntime>;
  listeners: Map<string, Listener>;
  /** Cross-VPC source addresses (SPEC §6 rule 5): all allocated, and those present on this host. */
  snat: { allocated: string[]; usable: string[]; next: number };
}

export interface MemberPatch {
  weight?: number;
  admin_state_up?: boolean;
  name?: string;
}

export class Engine {
  /** The running config: the base config with runtime member changes applied. */
  config!: Config;
  /** The config as given (file or object), before runtime member changes. */
  base!: Config;
  private state: RuntimeState = emptyState();
  private store: StateStore | undefined;
  /** Last known health from before this start (SPEC §4: a restart is not a new member); used by the first apply only. */
  private restoredHealth: HealthSnapshot["members"] = {};
  /** A coalesced write of health.json is due. */
  private healthSave: unknown;
  private readonly persistState: boolean;
  readonly lbs = new Map<string, LbRuntime>();
  readonly logger: Logger;
  readonly clock: Clock;
  private readonly timers: Timers;
  readonly tuning: Tuning;
  private readonly refusalLog: RateLimitedLog;
  private readonly accessLog: AccessLog;
  /** Listeners removed by a reload whose connections are still open. */
  private readonly retired = new Set<Listener>();
  readonly health: HealthChecker;
  /** Health-check key → the member it checks. */
  private readonly checked = new Map<string, { pool: PoolRuntime; member: MemberRuntime }>();
  /** Reloads applied and refused (metrics). */
  readonly reloads = { ok: 0, failed: 0 };
  /** Observers of health results (metrics). */
  readonly healthResultHooks: Array<(pool: PoolRuntime, member: MemberRuntime, r: ProbeResult, ms: number) => void> = [];
  private ticker: NodeJS.Timeout | undefined;
  private closed = false;
  /** Serialises changes: each apply sees the result of the previous one. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: EngineOptions = {}) {
    this.logger = opts.logger ?? silentLogger();
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.persistState = opts.persistState ?? false;
    this.refusalLog = new RateLimitedLog(this.logger, () => this.clock.now());
    this.accessLog = new AccessLog(this.logger, () => this.clock.now());
    this.health = new HealthChecker({
      clock: this.clock,
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      onTransition: (key, t) => this.onHealthTransition(key, t),
      onResult: (key, r, ms) => {
        const c = this.checked.get(key);
        if (c) for (const h of this.healthResultHooks) h(c.pool, c.member, r, ms);
      },
      onError: (err) => this.logger.error({ err }, "health-check callback failed"),
    });
  }

  private onHealthTransition(key: string, t: Transition): void {
    const c = this.checked.get(key);
    if (!c) return;
    const { pool, member } = c;
    const now = this.clock.now();
    member.setHealth(t.to === "ONLINE", now);
    pool.refresh(now);
    this.scheduleHealthSave();
    this.logger.info(
      { ev: "health", pool: pool.id, member: member.id, address: member.key, from: t.from, to: t.to, reason: t.reason },
      `member ${member.id} ${t.from} -> ${t.to}`,
    );
  }

  /** Validate and start from a config; throws ConfigError / NotSupportedError, nothing left bound. */
  async start(input: Config | ConfigInput): Promise<void> {
    const base = this.validate(input);
    if (this.persistState) {
      this.store = new StateStore(path.resolve(base.state_dir));
      const stale = await this.store.removeStaleTemps();
      if (stale > 0) this.logger.info({ ev: "state_cleanup", removed: stale }, `removed ${stale} temporary file(s) left in ${this.store.dir} by an interrupted write`);
      this.state = await this.store.load();
      this.restoredHealth = (await this.store.loadHealth()).members;
    }
    const config = this.validate(applyOverlay(base, this.state), true);
    await this.persist(this.stateFor(config));
    await this.apply(config, true);
    const restored = Object.keys(this.restoredHealth).length;
    this.restoredHealth = {};
    if (restored > 0) this.logger.info({ ev: "health_restored", members: restored }, "members keep their last known health until their first check, which runs now");
    this.base = base;
    this.ticker = setInterval(() => this.tick(), this.tuning.tickMs);
    this.ticker.unref();
  }

  /**
   * The single gate for any candidate config: schema, cross-field and cross-VPC rules
   * (with the persisted "ever enabled" facts), and what this build can serve.
   */
  validate(input: unknown, withState = false): Config {
    return gate(input, withState ? { state: this.state, ...(this.store ? { stateFile: this.store.file } : {}) } : {});
  }

  /** Replace the base config (file or object) and re-apply runtime member changes on top, as a diff. */
  reload(input: Config | ConfigInput): Promise<void> {
    return this.serialise(async () => {
      try {
        const base = this.validate(input);
        const config = this.validate(applyOverlay(base, this.state), true);
        await this.persist(this.stateFor(config));
        await this.apply(config, false);
        this.base = base;
      } catch (err) {
        this.reloads.failed++;
        this.logger.warn({ ev: "reload_failed", err: (err as Error).message }, "reload refused; the running configuration stays");
        throw err;
      }
      this.reloads.ok++;
      this.logger.info({ ev: "reload" }, "configuration reloaded");
    });
  }

  addMember(poolId: string, member: MemberInput): Promise<MemberConfig> {
    return this.changeMembers(poolId, (members) => {
      members.push(member as MemberConfig);
      return members.length - 1;
    });
  }

  updateMember(poolId: string, memberId: string, patch: MemberPatch): Promise<MemberConfig> {
    return this.changeMembers(poolId, (members) => {
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
    return this.changeMembers(poolId, (members) => {
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
   * gate, persist the overlay, then apply it to that pool alone. A rejected change leaves
   * config, state file and traffic untouched. Cost follows the pool, not the instance: only
   * the touched member is re-parsed and nothing unchanged is copied.
   */
  private changeMembers(poolId: string, edit: (members: MemberConfig[]) => number): Promise<MemberConfig> {
    return this.serialise(async () => {
      const { lbIndex, poolIndex } = this.locatePool(poolId);
      const before = this.config.loadbalancers[lbIndex]!.pools[poolIndex]!.members;
      const members = before.slice();
      const changed = edit(members);
      const next = gateMemberChange(this.config, { lbIndex, poolIndex, members, changed }, { state: this.state, ...(this.store ? { stateFile: this.store.file } : {}) });
      const after = next.loadbalancers[lbIndex]!.pools[poolIndex]!.members;
      await this.persist(this.stateForChange(poolId, before, after), true);
      if (this.closed) throw new Lb4Error("LB4.CLOSED", "the load balancer is closed");
      this.applyPoolChange(next, lbIndex, poolIndex);
      return changed >= 0 ? after[changed]! : before.find((m) => !after.includes(m))!;
    });
  }

  /** The state to persist for a config about to run (reload, start): cross-VPC facts, overlays of pools that still exist. */
  private stateFor(next: Config): RuntimeState {
    const state: RuntimeState = structuredClone(this.state);
    for (const lb of next.loadbalancers) if (lb.ip_target_enable && !state.cross_vpc_enabled.includes(lb.id)) state.cross_vpc_enabled.push(lb.id);
    const poolIds = new Set(next.loadbalancers.flatMap((lb) => lb.pools.map((p) => p.id)));
    for (const id of Object.keys(state.members)) if (!poolIds.has(id)) delete state.members[id];
    return state;
  }

  /** The state with one pool's member change folded into its overlay; other pools are shared, not copied. */
  private stateForChange(poolId: string, before: readonly MemberConfig[], after: readonly MemberConfig[]): RuntimeState {
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
    return { ...this.state, members: { ...this.state.members, [poolId]: o } };
  }

  /** Durable before anything is acknowledged; skipped when persistence is off or (unless `changed`) nothing changed. */
  private async persist(state: RuntimeState, changed = false): Promise<void> {
    if (this.store && (changed || JSON.stringify(state) !== JSON.stringify(this.state))) await this.store.save(state);
    this.state = state;
  }

  pool(poolId: string): PoolRuntime | undefined {
    for (const lb of this.lbs.values()) {
      const p = lb.pools.get(poolId);
      if (p) return p;
    }
    return undefined;
  }

  listener(listenerId: string): Listener | undefined {
    for (const lb of this.lbs.values()) {
      const l = lb.listeners.get(listenerId);
      if (l) return l;
    }
    return undefined;
  }

  /** Open connections/flows across all listeners, retired ones included. */
  get activeConnections(): number {
    let n = 0;
    for (const l of this.allListeners()) n += l.stats.active;
    return n;
  }

  /** Running listeners, then retired ones (removed by a reload, connections still open). */
  private allListeners(): Listener[] {
    const out = [...this.lbs.values()].flatMap((lb) => [...lb.listeners.values()]);
    for (const l of this.retired) out.push(l);
    return out;
  }

  /** Stop a listener taking new connections; its open ones keep being swept until they end. */
  private retire(l: Listener): void {
    void l.stopAccepting();
    if (l.stats.active > 0) this.retired.add(l);
  }

  /**
   * Stop accepting at once, let connections finish for up to graceMs (on the injected clock),
   * then close what is left (logged `end: "shutdown"`). Never waits on a client.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const graceMs = opts.graceMs ?? this.tuning.shutdownGraceMs;
    const listeners = this.allListeners();
    await Promise.all(listeners.map((l) => l.stopAccepting()));
    const deadline = this.clock.now() + graceMs;
    for (let left = graceMs; this.activeConnections > 0 && left > 0; left = deadline - this.clock.now()) {
      await sleep(this.timers, Math.min(SHUTDOWN_POLL_MS, left));
    }
    for (const l of listeners) l.destroyAll();
    // Destroyed sockets report 'close' within a few loop turns; bounded, so a leaked count cannot hold the exit.
    for (let turns = 0; this.activeConnections > 0 && turns < 200; turns++) await new Promise((r) => setTimeout(r, 5));
    if (this.activeConnections > 0) this.logger.warn({ ev: "shutdown_leftover", active: this.activeConnections }, "connections still counted after shutdown");
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    if (this.healthSave !== undefined) {
      this.timers.clear(this.healthSave);
      this.healthSave = undefined;
      await this.saveHealth();
    }
    await this.health.close();
    this.accessLog.close();
  }

  /** A member's health-check state: UNCHECKED until its first result; undefined without a monitor. */
  memberHealth(poolId: string, memberId: string): "UNCHECKED" | "ONLINE" | "OFFLINE" | undefined {
    return this.health.status(`${poolId}/${memberId}`)?.state;
  }

  /** Coalesce health.json writes: at most one per HEALTH_SAVE_MS, off the change path. */
  private scheduleHealthSave(): void {
    if (!this.store || this.healthSave !== undefined || this.closed) return;
    this.healthSave = this.timers.set(() => {
      this.healthSave = undefined;
      void this.saveHealth();
    }, HEALTH_SAVE_MS);
  }

  private async saveHealth(): Promise<void> {
    if (!this.store) return;
    const members: HealthSnapshot["members"] = {};
    for (const [key, { member }] of this.checked) {
      const state = this.health.status(key)?.state;
      if (state === "ONLINE" || state === "OFFLINE") members[key] = { endpoint: member.key, state };
    }
    try {
      await this.store.saveHealth({ version: 1, members });
    } catch (err) {
      this.logger.warn({ ev: "health_save_failed", err: (err as Error).message }, `cannot write ${this.store.healthFile}; a restart will check members from scratch`);
    }
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Apply a member change to its pool alone: the rest of the running state is untouched. */
  private applyPoolChange(next: Config, lbIndex: number, poolIndex: number): void {
    const lbCfg = next.loadbalancers[lbIndex]!;
    const poolCfg = lbCfg.pools[poolIndex]!;
    const lb = this.lbs.get(lbCfg.id)!;
    const pool = lb.pools.get(poolCfg.id)!;
    const now = this.clock.now();
    const vpc = vpcView(next, lbCfg.vpc_id);
    lb.config = lbCfg;
    pool.setConfig(poolCfg);
    this.reconcileMembers(pool, poolCfg, pool.members.size > 0, now, (a) => isCrossVpc(vpc, a));
    pool.refresh(now);
    this.config = next;
  }

  private locatePool(poolId: string): { lbIndex: number; poolIndex: number } {
    for (const [lbIndex, lb] of this.config.loadbalancers.entries()) {
      const poolIndex = lb.pools.findIndex((p) => p.id === poolId);
      if (poolIndex >= 0) return { lbIndex, poolIndex };
    }
    throw new NotFoundError("pool", poolId);
  }

  private tick(): void {
    const now = this.clock.now();
    for (const lb of this.lbs.values()) {
      for (const p of lb.pools.values()) {
        if (p.ramping) p.refresh(now);
        p.forgetIdleLeavers();
        p.persistence?.expire(now);
      }
      for (const l of lb.listeners.values()) l.sweep(now);
    }
    for (const l of this.retired) {
      l.sweep(now);
      if (l.stats.active === 0) this.retired.delete(l);
    }
  }

  /**
   * Make the running state match `next`. New listeners are bound first; if any cannot be
   * bound, the ones just bound are closed and nothing else changes.
   */
  private async apply(next: Config, initial: boolean): Promise<void> {
    if (this.closed) throw new Lb4Error("LB4.CLOSED", "the load balancer is closed");
    const now = this.clock.now();
    const pending: Array<{ lbId: string; listener: Listener }> = [];
    const newPools = new Map<string, PoolRuntime>();
    const poolFor = (lbId: string, cfg: PoolConfig): PoolRuntime => {
      const existing = this.lbs.get(lbId)?.pools.get(cfg.id);
      if (existing) return existing;
      let p = newPools.get(cfg.id);
      if (!p) newPools.set(cfg.id, (p = new PoolRuntime(lbId, cfg, () => this.clock.now())));
      return p;
    };

    for (const lb of next.loadbalancers) {
      const cur = this.lbs.get(lb.id);
      for (const ls of lb.listeners) {
        const running = cur?.listeners.get(ls.id);
        if (running && cur!.config.vip_address === lb.vip_address && running.config.protocol_port === ls.protocol_port && running.config.protocol === ls.protocol) continue;
        const poolCfg = lb.pools.find((p) => p.id === ls.default_pool_id)!;
        pending.push({ lbId: lb.id, listener: this.createListener(lb, ls, poolFor(lb.id, poolCfg)) });
      }
    }

    // Cross-VPC source addresses: allocated from the backend subnets; used when on this host.
    const snatByLb = new Map<string, { allocated: string[]; usable: string[] }>();
    for (const lb of next.loadbalancers) {
      const allocated = lb.ip_target_enable ? allocateSnatAddresses(lb, vpcView(next, lb.vpc_id)) : [];
      snatByLb.set(lb.id, { allocated, usable: await usableLocalAddresses(allocated) });
    }

    const bound: Listener[] = [];
    try {
      for (const { listener } of pending) {
        await listener.listen();
        bound.push(listener);
      }
    } catch (err) {
      await Promise.all(bound.map((l) => l.stopAccepting()));
      const e = err as NodeJS.ErrnoException;
      const failed = pending[bound.length]!;
      const vip = next.loadbalancers.find((l) => l.id === failed.lbId)!.vip_address;
      throw new Lb4Error(
        "LB4.LISTEN_FAILED",
        `cannot listen on ${failed.listener.config.protocol} ${memberKey(vip, failed.listener.config.protocol_port)} for listener "${failed.listener.config.id}" (${e.code ?? e.message}); ` +
          "free the port or pick another protocol_port" + (initial ? "" : "; the running configuration is unchanged"),
      );
    }

    // Commit: from here on nothing fails.
    const nextLbIds = new Set(next.loadbalancers.map((l) => l.id));
    for (const [id, lb] of this.lbs) {
      if (!nextLbIds.has(id)) {
        for (const l of lb.listeners.values()) this.retire(l);
        for (const p of lb.pools.values()) for (const m of [...p.members.keys()]) this.removeFromPool(p, m, now);
        this.lbs.delete(id);
      }
    }
    for (const lbCfg of next.loadbalancers) {
      let lb = this.lbs.get(lbCfg.id);
      if (!lb) this.lbs.set(lbCfg.id, (lb = { config: lbCfg, pools: new Map(), listeners: new Map(), snat: { allocated: [], usable: [], next: 0 } }));
      lb.config = lbCfg;
      const vpc = vpcView(next, lbCfg.vpc_id);
      const snat = snatByLb.get(lbCfg.id)!;
      if (snat.allocated.join() !== lb.snat.allocated.join() || snat.usable.join() !== lb.snat.usable.join()) {
        lb.snat = { ...snat, next: 0 };
        if (lbCfg.ip_target_enable) {
          this.logger.info(
            { ev: "crossvpc", lb: lbCfg.id, backend_subnet_cidrs: backendSubnets(lbCfg, vpc).map((s) => s.subnet.cidr.text), source_addresses: snat.allocated, on_host: snat.usable },
            "cross-VPC backends enabled: allow the backend subnet CIDRs in the members' security groups",
          );
        }
      }

      // Pools and members.
      const keepPools = new Set(lbCfg.pools.map((p) => p.id));
      for (const [id, p] of lb.pools) {
        if (!keepPools.has(id)) {
          for (const m of [...p.members.keys()]) this.removeFromPool(p, m, now);
          lb.pools.delete(id);
        }
      }
      for (const poolCfg of lbCfg.pools) {
        const pool = poolFor(lbCfg.id, poolCfg);
        // Slow start applies to members added to a pool that already had one, after start-up.
        const wasPopulated = !initial && lb.pools.has(poolCfg.id) && pool.members.size > 0;
        pool.setConfig(poolCfg);
        lb.pools.set(poolCfg.id, pool);
        this.reconcileMembers(pool, poolCfg, wasPopulated, now, (a) => isCrossVpc(vpc, a));
        pool.refresh(now);
      }

      // Listeners.
      const keepListeners = new Set(lbCfg.listeners.map((l) => l.id));
      for (const [id, l] of lb.listeners) {
        const replaced = pending.some((p) => p.listener.config.id === id);
        if (!keepListeners.has(id) || replaced) {
          this.retire(l);
          lb.listeners.delete(id);
        }
      }
      for (const { lbId, listener } of pending) if (lbId === lbCfg.id) lb.listeners.set(listener.config.id, listener);
      for (const lsCfg of lbCfg.listeners) {
        const l = lb.listeners.get(lsCfg.id)!;
        l.config = lsCfg;
        l.pool = lb.pools.get(lsCfg.default_pool_id)!;
        l.acl = compileAccessList(lsCfg.ipgroup);
        l.accessLog = this.logger.isLevelEnabled("info");
      }
    }
    this.config = next;
  }

  private createListener(lb: LoadBalancerConfig, ls: ListenerConfig, pool: PoolRuntime): Listener {
    const shared = {
      lbId: lb.id,
      vip: lb.vip_address,
      logger: this.logger,
      refusalLog: this.refusalLog,
      clock: () => this.clock.now(),
    };
    const acl = compileAccessList(ls.ipgroup);
    if (ls.protocol === "UDP") {
      return new UdpListener(ls, pool, acl, {
        ...shared,
        onFlowEnd: (client, member) => pool.touch(client.ip, member),
        headerFor: (client, member) => {
          const l = this.listenerByConfig(lb.id, ls.id);
          const mode = headerMode(l?.pool ?? pool, member);
          return mode === "proxy_v2"
            ? encodeHeader(mode, { source: { address: client.ip, port: client.port }, destination: { address: lb.vip_address, port: ls.protocol_port }, transport: "UDP" })
            : undefined;
        },
      });
    }
    return new TcpListener(ls, pool, acl, {
      ...shared,
      accessLog: this.accessLog,
      tuning: this.tuning,
      onSessionEnd: (sess) => {
        if (sess.member) sess.listener.pool.touch(sess.ip, sess.member);
      },
      headerFor: (sess, member) => {
        const mode = headerMode(sess.listener.pool, member);
        if (!mode) return undefined;
        const c = sess.client;
        return encodeHeader(mode, {
          source: { address: sess.ip, port: sess.port },
          destination: { address: c.localAddress ?? lb.vip_address, port: c.localPort ?? sess.listener.config.protocol_port },
          transport: "TCP",
        });
      },
      localAddressFor: (member) => {
        if (!member.crossVpc) return undefined;
        const snat = this.lbs.get(lb.id)?.snat;
        if (!snat || snat.usable.length === 0) return undefined;
        return snat.usable[snat.next++ % snat.usable.length];
      },
    });
  }

  private listenerByConfig(lbId: string, listenerId: string): Listener | undefined {
    return this.lbs.get(lbId)?.listeners.get(listenerId);
  }

  private reconcileMembers(pool: PoolRuntime, cfg: PoolConfig, wasPopulated: boolean, now: number, crossVpc: (a: string) => boolean): void {
    const wanted = new Map(cfg.members.map((m) => [m.id, m]));
    for (const [id, m] of pool.members) {
      const w = wanted.get(id);
      if (!w || w.address !== m.config.address || w.protocol_port !== m.config.protocol_port) this.removeFromPool(pool, id, now);
    }
    const hm = cfg.healthmonitor;
    const monitored = hm !== null && hm.admin_state_up;
    const monitorChanged = pool.syncedMonitor !== hm;
    pool.syncedMonitor = hm;
    for (const mc of cfg.members) {
      const existing = pool.members.get(mc.id);
      if (existing && existing.config === mc && !monitorChanged) continue; // untouched: nothing to sync
      if (existing) {
        existing.config = mc;
        existing.crossVpc = crossVpc(mc.address);
        this.syncHealth(pool, existing, monitored);
        continue;
      }
      const m = new MemberRuntime(mc, monitored);
      m.crossVpc = crossVpc(mc.address);
      m.ramp = rampForNewMember({ slowStart: cfg.slow_start, poolHadMembers: wasPopulated, startup: false, monitored, now });
      pool.members.set(mc.id, m);
      this.syncHealth(pool, m, monitored);
    }
  }

  private healthKey(pool: PoolRuntime, m: MemberRuntime): string {
    return `${pool.id}/${m.id}`;
  }

  /** Start, update or stop checking a member so it matches its pool's monitor. */
  private syncHealth(pool: PoolRuntime, m: MemberRuntime, monitored: boolean): void {
    const key = this.healthKey(pool, m);
    const hm = pool.config.healthmonitor;
    if (!monitored || !hm) {
      if (this.health.remove(key)) this.checked.delete(key);
      m.status = "NO_MONITOR";
      return;
    }
    const mode = headerMode(pool, m);
    const snat = m.crossVpc ? this.lbs.get(pool.lbId)?.snat.usable[0] : undefined;
    const target = {
      address: m.config.address,
      port: m.config.protocol_port,
      // Checks that send a header use its LOCAL form (SPEC §7); toa has none, so checks send nothing.
      ...(mode === "proxy_v1" || mode === "proxy_v2" ? { prefix: encodeHeader(mode, { command: "LOCAL" }) } : {}),
      ...(snat ? { localAddress: snat } : {}),
    };
    if (this.health.has(key)) {
      this.health.update(key, hm, target);
    } else {
      // A member known before a restart keeps its last health until its first check (SPEC §4);
      // a new one is offline until its first check passes.
      const saved = this.restoredHealth[key];
      const restored = saved && saved.endpoint === m.key ? saved.state : undefined;
      m.status = restored ?? "OFFLINE";
      this.checked.set(key, { pool, member: m });
      this.health.add(key, target, hm, restored ? { restored } : {});
    }
  }

  private removeFromPool(pool: PoolRuntime, id: string, now: number): void {
    const m = pool.remove(id, now);
    if (!m) return;
    const key = this.healthKey(pool, m);
    if (this.health.remove(key)) this.scheduleHealthSave();
    this.checked.delete(key);
  }
}

/** The header a member gets (SPEC §7): `auto` = toa for cross-VPC members, nothing otherwise. */
export function headerMode(pool: PoolRuntime, member: MemberRuntime): "toa" | "proxy_v1" | "proxy_v2" | undefined {
  const mode = pool.config.client_ip;
  if (mode === "off") return undefined;
  if (mode === "auto") return member.crossVpc ? "toa" : undefined;
  return mode;
}

export interface LoadBalancerHandle {
  readonly engine: Engine;
  /** The running, validated configuration. */
  readonly config: Config;
  addMember(poolId: string, member: MemberInput): Promise<MemberConfig>;
  updateMember(poolId: string, memberId: string, patch: MemberPatch): Promise<MemberConfig>;
  removeMember(poolId: string, memberId: string): Promise<MemberConfig>;
  reload(config: Config | ConfigInput): Promise<void>;
  /** Open connections/flows right now. */
  activeConnections(): number;
  close(opts?: { graceMs?: number }): Promise<void>;
}

/** Start the engine from a config object (the same shape as the config file). */
export async function startLoadBalancer(config: Config | ConfigInput, opts: EngineOptions = {}): Promise<LoadBalancerHandle> {
  const engine = new Engine(opts);
  await engine.start(config);
  return {
    engine,
    get config() {
      return engine.config;
    },
    addMember: (p, m) => engine.addMember(p, m),
    updateMember: (p, id, patch) => engine.updateMember(p, id, patch),
    removeMember: (p, id) => engine.removeMember(p, id),
    reload: (c) => engine.reload(c),
    activeConnections: () => engine.activeConnections,
    close: (o) => engine.close(o),
  };
}
