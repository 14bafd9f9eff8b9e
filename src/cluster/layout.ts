/**
 * Where lb4 keeps its shared state in etcd (SPEC §11), under the cluster's `prefix`:
 *
 *   {prefix}lb/{lb_id}               one load balancer with its listeners, pools and members (JSON)
 *   {prefix}facts/cross_vpc/{lb_id}  "1": cross-VPC was ever enabled on it (SPEC §6 rule 6)
 *   {prefix}instances/{instance_id}  a live instance (JSON, on its lease)
 *   {prefix}seeded                   created once, by the instance that wrote the first load balancers
 *
 * One key per load balancer: a member change is a compare-and-swap on its load balancer's
 * key, so changes to different load balancers never conflict, and a watch event carries a
 * whole load balancer (nothing half-applied). The key functions are pure; storeLoadBalancers reads.
 */
import type { LoadBalancerConfig } from "../config/schema.js";
import type { EtcdClient } from "../store/etcd.js";

export interface ClusterKeys {
  readonly prefix: string;
}

export const lbKey = (c: ClusterKeys, lbId: string): string => `${c.prefix}lb/${lbId}`;
export const crossVpcKey = (c: ClusterKeys, lbId: string): string => `${c.prefix}facts/cross_vpc/${lbId}`;
export const instanceKey = (c: ClusterKeys, instanceId: string): string => `${c.prefix}instances/${instanceId}`;
export const lbPrefix = (c: ClusterKeys): string => `${c.prefix}lb/`;
/** Created by the instance that seeded the prefix (once). */
export const seededKey = (c: ClusterKeys): string => `${c.prefix}seeded`;
export const instancesPrefix = (c: ClusterKeys): string => `${c.prefix}instances/`;

/** What a key under the prefix is, or undefined for a key lb4 does not own. */
export type KeyKind = { kind: "lb"; id: string } | { kind: "cross_vpc"; id: string } | { kind: "instance"; id: string };

export function classify(c: ClusterKeys, key: string): KeyKind | undefined {
  if (!key.startsWith(c.prefix)) return undefined;
  const rest = key.slice(c.prefix.length);
  const at = (p: string) => (rest.startsWith(p) && rest.length > p.length && !rest.slice(p.length).includes("/") ? rest.slice(p.length) : undefined);
  const lb = at("lb/");
  if (lb !== undefined) return { kind: "lb", id: lb };
  const f = at("facts/cross_vpc/");
  if (f !== undefined) return { kind: "cross_vpc", id: f };
  const i = at("instances/");
  if (i !== undefined) return { kind: "instance", id: i };
  return undefined;
}

/** A live instance, as registered (SPEC §11). */
export interface InstanceRecord {
  instance_id: string;
  advertise: string;
  version: string;
  /** The store revision this instance's running tables were built from. */
  revision: number;
  pid: number;
  started_at: string;
}

/** The shared state as read from the store: load balancers by id (with the revision each was last written at) and the facts. */
export interface StoreView {
  /** The store revision this view is complete up to. */
  revision: number;
  /** The revision of the newest change to a load balancer or fact in it. */
  contentRevision: number;
  lbs: Map<string, { config: LoadBalancerConfig; modRevision: number }>;
  crossVpcEnabled: Set<string>;
}

/** The load balancers of a view, in id order (the store has no order of its own). */
export function viewLoadBalancers(v: { lbs: ReadonlyMap<string, { config: LoadBalancerConfig }> }): LoadBalancerConfig[] {
  return [...v.lbs.keys()].sort().map((id) => v.lbs.get(id)!.config);
}

/** The load balancers the store holds now, in id order (a read for the CLI; instances keep a watched view). */
export async function storeLoadBalancers(client: EtcdClient, c: ClusterKeys): Promise<LoadBalancerConfig[]> {
  const r = await client.range(lbPrefix(c));
  const lbs = new Map<string, { config: LoadBalancerConfig }>();
  for (const kv of r.kvs) {
    const k = classify(c, kv.key);
    if (k?.kind !== "lb") continue;
    try {
      lbs.set(k.id, { config: JSON.parse(kv.value) as LoadBalancerConfig });
    } catch {
      // not JSON: lb4 cluster push writes it again
    }
  }
  return viewLoadBalancers({ lbs });
}
