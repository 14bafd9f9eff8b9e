/**
 * What the engine needs of any listener, TCP or UDP: bind, sweep on the engine tick,
 * stop accepting, close what is open, and the live settings a reload may swap in place.
 */
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { PoolRuntime } from "../model/pool.js";
import type { ListenerStats, Traffic } from "./stats.js";

export interface Listener {
  config: ListenerConfig;
  pool: PoolRuntime;
  acl: AccessList;
  /** Cached `logger.isLevelEnabled("info")` for the access log, refreshed on reload. */
  accessLog: boolean;
  readonly stats: ListenerStats;
  /** Bytes/datagrams so far, open connections/flows included; for scrapes, not the data path. */
  traffic(): Traffic;
  listen(): Promise<void>;
  /** Engine tick: idle timeouts, connect timeouts, drain deadlines. */
  sweep(now: number): void;
  /** Stop taking new connections/flows; open ones continue. */
  stopAccepting(): Promise<void>;
  /** Close every open connection/flow now (end of the shutdown grace period). */
  destroyAll(): void;
}
