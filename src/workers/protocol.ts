/**
 * The messages between the primary and its workers (SPEC §10), over node:cluster's IPC
 * channel. Snapshots go out, counters come back; a worker asks the primary only for what
 * must hold across workers (connection_limit, persistence), per connection of such listeners.
 */
import { ListenerStats } from "../dataplane/stats.js";
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
  pid: number;
  active: number;
  listeners: Array<[id: string, stats: number[], bytesIn: number, bytesOut: number]>;
  members: Array<[poolId: string, memberId: string, active: number, total: number]>;
}

export type ToWorker =
  | { t: "snap"; wire: WireSnapshot }
  | { t: "claimed"; id: number; ok: boolean; m?: string }
  | { t: "report"; id: number }
  | { t: "stop" }
  | { t: "destroy" }
  | { t: "close" };

export type FromWorker =
  | { t: "ready"; dataplane: string }
  | { t: "applied"; version: number; error?: { code: string; message: string } }
  | { t: "claim"; id: number; l: string; p: string; ip: string }
  | { t: "release"; l: string }
  | { t: "stick"; p: string; ip: string; m: string }
  | { t: "touch"; p: string; ip: string; m: string }
  | { t: "counters"; id?: number; r: Report };
