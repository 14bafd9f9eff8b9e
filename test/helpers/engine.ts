/**
 * An in-process engine fixture for integration tests: one TCP load balancer with one
 * pool on a free loopback port, plus tracking so that after each test every connection
 * is back to 0 (asserted), every engine is closed and every test server is stopped.
 */
import { afterEach, expect } from "vitest";
import type { ConfigInput } from "../../src/config/schema.js";
import { startLoadBalancer, type EngineOptions, type LoadBalancerHandle } from "../../src/engine.js";
import { freePort, waitFor, type TestServer } from "./net.js";

export interface EngineFixture {
  /** Start lb-1 / ls-1 / pool-1 (TCP) over `members` (ids default to m-0, m-1, …). */
  lb(opts: {
    members: Array<Record<string, unknown>>;
    listener?: Record<string, unknown>;
    pool?: Record<string, unknown>;
    engine?: EngineOptions;
    /** The TCP data plane (LB4_DATAPLANE while the engine starts); default: whatever lb4 picks. */
    dataplane?: Dataplane;
  }): Promise<{ h: LoadBalancerHandle; port: number }>;
  /** Stop this server after the test. */
  track<T extends TestServer>(p: Promise<T>): Promise<T>;
  readonly servers: TestServer[];
}

const BOTH = ["net", "handles"] as const;
export type Dataplane = (typeof BOTH)[number];

/**
 * Both TCP data planes, for suites that run against each (issue 15). A process started with
 * LB4_DATAPLANE=net never probes or loads the handle bindings (platform/dataplane-path.ts),
 * so under it those suites run on net alone, and say so.
 */
export const DATAPLANES: readonly Dataplane[] = process.env.LB4_DATAPLANE === "net" ? ["net"] : BOTH;
if (DATAPLANES.length === 1) console.warn("LB4_DATAPLANE=net: the suites parametrised over both TCP data planes run on net only");

/** Start with LB4_DATAPLANE set to `dataplane` (listeners read it when they are created). */
export async function withDataplane<T>(dataplane: Dataplane | undefined, start: () => Promise<T>): Promise<T> {
  if (!dataplane) return start();
  const had = process.env.LB4_DATAPLANE;
  process.env.LB4_DATAPLANE = dataplane;
  try {
    return await start();
  } finally {
    if (had === undefined) delete process.env.LB4_DATAPLANE;
    else process.env.LB4_DATAPLANE = had;
  }
}

export function useEngineFixture(): EngineFixture {
  const handles: LoadBalancerHandle[] = [];
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) {
      await waitFor(() => h.activeConnections() === 0, 5000, "active connections back to 0");
      expect(h.activeConnections()).toBe(0);
      await h.close({ graceMs: 100 });
    }
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return {
    servers,
    async lb({ members, listener = {}, pool = {}, engine = {}, dataplane }) {
      const port = await freePort();
      const config = {
        log: { level: "silent" },
        loadbalancers: [
          {
            id: "lb-1",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1", ...listener }],
            pools: [{ id: "pool-1", protocol: "TCP", ...pool, members: members.map((m, i) => ({ id: `m-${i}`, address: "127.0.0.1", ...m })) }],
          },
        ],
      } as ConfigInput;
      const h = await withDataplane(dataplane, () => startLoadBalancer(config, { tuning: { tickMs: 100, connectTimeoutMs: 1000 }, ...engine }));
      handles.push(h);
      return { h, port };
    },
    async track(p) {
      const s = await p;
      servers.push(s);
      return s;
    },
  };
}
