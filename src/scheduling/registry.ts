/**
 * Scheduler registry: one entry per algorithm of SPEC §4. Config validation can check a
 * name against ALGORITHMS; pools create their scheduler through createScheduler.
 */
import { Lb4Error } from "../errors.js";
import { createLeastConnections } from "./least-connections.js";
import { createMaglev } from "./maglev.js";
import { createRoundRobin } from "./round-robin.js";
import type { Algorithm, Schedulable, Scheduler, SchedulerFactory } from "./types.js";

const REGISTRY: Readonly<Record<Algorithm, SchedulerFactory>> = {
  ROUND_ROBIN: createRoundRobin,
  LEAST_CONNECTIONS: createLeastConnections,
  SOURCE_IP: createMaglev,
};

/** Every algorithm lb4 knows, in SPEC order. */
export const ALGORITHMS: readonly Algorithm[] = Object.freeze(Object.keys(REGISTRY) as Algorithm[]);

/** A fresh, empty scheduler for `algorithm`; throws LB4.UNKNOWN_ALGORITHM for any other name. */
export function createScheduler<M extends Schedulable>(algorithm: Algorithm): Scheduler<M> {
  // hasOwn, so "toString" or "__proto__" from a config file is unknown, not a crash.
  if (!Object.hasOwn(REGISTRY, algorithm)) {
    throw new Lb4Error(
      "LB4.UNKNOWN_ALGORITHM",
      `unknown lb_algorithm ${JSON.stringify(algorithm)}; use one of ${ALGORITHMS.join(", ")}`,
    );
  }
  return REGISTRY[algorithm]<M>();
}
