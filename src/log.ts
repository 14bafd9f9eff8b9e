/**
 * The process logger: pino JSON lines to stdout; human-readable (pino-pretty) when stdout
 * is a terminal. Hot paths check isLevelEnabled() (cached per listener) before building
 * a log object, so a level that is off costs nothing.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";
import pretty from "pino-pretty";

export function createLogger(level: LevelWithSilent = "info", opts: { pretty?: boolean; fd?: number } = {}): Logger {
  const usePretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.LB4_LOG_FORMAT !== "json");
  // Epoch-ms "time" (pino's default) costs less per line than an ISO string.
  const options = { level, base: { pid: process.pid } };
  if (usePretty) return pino(options, pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l" }));
  return pino(options, new LineBatcher({ fd: opts.fd ?? 1 }));
}

/** Longest a log line waits in the batch. */
export const FLUSH_MS = 250;
/** A batch is handed to the writer once it holds this many bytes. */
export const BATCH_BYTES = 64 * 1024;
/** Bytes waiting for a slow stdout before new lines are dropped (and counted). */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** Lines a producer keeps as records and formats in a batch when asked (see AccessLog). */
export interface DeferredLines {
  readonly pending: number;
  /** Write every pending line to the destination now, oldest first. */
  drain(): void;
}

/**
 * A pino destination that gathers lines as UTF-8 bytes in one buffer and hands each full
 * batch to sonic-boom in buffer mode, which does the async writes, EAGAIN retries and the
 * final flush. Why not sonic-boom's own batching (string mode with minLength): it measures
 * the pending string with Buffer.byteLength on every write, flattening the growing rope —
 * about 1 µs more per access-log line, and 8 KiB batches meant a thread-pool write every
 * ~30 connections. Here a line costs one utf8Write into a preallocated buffer.
 */
export class LineBatcher {
  /** Lines dropped because stdout did not keep up (MAX_PENDING_BYTES); a metric. */
  dropped = 0;
  private readonly out: ReturnType<typeof pino.destination>;
  private buf = Buffer.allocUnsafe(2 * BATCH_BYTES);
  private off = 0;
  /** Sources of lines formatted late (each engine's access log). */
  private deferred: DeferredLines[] = [];

  constructor(opts: { fd: number }) {
    // minLength 1: every batch is written at once, and sonic-boom's flush(cb) still waits
    // for a write in flight (with minLength 0 it would call back at once).
    this.out = pino.destination({ dest: opts.fd, sync: false, contentMode: "buffer", minLength: 1, maxLength: MAX_PENDING_BYTES });
    this.out.on("drop", () => this.dropped++);
    setInterval(() => this.flushPending(), FLUSH_MS).unref();
    process.once("exit", () => this.flushSync());
  }

  /** A source of lines formatted late (the access log); drained before any other line. */
  attach(source: DeferredLines): void {
    this.deferred.push(source);
  }

  detach(source: DeferredLines): void {
    if (source.pending > 0) source.drain();
    this.deferred = this.deferred.filter((d) => d !== source);
  }

  private drainDeferred(): void {
    for (const d of this.deferred) if (d.pending > 0) d.drain();
  }

  write(line: string): boolean {
    if (this.deferred.length > 0) this.drainDeferred();
    return this.append(line);
  }

  private append(line: string): boolean {
    // 3 bytes per UTF-16 unit is the UTF-8 worst case, so a line that passes never truncates.
    if (this.off + line.length * 3 > this.buf.length) {
      this.flushPending();
      if (line.length * 3 > this.buf.length) return this.out.write(Buffer.from(line) as unknown as string);
    }
    // utf8Write: Buffer#write without its argument normalisation (~0.5 µs a line less).
    this.off += (this.buf as unknown as Utf8Writable).utf8Write(line, this.off);
    if (this.off >= BATCH_BYTES) this.flushPending();
    return true;
  }

  /** Hand the current batch to the writer. */
  flushPending(): void {
    if (this.deferred.length > 0) this.drainDeferred();
    if (this.off === 0) return;
    // The writer keeps the bytes until written, so the next batch gets a fresh buffer.
    this.out.write(this.buf.subarray(0, this.off) as unknown as string);
    this.buf = Buffer.allocUnsafe(2 * BATCH_BYTES);
    this.off = 0;
  }

  /** pino's logger.flush(cb): everything written, then cb. */
  flush(cb?: (err?: Error) => void): void {
    this.flushPending();
    this.out.flush(cb);
  }

  flushSync(): void {
    this.flushPending();
    try {
      this.out.flushSync();
    } catch {
      // stdout gone (EPIPE) or not ready: nothing more can be written at exit.
    }
  }
}

interface Utf8Writable {
  utf8Write(s: string, offset: number): number;
}

/** A logger that drops everything (embedding without logs, tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
