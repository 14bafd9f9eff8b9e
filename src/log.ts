/**
 * The process logger: pino JSON lines to stdout; human-readable (pino-pretty) when stdout
 * is a terminal. Hot paths check isLevelEnabled() (cached per listener) before building
 * a log object, so a level that is off costs nothing.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";
import pretty from "pino-pretty";

export function createLogger(level: LevelWithSilent = "info", opts: { pretty?: boolean } = {}): Logger {
  const usePretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.LB4_LOG_FORMAT !== "json");
  // Epoch-ms "time" (pino's default) costs less per line than an ISO string.
  const options = { level, base: { pid: process.pid } };
  if (usePretty) return pino(options, pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l" }));
  // Lines are gathered into ~8 KiB writes instead of one write per access-log line; a
  // timer flushes whatever is pending every FLUSH_MS so a quiet log is never held back.
  // (sonic-boom's own periodicFlush writes without fsync; logger.flush() would fsync.)
  const dest = pino.destination({ dest: 1, sync: false, minLength: 8 * 1024, periodicFlush: FLUSH_MS });
  return pino(options, dest);
}

/** Longest a log line waits in the buffer. */
export const FLUSH_MS = 250;

/** A logger that drops everything (embedding without logs, tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
