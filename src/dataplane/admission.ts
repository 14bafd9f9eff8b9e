/**
 * The one admission path for a new TCP connection or UDP flow (SPEC §3): access list →
 * limit → descriptor budget → pick → count, with every refusal counted and logged
 * rate-limited. TCP and UDP differ only in what they call "open" and what the client loses
 * (a closed connection, a dropped datagram).
 */
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { MemberRuntime } from "../model/member.js";
import type { PoolRuntime } from "../model/pool.js";
import type { ClientInfo } from "../scheduling/types.js";
import type { FdBudget } from "./fd-budget.js";
import type { RateLimitedLog } from "./ratelimit.js";
import type { ListenerStats } from "./stats.js";

/** What admission needs of a listener. */
export interface Admitting {
  config: ListenerConfig;
  acl: AccessList;
  pool: PoolRuntime;
  readonly stats: ListenerStats;
  readonly budget: FdBudget;
  readonly deps: { refusalLog: RateLimitedLog };
}

/** How the refusal reads for each protocol: what the client loses. */
const LOSS = { TCP: "client refused", UDP: "datagram dropped" } as const;
const LIMIT = { TCP: "connection_limit reached", UDP: "UDP flow cap reached (connection_limit or the built-in cap)" } as const;

/**
 * Access list, limit and descriptor budget. `open` is what counts against `cap` (open
 * connections, or flows in the table); `fds` the descriptors one more would hold. True =
 * admitted, with the descriptors taken (give them back when it ends).
 */
export function admit(l: Admitting, ip: string, open: number, cap: number, fds: number): boolean {
  const proto = l.config.protocol;
  if (!l.acl.allows(ip)) {
    l.stats.refusedAcl++;
    l.deps.refusalLog.warn("acl", { listener: l.config.id, client: ip, msg: `${LOSS[proto]}: client refused by ipgroup` });
    return false;
  }
  if (open >= cap) {
    refuseLimit(l, ip);
    return false;
  }
  if (!l.budget.tryTake(fds)) {
    l.stats.refusedFdLimit++;
    l.deps.refusalLog.warn("fd_limit", {
      listener: l.config.id,
      client: ip,
      msg: `data-plane file descriptors used up (the open-file limit minus a reserve for the admin API and health checks); ${LOSS[proto]}: raise ulimit -n or set connection_limit`,
    });
    return false;
  }
  return true;
}

/** Refused by the limit (here, or by the primary for the whole instance): counted and logged. */
export function refuseLimit(l: Pick<Admitting, "config" | "stats" | "deps">, ip: string): void {
  const proto = l.config.protocol;
  l.stats.refusedLimit++;
  l.deps.refusalLog.warn("limit", { listener: l.config.id, client: ip, msg: `${LIMIT[proto]}; ${LOSS[proto]}` });
}

/** The listener's connection_limit as a cap (0 = unlimited). */
export function limitOf(config: ListenerConfig): number {
  return config.connection_limit > 0 ? config.connection_limit : Infinity;
}

/**
 * The member for a new connection or flow, skipping `avoid`. None on the first try is a
 * no_member refusal, counted and logged; none on a retry is the caller's connect failure.
 */
export function pickMember(l: Admitting, client: ClientInfo, avoid: readonly MemberRuntime[] | undefined, firstTry: boolean): MemberRuntime | undefined {
  const m = l.pool.pick(client, avoid);
  if (!m && firstTry) {
    l.stats.refusedNoMember++;
    l.deps.refusalLog.warn("no_member", { listener: l.config.id, client: client.ip, msg: `no eligible member; ${LOSS[l.config.protocol]}` });
  }
  return m;
}

/** A connection or flow handed to a member: counted at once (SPEC §9 totals are live). */
export function countHandover(l: Admitting, m: MemberRuntime, firstTry: boolean): void {
  if (firstTry) l.stats.total++;
  m.active++;
  m.total++;
}
