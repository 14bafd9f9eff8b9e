/**
 * Logging that a flood cannot turn into a log flood: per key, at most one line per
 * interval, carrying how many were suppressed since the last one.
 */
import type { Logger } from "pino";

export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly logger: Logger,
    private readonly clock: () => number,
    private readonly intervalMs = 1000,
  ) {}

  /** A refused client or datagram (`"ev":"refused"`), limited per reason. */
  warn(reason: string, fields: Record<string, unknown> & { msg: string }): void {
    this.event("refused", reason, { reason, ...fields });
  }

  /** A warn line `{"ev": ev, ...fields, "suppressed": n}`, at most one per interval for `key`. */
  event(ev: string, key: string, fields: Record<string, unknown> & { msg: string }): void {
    if (!this.logger.isLevelEnabled("warn")) return;
    const now = this.clock();
    const slot = this.last.get(key);
    if (slot && now - slot.at < this.intervalMs) {
      slot.suppressed++;
      return;
    }
    const { msg, ...rest } = fields;
    this.logger.warn({ ev, ...rest, suppressed: slot?.suppressed ?? 0 }, msg);
    if (slot) {
      slot.at = now;
      slot.suppressed = 0;
    } else this.last.set(key, { at: now, suppressed: 0 });
  }
}
