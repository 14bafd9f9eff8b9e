/**
 * The process logger: pino JSON lines to stdout; human-readable (pino-pretty) when stdout
 * is a terminal. Hot paths check isLevelEnabled() (cached per listener) before building
 * a log object, so a level that is off costs nothing.
 */
import fs from "node:fs";
import { pino, type Logger, type LevelWithSilent } from "pino";
import pretty from "pino-pretty";
import { utf8Write } from "./platform/node-internals.js";

export function createLogger(level: LevelWithSilent = "info", opts: { pretty?: boolean; fd?: number; atomic?: boolean } = {}): Logger {
  const usePretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.LB4_LOG_FORMAT !== "json");
  // Epoch-ms "time" (pino's default) costs less per line than an ISO string.
  const options = { level, base: { pid: process.pid } };
  if (usePretty) return pino(options, pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l" }));
  return pino(options, new LineBatcher({ fd: opts.fd ?? 1, ...(opts.atomic ? { atomic: true } : {}) }));
}

/**
 * The most bytes one write(2) to a pipe delivers whole, never interleaved with another
 * process's write (POSIX PIPE_BUF; 4096 on Linux).
 */
export const PIPE_BUF = 4096;

/**
 * `bytes` (whole lines) cut at line ends into pieces of at most `max` bytes; a line longer
 * than `max` is a piece of its own. Views, not copies.
 */
export function linePieces(bytes: Buffer, max = PIPE_BUF): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  while (bytes.length - start > max) {
    let end = bytes.lastIndexOf(10, start + max - 1);
    if (end < start) end = bytes.indexOf(10, start + max);
    if (end === -1) break;
    out.push(bytes.subarray(start, end + 1));
    start = end + 1;
  }
  if (start < bytes.length) out.push(bytes.subarray(start));
  return out;
}

/** Longest a log line waits in the batch. */
export const FLUSH_MS = 250;
/** A batch is handed to the writer once it holds this many bytes. */
export const BATCH_BYTES = 64 * 1024;
/** A writer with work and no completed write for this long is taken as stuck (at exit). */
export const STUCK_MS = 1000;
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
 * batch (and, every FLUSH_MS, whatever is there) to sonic-boom in buffer mode, which does
 * the async writes and EAGAIN retries. Why not sonic-boom's own batching (string mode with minLength): it measures
 * the pending string with Buffer.byteLength on every write, flattening the growing rope —
 * about 1 µs more per access-log line, and 8 KiB batches meant a thread-pool write every
 * ~30 connections. Here a line costs one utf8Write into a preallocated buffer.
 */
export class LineBatcher {
  /** Lines dropped because stdout did not keep up (MAX_PENDING_BYTES); a metric. */
  dropped = 0;
  private readonly fd: number;
  private readonly out: ReturnType<typeof pino.destination>;
  private buf = Buffer.allocUnsafe(2 * BATCH_BYTES);
  private off = 0;
  /** Bytes handed to the writer and not yet written (nor dropped). */
  private unwritten = 0;
  /** When the writer last made progress (or was handed work while idle). */
  private progressAt = 0;
  /** Until flushSync() sets it, a full pipe (EAGAIN) is retried for as long as it takes. */
  private exitDeadline = Infinity;
  /** Sources of lines formatted late (each engine's access log). */
  private deferred: DeferredLines[] = [];
  private readonly flusher: ReturnType<typeof setInterval>;
  private readonly onExit = (): void => this.flushSync();
  /** Several processes share the fd (workers, SPEC §10): every write is whole lines of at most PIPE_BUF bytes. */
  private readonly atomic: boolean;

  constructor(opts: { fd: number; atomic?: boolean }) {
    this.fd = opts.fd;
    this.atomic = opts.atomic ?? false;
    // minLength 0: sonic-boom writes whatever it is handed at once and keeps writing until
    // its queue is empty, then emits 'drain'; the batching is done here.
    this.out = pino.destination({
      dest: opts.fd,
      sync: false,
      contentMode: "buffer",
      minLength: 0,
      maxLength: MAX_PENDING_BYTES,
      // sonic-boom joins queued pieces into one write up to maxWrite: PIPE_BUF keeps each write whole.
      ...(this.atomic ? { maxWrite: PIPE_BUF } : {}),
      retryEAGAIN: () => Date.now() < this.exitDeadline,
    });
    this.out.on("write", (n: number) => {
      this.unwritten -= n;
      this.progressAt = Date.now();
    });
    this.out.on("drop", (b: Buffer) => {
      this.unwritten -= b.length;
      this.dropped += countLines(b);
    });
    this.flusher = setInterval(() => this.flushPending(), FLUSH_MS).unref();
    process.once("exit", this.onExit);
  }

  /** Write what is held, stop the periodic flush and the exit hook (a logger that is done). */
  close(): void {
    clearInterval(this.flusher);
    process.off("exit", this.onExit);
    this.flushPending();
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

  /** A line from pino: lines held by deferred sources go first. */
  write(line: string): boolean {
    if (this.deferred.length > 0) this.drainDeferred();
    return this.append(line);
  }

  /** A line from a deferred source's drain(): appended as is, without draining others. */
  append(line: string): boolean {
    // 3 bytes per UTF-16 unit is the UTF-8 worst case, so a line that passes never truncates.
    if (this.off + line.length * 3 > this.buf.length) {
      this.handBatch();
      if (line.length * 3 > this.buf.length) {
        this.hand(Buffer.from(line));
        return true;
      }
    }
    // utf8Write: Buffer#write without its argument normalisation (~0.5 µs a line less).
    this.off += utf8Write(this.buf, line, this.off);
    if (this.off >= BATCH_BYTES) this.handBatch();
    return true;
  }

  /** Everything held here (deferred lines, the current batch) to the writer. */
  flushPending(): void {
    if (this.deferred.length > 0) this.drainDeferred();
    this.handBatch();
  }

  private handBatch(): void {
    if (this.off === 0) return;
    if (this.off >= BATCH_BYTES / 2) {
      // The writer keeps the bytes until written, so the next batch gets a fresh buffer.
      this.hand(this.buf.subarray(0, this.off));
      this.buf = Buffer.allocUnsafe(2 * BATCH_BYTES);
    } else {
      // A small batch (the periodic flush) is copied out, so a stalled stdout holds only
      // the bytes it is owed, not a mostly empty 128 KiB buffer per flush.
      this.hand(Buffer.from(this.buf.subarray(0, this.off)));
    }
    this.off = 0;
  }

  private hand(bytes: Buffer): void {
    if (this.unwritten <= 0) this.progressAt = Date.now();
    this.unwritten += bytes.length;
    if (!this.atomic || bytes.length <= PIPE_BUF) {
      this.out.write(bytes as unknown as string);
      return;
    }
    for (const piece of linePieces(bytes)) this.out.write(piece as unknown as string);
  }

  /** pino's logger.flush(cb): cb once everything logged so far is written. */
  flush(cb?: (err?: Error) => void): void {
    this.flushPending();
    if (this.unwritten <= 0) {
      if (cb) process.nextTick(cb);
      return;
    }
    if (!cb) return;
    const onDrain = () => {
      this.out.off("error", onError);
      cb();
    };
    const onError = (err: Error) => {
      this.out.off("drain", onDrain);
      cb(err);
    };
    this.out.once("drain", onDrain);
    this.out.once("error", onError);
  }

  /**
   * At exit (and pino's fatal): write what is held here synchronously: straight to the fd
   * when the writer is idle, else through sonic-boom's synchronous flush.
   */
  flushSync(): void {
    if (this.deferred.length > 0) this.drainDeferred();
    try {
      if (this.unwritten <= 0) {
        const pieces = this.atomic ? linePieces(this.buf.subarray(0, this.off)) : [this.buf.subarray(0, this.off)];
        this.off = 0;
        let rest = pieces.shift() ?? Buffer.alloc(0);
        for (let spins = 0; rest.length > 0 && spins < 100; ) {
          try {
            rest = rest.subarray(fs.writeSync(this.fd, rest));
            if (rest.length === 0) rest = pieces.shift() ?? rest;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
            spins++;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // a full pipe: wait for the reader, up to ~1 s
          }
        }
      } else if (Date.now() - this.progressAt > STUCK_MS) {
        // No write has completed for a while: the reader stopped (a blocking pipe would
        // block a synchronous write for ever). Exit without the tail.
      } else {
        // Writes are queued or in flight: sonic-boom writes its queue synchronously (the one
        // in flight completes on its own). A full pipe is retried for ~1 s at most
        // (retryEAGAIN), so a stalled log reader cannot hold the process at exit.
        this.handBatch();
        this.exitDeadline = Date.now() + 1000;
        this.out.flushSync();
      }
    } catch {
      // stdout gone (EPIPE) or not ready: nothing more can be written at exit.
    }
  }
}

function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/** Flush the log, then exit; exit anyway after maxWaitMs (a log reader that stopped reading). */
export function flushAndExit(logger: Logger, code: number, maxWaitMs = 3000): void {
  setTimeout(() => process.exit(code), maxWaitMs);
  logger.flush(() => process.exit(code));
}

/** A logger that drops everything (embedding without logs, tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
