/**
 * The etcd membership source (SPEC §11): load balancers come from the store, changes are
 * compare-and-swap writes of one load balancer's key, and every instance applies what it
 * watches. The engine sees the same MembershipSource as with a file: the gate, the diff and
 * the snapshot path are the ones a reload uses.
 *
 * Static stability: what was last applied is kept in `state_dir/cluster.json`; with etcd
 * gone an instance keeps serving it (and starts from it), refuses writes with 503
 * LB4.STORE_UNAVAILABLE, and resumes the watch from the last revision on reconnect (a
 * compacted revision means reading everything again, never a silent gap).
 */
import path from "node:path";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { ClusterConfig, Config, LoadBalancerConfig, MemberConfig } from "../config/schema.js";
import { ConflictError, NotFoundError, STORE_UNAVAILABLE, StoreError } from "../errors.js";
import { CLUSTER_SNAPSHOT_FILE, writeAtomic, type RuntimeState } from "../state/store.js";
import type { EtcdClient, KeyValue, TxnOp, WatchEvent, WatchHandle } from "../store/etcd.js";
import type { MembershipSource } from "../control/membership.js";
import { classify, crossVpcKey, lbKey, seededKey, viewLoadBalancers, type StoreView } from "./layout.js";

/** The snapshot is written at most this often. */
const SNAPSHOT_SAVE_MS = 1000;

/** A member change lost a compare-and-swap: read again and re-validate (the engine retries). */
export class StoreConflict extends ConflictError {
  constructor(lbId: string) {
    super("LB4.STORE_CONFLICT", `load balancer "${lbId}" was changed by another instance meanwhile; retry the change`);
  }
}

/** The view as the engine took it to run: load balancers by id with their revisions. */
export interface Captured {
  readonly lbs: ReadonlyMap<string, { config: LoadBalancerConfig; modRevision: number }>;
  readonly contentRevision: number;
  /** Which change of the view this is (see EtcdMembership.pending). */
  readonly seq: number;
}

export interface EtcdMembershipOptions {
  cluster: ClusterConfig & { prefix: string };
  client: EtcdClient;
  /** state_dir for the snapshot; undefined = no snapshot (embedding without persistState). */
  stateDir: string | undefined;
  logger: Logger;
  /** The view changed (watch, catch-up, reconnect): the engine applies it. */
  onChange: () => void;
}

interface SnapshotFile {
  version: 1;
  revision: number;
  content_revision?: number;
  prefix: string;
  loadbalancers: Array<{ config: LoadBalancerConfig; modRevision: number }>;
  cross_vpc_enabled: string[];
}

export class EtcdMembership implements MembershipSource {
  private view: StoreView | undefined;
  private watchHandle: WatchHandle | undefined;
  private up = false;
  private closed = false;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private warnedFileLbs: string | undefined;
  /** Changes of the view (a full read, a watch batch that touched what lb4 runs), and the last one the engine ran or refused. */
  private seq = 0;
  private handled = 0;
  /** The file to seed an empty store with (kept for a start while etcd was down). */
  private seedWith: Config | undefined;
  /**
   * The load balancers as the engine runs them: a member change is built on these and
   * compared against their revisions, so a change the watch brought in but the engine has
   * not run yet makes the write fail (and retry) instead of being overwritten.
   */
  private applied = new Map<string, { config: LoadBalancerConfig; modRevision: number }>();
  /** The store was read at least once (an empty store is then empty on purpose, never seeded again). */
  private everRead = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Watch events that arrived while a full read was in flight (replayed onto its result). */
  private reading: WatchEvent[] | undefined;
  /** How the instance started: from the store, or from the snapshot with etcd down. */
  startedFrom: "store" | "snapshot" | "file" = "store";

  constructor(private readonly opts: EtcdMembershipOptions) {}

  get where(): string {
    return `etcd ${this.opts.cluster.etcd.join(",")} under ${this.opts.cluster.prefix}`;
  }

  /** Whether the store answers (the watch is established). */
  get storeUp(): boolean {
    return this.up;
  }

  /** The store revision the view is complete up to (0 before the first read): where a watch resumes. */
  get revision(): number {
    return this.view?.revision ?? 0;
  }

  /**
   * The revision of the last change to what lb4 runs (a load balancer or a fact): what an
   * instance reports as applied. Instance records live under the prefix too; their writes
   * move `revision` every few seconds but not this.
   */
  get contentRevision(): number {
    return this.view?.contentRevision ?? 0;
  }

  private get snapshotFile(): string | undefined {
    return this.opts.stateDir ? path.join(this.opts.stateDir, CLUSTER_SNAPSHOT_FILE) : undefined;
  }

  /**
   * Read the store (writing `base`'s load balancers when the prefix is empty: the first
   * instance), then watch it. With etcd unreachable: the snapshot, else the file.
   */
  async load(base?: Config): Promise<void> {
    this.seedWith = base;
    try {
      await this.readAll();
      if (this.view!.lbs.size === 0 && base) await this.seed(base);
      this.up = true;
      this.startedFrom = "store";
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      const snap = await this.readSnapshot();
      if (snap) {
        this.view = snap;
        this.startedFrom = "snapshot";
        this.opts.logger.warn(
          { ev: "store_unavailable", err: err.message, revision: snap.revision, snapshot: this.snapshotFile },
          `etcd is unreachable (${err.message}); serving the last applied state (revision ${snap.revision}) from ${this.snapshotFile} until it answers`,
        );
      } else {
        this.startedFrom = "file";
        this.opts.logger.warn({ ev: "store_unavailable", err: err.message }, `etcd is unreachable (${err.message}) and there is no snapshot yet; serving the config file's load balancers until it answers`);
        // Nothing to resume from: read everything once etcd answers, then watch from there (a watch from revision 1 would replay history).
        this.retryResync();
        return;
      }
    }
    this.watchFrom(this.view!.revision + 1);
  }

  /** The first instance on an empty prefix writes its file's load balancers (create-only: a racing instance wins or loses whole). */
  private async seed(base: Config): Promise<void> {
    const c = this.opts.cluster;
    const ops: TxnOp[] = base.loadbalancers.map((lb) => ({ type: "put", key: lbKey(c, lb.id), value: JSON.stringify(lb) }));
    for (const lb of base.loadbalancers) if (lb.ip_target_enable) ops.push({ type: "put", key: crossVpcKey(c, lb.id), value: "1" });
    if (ops.length === 0) return;
    // One seed per prefix: the marker key is created once, so two first instances cannot merge their files.
    ops.push({ type: "put", key: seededKey(c), value: JSON.stringify({ at: new Date().toISOString() }) });
    const r = await this.opts.client.txn({ compare: [{ key: seededKey(c), createRevision: 0 }], success: ops });
    this.opts.logger.info(
      { ev: "store_seeded", revision: r.revision, loadbalancers: base.loadbalancers.map((l) => l.id), won: r.succeeded },
      r.succeeded ? `the store was empty: wrote this file's ${base.loadbalancers.length} load balancer(s) to it` : "another instance wrote the store first; using what it wrote",
    );
    await this.readAll();
  }

  /** Read everything under the prefix into a fresh view. */
  private async readAll(): Promise<void> {
    this.reading = [];
    try {
      const r = await this.opts.client.range(this.opts.cluster.prefix);
      const view: StoreView = { revision: r.revision, contentRevision: 0, lbs: new Map(), crossVpcEnabled: new Set() };
      for (const kv of r.kvs) this.take(view, kv, false);
      // What the watch delivered meanwhile and the read did not see yet.
      for (const e of this.reading) {
        if (e.modRevision > r.revision) this.take(view, e, e.type === "delete");
        view.revision = Math.max(view.revision, e.modRevision);
      }
      this.view = view;
      this.everRead = true;
      this.seq++;
    } finally {
      this.reading = undefined;
    }
  }

  /** One key into the view; true when it changed what lb4 runs. */
  /** Put a key's change into `view`; true (and the view's content revision moves to it) when it changed what lb4 runs. */
  private take(view: StoreView, kv: Pick<KeyValue, "key" | "value" | "modRevision">, isDelete: boolean): boolean {
    if (!this.changes(view, kv.key, kv, isDelete)) return false;
    view.contentRevision = Math.max(view.contentRevision, kv.modRevision);
    return true;
  }

  private changes(view: StoreView, key: string, kv: Pick<KeyValue, "value" | "modRevision">, isDelete: boolean): boolean {
    const k = classify(this.opts.cluster, key);
    if (!k) return false;
    if (k.kind === "lb") {
      const had = view.lbs.get(k.id);
      if (isDelete) return view.lbs.delete(k.id);
      if (had && had.modRevision >= kv.modRevision) return false; // already applied (our own write)
      try {
        view.lbs.set(k.id, { config: JSON.parse(kv.value) as LoadBalancerConfig, modRevision: kv.modRevision });
        return true;
      } catch (err) {
        this.opts.logger.error({ ev: "store_bad_value", key, err: (err as Error).message }, `etcd key ${key} is not JSON; ignored (lb4 cluster push writes it again)`);
        return false;
      }
    }
    if (k.kind === "cross_vpc") {
      if (isDelete) return false; // a fact once true stays true (SPEC §6 rule 6)
      if (view.crossVpcEnabled.has(k.id)) return false;
      view.crossVpcEnabled.add(k.id);
      return true;
    }
    return false;
  }

  private watchFrom(startRevision: number): void {
    if (this.closed) return;
    this.watchHandle?.close();
    this.watchHandle = this.opts.client.watch(this.opts.cluster.prefix, {
      startRevision,
      onReady: () => {
        if (!this.up) this.opts.logger.info({ ev: "store_up", revision: this.revision }, "etcd answers again; catching up from the last applied revision");
        this.up = true;
      },
      onEvents: (events, revision) => this.onEvents(events, revision),
      onCompacted: (compact) => {
        this.opts.logger.warn({ ev: "store_compacted", revision: this.revision, compact_revision: compact }, "the store compacted past the last applied revision; reading everything again");
        void this.resync();
      },
      onError: (err) => {
        if (this.up) this.opts.logger.warn({ ev: "store_unavailable", err: err.message }, `etcd watch failed (${err.message}); serving what was last applied, writes are refused until it answers`);
        this.up = false;
      },
    });
  }

  private onEvents(events: WatchEvent[], revision: number): void {
    if (!this.view) this.view = { revision: 0, contentRevision: 0, lbs: new Map(), crossVpcEnabled: new Set() };
    this.reading?.push(...events);
    let changed = false;
    for (const e of events) {
      if (this.take(this.view, e, e.type === "delete")) changed = true;
    }
    this.view.revision = Math.max(this.view.revision, revision);
    this.up = true;
    if (!changed) return; // an instance record, or our own write coming back
    this.seq++;
    this.scheduleSave();
    this.opts.onChange();
  }

  /** Changes in the view the engine has neither run nor refused yet. */
  get pending(): boolean {
    return this.seq !== this.handled;
  }

  /** The view now, for the engine to run; `ran()` once it runs it, `refused()` if it cannot. */
  capture(): Captured {
    return { lbs: new Map(this.view?.lbs ?? []), contentRevision: this.contentRevision, seq: this.seq };
  }

  /** The engine runs `c` now: member changes are built on it. */
  ran(c: Captured): void {
    this.applied = new Map(c.lbs);
    this.handled = c.seq;
    this.scheduleSave();
  }

  /** The engine could not run its own committed write (its commit failed): run the view again. */
  invalidate(): void {
    this.seq++;
  }

  /** The engine cannot run `c` (it does not validate here): wait for the next change. */
  refused(c: Captured): void {
    this.handled = c.seq;
  }

  /** Read everything again (compaction, a start without the store) and watch from there. */
  private async resync(): Promise<void> {
    if (this.closed) return;
    try {
      const firstRead = !this.everRead;
      await this.readAll();
      if (this.view!.lbs.size === 0 && this.seedWith && firstRead && this.startedFrom === "file") await this.seed(this.seedWith);
      this.up = true;
      this.scheduleSave();
      this.opts.onChange();
      this.watchFrom(this.view!.revision + 1);
    } catch (err) {
      this.up = false;
      this.opts.logger.debug({ ev: "store_unavailable", err: (err as Error).message }, "reading etcd failed; retrying");
      this.retryResync();
    }
  }

  private retryResync(): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => void this.resync(), 1000);
    this.retryTimer.unref();
  }

  /** Read the store again now (after a lost compare-and-swap), so the next try validates against it. */
  async catchUp(): Promise<void> {
    await this.readAll();
    this.scheduleSave();
  }

  facts(): RuntimeState {
    return { version: 1, cross_vpc_enabled: [...(this.view?.crossVpcEnabled ?? [])], members: {} };
  }

  membership(base: Config, lbs: ReadonlyMap<string, { config: LoadBalancerConfig }> | undefined = this.view?.lbs): Config {
    if (!this.view || !lbs) return base;
    const stored = viewLoadBalancers({ lbs });
    const fileLbs = JSON.stringify([...base.loadbalancers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    if (base.loadbalancers.length > 0 && this.warnedFileLbs !== fileLbs && fileLbs !== JSON.stringify(stored)) {
      this.warnedFileLbs = fileLbs;
      this.opts.logger.warn({ ev: "file_loadbalancers_ignored" }, "the config file's loadbalancers are ignored: etcd holds them (change them through the admin API, or lb4 cluster push --config FILE)");
    }
    return { ...base, loadbalancers: stored };
  }

  /** Start and reload: the load balancers are the store's already; nothing to write. */
  acceptConfig(): Promise<() => Promise<void>> {
    return Promise.resolve(() => Promise.resolve());
  }

  /** One pool's member change, as a compare-and-swap on its load balancer's key; acknowledged once etcd committed it. */
  async acceptChange(poolId: string, _before: readonly MemberConfig[], after: readonly MemberConfig[]): Promise<void> {
    const view = this.view;
    if (!view) throw new StoreError(STORE_UNAVAILABLE, "etcd has not answered since this instance started; retry once it is reachable");
    let entry: { id: string; config: LoadBalancerConfig; modRevision: number } | undefined;
    for (const [id, e] of this.applied) if (e.config.pools.some((p) => p.id === poolId)) entry = { id, ...e };
    if (!entry) throw new NotFoundError("pool", poolId);
    const next: LoadBalancerConfig = { ...entry.config, pools: entry.config.pools.map((p) => (p.id === poolId ? { ...p, members: [...after] } : p)) };
    const key = lbKey(this.opts.cluster, entry.id);
    const value = JSON.stringify(next);
    let revision: number;
    try {
      const r = await this.opts.client.txn({ compare: [{ key, modRevision: entry.modRevision }], success: [{ type: "put", key, value }] });
      if (!r.succeeded) throw new StoreConflict(entry.id);
      revision = r.revision;
    } catch (err) {
      if (!(err instanceof StoreError) || !err.indeterminate) throw err;
      // The write may have landed: the key says whether it did.
      const now = await this.opts.client.get(key).catch(() => undefined);
      const kv = now?.kvs[0];
      if (!kv || kv.value !== value) throw new StoreError(STORE_UNAVAILABLE, `etcd did not confirm the change (${err.message}); retry it`);
      revision = kv.modRevision;
    }
    const written = { config: next, modRevision: revision };
    this.applied.set(entry.id, written);
    if ((view.lbs.get(entry.id)?.modRevision ?? 0) < revision) view.lbs.set(entry.id, written);
    view.contentRevision = Math.max(view.contentRevision, revision);
    this.scheduleSave();
  }

  private scheduleSave(): void {
    if (!this.snapshotFile || this.saveTimer !== undefined || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saving = this.saveSnapshot();
    }, SNAPSHOT_SAVE_MS);
    this.saveTimer.unref();
  }

  private async saveSnapshot(): Promise<void> {
    const file = this.snapshotFile;
    const v = this.view;
    if (!file || !v || this.applied.size === 0) return;
    const snap: SnapshotFile = {
      version: 1,
      revision: v.revision,
      content_revision: v.contentRevision,
      prefix: this.opts.cluster.prefix,
      // What the engine runs, not the watched view: a revision this instance refused is not kept.
      loadbalancers: [...this.applied.values()],
      cross_vpc_enabled: [...v.crossVpcEnabled],
    };
    try {
      await writeAtomic(file, JSON.stringify(snap), false);
    } catch (err) {
      this.opts.logger.warn({ ev: "snapshot_save_failed", err: (err as Error).message }, `cannot write ${file}; a restart with etcd down would start from the config file`);
    }
  }

  private async readSnapshot(): Promise<StoreView | undefined> {
    const file = this.snapshotFile;
    if (!file) return undefined;
    try {
      const s = JSON.parse(await readFile(file, "utf8")) as SnapshotFile;
      if (s.version !== 1 || s.prefix !== this.opts.cluster.prefix || !Array.isArray(s.loadbalancers)) return undefined;
      return {
        revision: s.revision,
        contentRevision: s.content_revision ?? s.revision,
        lbs: new Map(s.loadbalancers.map((e) => [e.config.id, e])),
        crossVpcEnabled: new Set(s.cross_vpc_enabled),
      };
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watchHandle?.close();
    if (this.saveTimer !== undefined) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      await this.saveSnapshot();
    }
    await this.saving;
  }
}
