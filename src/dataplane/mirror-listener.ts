/**
 * A TCP listener as the primary sees it when worker processes serve it (SPEC §10): no
 * socket, only the instance totals the workers report (stats, traffic), so the read model
 * (metrics, status, the admin API) reads one shape in one process or many.
 */
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { PoolRuntime } from "../model/pool.js";
import type { Listener } from "./listener.js";
import { ListenerStats, type Traffic } from "./stats.js";

export class MirrorListener implements Listener {
  readonly stats = new ListenerStats();
  accessLog = false;
  /** Live traffic as last reported (open connections included). */
  live: Traffic = { bytesIn: 0, bytesOut: 0, datagramsIn: 0, datagramsOut: 0 };

  constructor(
    public config: ListenerConfig,
    public pool: PoolRuntime,
    public acl: AccessList,
  ) {}

  traffic(): Traffic {
    return this.live;
  }

  listen(): Promise<void> {
    return Promise.resolve();
  }

  sweep(): void {}

  stopAccepting(): Promise<void> {
    return Promise.resolve();
  }

  destroyAll(): void {}
}
