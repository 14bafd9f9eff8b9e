/**
 * Features the schema accepts but this build does not serve yet. `lb4 start` refuses a
 * config that uses one, naming the field: silently ignoring a setting would be worse.
 * Shrinks to nothing as the features land.
 */
import type { Problem } from "../errors.js";
import type { Config } from "./schema.js";

/** `cluster:` (SPEC §11) until the etcd membership source is wired into the engine. */
export let clusterServed = false;

/** For the cluster wiring to say it is in (one place flips the switch). */
export function serveCluster(): void {
  clusterServed = true;
}

export function unsupportedFeatures(config: Config): Problem[] {
  if (config.cluster && !clusterServed) {
    return [{ path: "cluster", code: "LB4.NOT_SUPPORTED", message: "several instances on etcd (SPEC §11) are not served by this build yet; remove the cluster block to run standalone" }];
  }
  return [];
}
