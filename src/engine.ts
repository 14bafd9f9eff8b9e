/**
 * The public entry: `startLoadBalancer(config)` runs the control plane (src/control/) over a
 * data plane (src/dataplane/) in this process and returns a handle to change members and close.
 */
import type { Config, ConfigInput, MemberConfig, MemberInput } from "./config/schema.js";
import type { ReloadChanges } from "./control/changes.js";
import { Engine, type EngineOptions, type MemberPatch } from "./control/control-plane.js";
import { workerCount, type WorkersSetting } from "./workers/count.js";
import { ClusterDataPlane } from "./workers/primary.js";

export { Engine, DEFAULT_TUNING } from "./control/control-plane.js";
export type { EngineOptions, MemberPatch, Tuning } from "./control/control-plane.js";
export type { ReloadChanges } from "./control/changes.js";
export { headerMode } from "./dataplane/dataplane.js";

export interface LoadBalancerHandle {
  readonly engine: Engine;
  /** The running, validated configuration. */
  readonly config: Config;
  addMember(poolId: string, member: MemberInput): Promise<MemberConfig>;
  updateMember(poolId: string, memberId: string, patch: MemberPatch): Promise<MemberConfig>;
  removeMember(poolId: string, memberId: string): Promise<MemberConfig>;
  /** Apply a new config as a diff; resolves with what changed. */
  reload(config: Config | ConfigInput): Promise<ReloadChanges>;
  /** Open connections/flows right now. */
  activeConnections(): number;
  close(opts?: { graceMs?: number }): Promise<void>;
}

export interface StartOptions extends EngineOptions {
  /**
   * Worker processes for TCP (SPEC §10): "auto" = one per core, N >= 2 = a primary (this
   * process: control plane, UDP) and N workers. Absent or 1: everything in this process.
   * The config's own `workers` field is what `lb4 start` reads; embedding asks here.
   */
  workers?: WorkersSetting;
}

/** Start the engine from a config object (the same shape as the config file). */
export async function startLoadBalancer(config: Config | ConfigInput, opts: StartOptions = {}): Promise<LoadBalancerHandle> {
  const { workers, ...engineOpts } = opts;
  const n = workers === undefined ? 1 : workerCount(workers);
  const engine = new Engine(n >= 2 && !engineOpts.dataPlane ? { ...engineOpts, dataPlane: (o) => new ClusterDataPlane({ ...o, workers: n }) } : engineOpts);
  try {
    await engine.start(config);
  } catch (err) {
    await engine.close({ graceMs: 0 });
    throw err;
  }
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
