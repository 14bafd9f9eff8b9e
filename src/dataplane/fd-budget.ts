/**
 * File descriptors for the data plane (SPEC §3: nothing unbounded). The process's open-file
 * limit (RLIMIT_NOFILE) is read once from /proc/self/limits; Node has no getrlimit, and it
 * has already raised the soft limit to the hard one at start, so this is the real ceiling.
 *
 * The data plane may hold at most `limit - reserve` descriptors (a TCP connection takes 2:
 * client and upstream; a UDP flow 1: its upstream socket). Beyond that a new connection is
 * closed at once and a new flow's datagram dropped, counted as refused `fd_limit`. What is
 * left over — the reserve — keeps the admin API, health checks, state writes and logging
 * working while the data plane is full, instead of every accept failing with EMFILE.
 */
import { readFileSync } from "node:fs";

/** The soft "Max open files" of a /proc/<pid>/limits text; Infinity for "unlimited", undefined if absent. */
export function parseOpenFileLimit(text: string): number | undefined {
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  if (m[1] === "unlimited") return Infinity;
  const n = Number(m[1]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** RLIMIT_NOFILE of this process, read once; undefined where /proc is not available (not Linux). */
let limitRead = false;
let limitValue: number | undefined;
export function openFileLimit(): number | undefined {
  if (!limitRead) {
    limitRead = true;
    try {
      limitValue = parseOpenFileLimit(readFileSync("/proc/self/limits", "utf8"));
    } catch {
      limitValue = undefined;
    }
  }
  return limitValue;
}

/**
 * Descriptors kept out of the data plane's reach: Node's own (~25: epoll, stdio, the libuv
 * threadpool's pipes), listeners, admin connections, health probes in flight, state files.
 */
export function reserveFor(limit: number): number {
  return Math.min(1024, Math.max(64, Math.ceil(limit / 10)));
}

/** Flow cap when connection_limit is 0 and the open-file limit is unknown (today's cap). */
export const FALLBACK_MAX_FLOWS = 65_536;

/** A count of data-plane descriptors against a ceiling; tryTake/give are a compare and an add. */
export class FdBudget {
  used = 0;
  constructor(
    /** Most descriptors the data plane may hold; Infinity = no cap. */
    readonly max: number,
  ) {}

  /** Take n descriptors; false (nothing taken) when that would pass the ceiling. */
  tryTake(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }

  /**
   * Default UDP flow cap of a listener without connection_limit: half the budget, so a
   * source-port flood on one listener cannot take every descriptor from TCP.
   */
  defaultMaxFlows(): number {
    return Number.isFinite(this.max) ? Math.max(1, Math.min(FALLBACK_MAX_FLOWS, Math.floor(this.max / 2))) : FALLBACK_MAX_FLOWS;
  }
}

/** The budget for an open-file limit (undefined or Infinity: no cap). */
export function budgetFor(limit: number | undefined): FdBudget {
  if (limit === undefined || !Number.isFinite(limit)) return new FdBudget(Infinity);
  return new FdBudget(Math.max(0, limit - reserveFor(limit)));
}

let shared: FdBudget | undefined;

/** The process-wide budget every listener shares (descriptors are per process). */
export function sharedFdBudget(): FdBudget {
  return (shared ??= budgetFor(openFileLimit()));
}
