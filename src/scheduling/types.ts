/**
 * The scheduler seam. A scheduler only ever sees eligible members (effective weight > 0):
 * the pool filters health, admin state, drain and weight 0 first (gobetween's habit), and
 * passes effective weights, never the reasons behind them (HAProxy's uweight/eweight).
 */

export type Algorithm = "ROUND_ROBIN" | "LEAST_CONNECTIONS" | "SOURCE_IP";

/** What a scheduler may read of a member. */
export interface Schedulable {
  /** Stable identity, "address:port"; orders Maglev's table so processes agree. */
  readonly key: string;
  /** Effective weight, > 0 for every member handed to a scheduler (may be fractional during slow start). */
  readonly effectiveWeight: number;
  /** Connections or flows open to this member now. */
  readonly active: number;
}

/** The client a pick is made for. `ip` is the normalised textual address ("::ffff:" stripped). */
export interface ClientInfo {
  readonly ip: string;
  readonly port: number;
}

export interface Scheduler<M extends Schedulable = Schedulable> {
  readonly algorithm: Algorithm;
  /**
   * Replace the eligible set. Called off the hot path, whenever membership or any effective
   * weight changes; a scheduler may snapshot weights and rebuild tables here.
   */
  update(members: readonly M[]): void;
  /**
   * Pick a member for a new connection, never one in `avoid` (members that already failed
   * for this connection). Returns undefined when no eligible member remains.
   */
  pick(client: ClientInfo, avoid?: readonly M[]): M | undefined;
}

export type SchedulerFactory = <M extends Schedulable>() => Scheduler<M>;
