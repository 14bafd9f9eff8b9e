/**
 * Runtime state of one pool member: the configured fields (from config or API) and what
 * the engine learns (health, ramp, drain, active count). Its effective weight is derived by
 * scheduling/weights.ts whenever the pool refreshes.
 */
import type { MemberConfig } from "../config/schema.js";
import type { Schedulable } from "../scheduling/types.js";
import type { OperatingStatus, Ramp, WeightInputs } from "../scheduling/weights.js";
import type { MemberSpec } from "./snapshot.js";

/** "10.0.0.5:80" / "[fd00::5]:80": `address` is canonical (the config schema made it so), so one endpoint has one key. */
export function memberKey(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

export class MemberRuntime implements Schedulable {
  readonly key: string;
  /** The member's part of an access-log line, built once (address, port and id never change). */
  readonly logField: string;
  /** The address is IPv6 (it never changes: it is part of the key). */
  readonly v6: boolean;
  config: MemberConfig;
  /** Connections/flows open now (read live by LEAST_CONNECTIONS). */
  active = 0;
  /** Connections/flows ever opened. */
  total = 0;
  effectiveWeight = 0;
  status: OperatingStatus;
  removed = false;
  ramp: Ramp | undefined;
  /** When open connections get closed because of drain; Infinity = not draining. */
  drainDeadline = Infinity;
  /** Whether the member was eligible at the last refresh (to detect the moment it leaves). */
  wasEligible = false;
  /** Cross-VPC member (SPEC §6): gets toa under client_ip auto, SNAT source addresses. */
  crossVpc = false;
  /** The snapshot entry this member was last set from (an identical one needs no work). */
  spec: MemberSpec | undefined = undefined;

  constructor(config: MemberConfig, monitored: boolean) {
    this.config = config;
    this.key = memberKey(config.address, config.protocol_port);
    this.v6 = config.address.includes(":");
    this.logField = `"member":${JSON.stringify(this.key)},"member_id":${JSON.stringify(config.id)}`;
    this.status = monitored ? "OFFLINE" : "NO_MONITOR";
  }

  get id(): string {
    return this.config.id;
  }

  /** A health transition; the first ONLINE starts a pending slow-start ramp (flaps do not move it). */
  setHealth(online: boolean, now: number): void {
    this.status = online ? "ONLINE" : "OFFLINE";
    if (online && this.ramp && this.ramp.startedAt === undefined) this.ramp.startedAt = now;
  }

  weightInputs(rampFactor: number): WeightInputs {
    return {
      weight: this.config.weight,
      adminUp: this.config.admin_state_up,
      removed: this.removed,
      status: this.status,
      rampFactor,
    };
  }
}
