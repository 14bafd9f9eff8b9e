/**
 * The process logger: pino JSON lines to stdout; human-readable (pino-pretty) when stdout
 * is a terminal. Hot paths check isLevelEnabled() (cached per listener) before building
 * a log object, so a level that is off costs nothing.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";
import pretty from "pino-pretty";

export function createLogger(level: LevelWithSilent = "info", opts: { pretty?: boolean } = {}): Logger {
  const usePretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.LB4_LOG_FORMAT !== "json");
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (usePretty) return pino(options, pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l" }));
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

/** A logger that drops everything (embedding without logs, tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
