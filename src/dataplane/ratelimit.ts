/**
 * Refusal logging that a flood cannot turn into a log flood: per reason, at most one line
 * per interval, carrying how many were suppressed since the last one.
 */
import type { Logger } from "pino";

export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly logger: Logger,
    private readonly clock: () => number,
    private readonly intervalMs = 1000,
  ) {}

  warn(reason: string, fields: Record<string, unknown> & { msg: string }): void {
    if (!this.logger.isLevelEnabled("warn")) return;
    const now = this.clock();
    const slot = this.last.get(reason);
    if (slot && now - slot.at < this.intervalMs) {
      slot.suppressed++;
      return;
    }
    const { msg, ...rest } = fields;
    this.logger.warn({ ev: "refused", reason, ...rest, suppressed: slot?.suppressed ?? 0 }, msg);
    this.last.set(reason, { at: now, suppressed: 0 });
  }
}
