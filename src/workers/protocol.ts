/**
 * The messages between the primary and its workers (SPEC §10), over node:cluster's IPC
 * channel. Snapshots go out, counters come back; a worker asks the primary only for what
 * must hold across workers (connection_limit, persistence), per connection of such listeners.
 */
import { ListenerStats } from "../dataplane/stats.js";
import type { DataplanePath } from "../platform/dataplane-path.js";
import type { WireSnapshot } from "./snapshot-wire.js";

/** What a worker is started with (environment variable LB4_WORKER, JSON). */
export interface WorkerInit {
  level: string;
  tuning: { connectTimeoutMs: number; tickMs: number };
  /** How often a worker reports its counters unasked, ms. */
  reportMs: number;
}

export const WORKER_ENV = "LB4_WORKER";

/** ListenerStats fields in a fixed order: a report carries their values as an array. */
export const STAT_FIELDS = Object.keys(new ListenerStats()) as Array<keyof ListenerStats>;

/** A worker's counters: per listener (stats in STAT_FIELDS order, live bytes), per member (open, started). */
export interface Report {
  active: number;
  listeners: Array<[id: string, stats: number[], bytesIn: number, bytesOut: number]>;
  members: Array<[poolId: string, memberId: string, active: number, total: number]>;
}

export type ToWorker =
  | { t: "snap"; wire: WireSnapshot }
  | { t: "claimed"; id: number; m?: string }
  /** Slots of a listener's limit granted (n may be 0: none free in the instance); hold at most `keep` idle. */
  | { t: "leased"; l: string; n: number; keep: number }
  /** Give back the idle slots of a listener (another worker needs them). */
  | { t: "reclaim"; l: string }
  | { t: "report"; id: number }
  | { t: "stop" }
  | { t: "destroy" }
  | { t: "close" };

export type FromWorker =
  | { t: "ready"; dataplane: { path: DataplanePath; note?: string | undefined } }
  | { t: "applied"; version: number; error?: { code: string; message: string } }
  /** Which member the persistence table holds for `ip` in pool `p`. */
  | { t: "claim"; id: number; p: string; ip: string }
  /** `want` more slots of listener `l`'s limit (this many connections wait). */
  | { t: "lease"; l: string; want: number }
  /** `n` slots of listener `l` back (idle ones, or all idle on a reclaim). */
  | { t: "returned"; l: string; n: number }
  /** A limit was just set on `l`: its `n` connections open here now hold slots (booked even over the limit). */
  | { t: "holding"; l: string; n: number }
  | { t: "stick"; p: string; ip: string; m: string }
  | { t: "touch"; p: string; ip: string; m: string }
  | { t: "counters"; id?: number; r: Report };
