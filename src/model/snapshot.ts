/**
 * The snapshot: everything the data plane needs to serve, decided by the control plane.
 * Immutable and serialisable (plain objects, no functions, no Maps): it survives
 * structuredClone or JSON, which is what a worker process receives. The control plane
 * shares unchanged parts between successive snapshots, so plan() can compare by identity
 * first and a change costs what it touches.
 */
import type { ListenerConfig, MemberConfig, PoolConfig } from "../config/schema.js";
import type { OperatingStatus } from "../health/types.js";

export interface Snapshot {
  /** Increases with every publish. */
  readonly version: number;
  readonly lbs: readonly LbSpec[];
}

export interface LbSpec {
  readonly id: string;
  /** Listeners bind here. */
  readonly vip: string;
  /** Cross-VPC source addresses (SPEC §6 rule 5) present on this host, used as local addresses; [] when off or none. */
  readonly snat: readonly string[];
  /** Listener settings as configured: address, port, access list, limit, idle timeout. */
  readonly listeners: readonly ListenerConfig[];
  readonly pools: readonly PoolSpec[];
}

/** Pool settings as configured (algorithm, persistence, drain, fail-open, header mode), members apart. */
export type PoolSettings = Omit<PoolConfig, "members">;

export interface PoolSpec {
  readonly settings: PoolSettings;
  readonly members: readonly MemberSpec[];
}

/** A slow-start ramp (SPEC §4): `startedAt` on the shared clock (see clock.ts), null until the first ONLINE. */
export interface RampSpec {
  readonly durationMs: number;
  readonly startedAt: number | null;
}

export interface MemberSpec {
  readonly config: MemberConfig;
  /** What health checks decided (ONLINE | OFFLINE; OFFLINE until a first pass), NO_MONITOR without a monitor. */
  readonly status: OperatingStatus;
  /** Cross-VPC member (SPEC §6): toa under client_ip auto, connections from the SNAT addresses. */
  readonly crossVpc: boolean;
  readonly ramp: RampSpec | null;
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({ version: 0, lbs: Object.freeze([]) as readonly LbSpec[] });

/** The header a member gets (SPEC §7): `auto` = toa for cross-VPC members, nothing otherwise. */
export function headerModeOf(clientIp: PoolSettings["client_ip"], crossVpc: boolean): "toa" | "proxy_v1" | "proxy_v2" | undefined {
  if (clientIp === "off") return undefined;
  if (clientIp === "auto") return crossVpc ? "toa" : undefined;
  return clientIp;
}
