/**
 * The TCP access-log line (`"ev":"tcp_conn"`), in pino's exact line format
 * (`{"level":30,"time":…,<bindings>,…,"msg":…}`), built from a template instead of pino's
 * generic serializer.
 *
 * A finished connection only fills a preallocated record (a few field stores); records are
 * formatted in batches of up to BATCH lines, before any other line reaches the log
 * destination and at its periodic flush, so the order of lines is kept and no line waits
 * longer than the destination's flush interval. Why: formatting one line between two
 * connections runs with cold caches and cost ~4 µs in place; a batch runs hot (bench/RESULTS.md).
 * Without a LineBatcher destination (pretty output, tests) each line is written at once.
 *
 * Every value put in unescaped is a validated id, an IP address, a number or an end reason;
 * free text (error messages) goes through JSON.stringify.
 */
import type { Logger } from "pino";
import { pinoBindings, pinoStream } from "../platform/node-internals.js";
import { LineBatcher, type DeferredLines } from "../log.js";

interface Destination {
  write(line: string): unknown;
}

/** One finished TCP connection or UDP flow. Fields are overwritten in place; strings only reference existing ones. */
export class ConnRecord {
  /** A UDP flow: its line carries datagram counts and says "flow ended". */
  udp = false;
  datagramsIn = 0;
  datagramsOut = 0;
  /** UDP datagrams dropped while the flow's upstream socket connected. */
  dropped = 0;
  /** When the connection ended, on the engine's monotonic clock (ms). */
  endedAt = 0;
  /** `"ev":"tcp_conn","lb":…,"listener":…` */
  prefix = "";
  ip = "";
  port = 0;
  /** `"member":…,"member_id":…` */
  member = "";
  bytesIn = 0;
  bytesOut = 0;
  durationMs = 0;
  end = "";
  /** Error code or message, "" for none. */
  error = "";
}

/** Records formatted together at most; also the number of records preallocated. */
export const BATCH = 256;

export class AccessLog implements DeferredLines {
  private readonly stream: Destination;
  /** The stream when it batches (and drains this log before its other lines), else undefined. */
  private readonly batcher: LineBatcher | undefined;
  private readonly bindings: string;
  private readonly records: ConnRecord[] = [];
  /** Records filled and not yet formatted. */
  pending = 0;
  private readonly clock: () => number;
  private lastMs = -1;
  private lastTime = "";

  /** `clock`: the monotonic clock records' endedAt is read from (performance.now by default). */
  constructor(logger: Logger, clock: () => number = () => performance.now()) {
    this.clock = clock;
    this.stream = pinoStream(logger) as Destination;
    this.bindings = pinoBindings(logger);
    this.batcher = this.stream instanceof LineBatcher ? this.stream : undefined;
    this.batcher?.attach(this);
    for (let i = 0; i < (this.batcher ? BATCH : 1); i++) this.records.push(new ConnRecord());
  }

  /** Write what is pending and stop taking part in the destination's flushes (engine closed). */
  close(): void {
    if (this.batcher) this.batcher.detach(this);
    else if (this.pending > 0) this.drain();
  }

  /** The record to fill for a finished connection; hand it back with commit(). */
  next(): ConnRecord {
    return this.records[this.pending]!;
  }

  commit(): void {
    this.pending++;
    if (this.pending === this.records.length) this.drain();
  }

  /** Format every pending record into the destination, oldest first. */
  drain(): void {
    const n = this.pending;
    this.pending = 0;
    // Wall-clock time of each line from its monotonic end time: one Date.now() per batch,
    // not per connection (reading clocks cost ~1 µs a connection in place).
    const offset = Date.now() - this.clock();
    const out = this.batcher;
    for (let i = 0; i < n; i++) {
      const r = this.records[i]!;
      const line = this.line(r, Math.round(offset + r.endedAt));
      // append(), not write(): a drain must not first drain another engine's records (order).
      if (out) out.append(line);
      else this.stream.write(line);
      r.ip = r.member = r.end = r.error = ""; // drop references to per-connection strings
    }
  }

  private line(r: ConnRecord, time: number): string {
    // Epoch ms is a heap number: its text is made once per millisecond, not once per line.
    if (time !== this.lastMs) {
      this.lastMs = time;
      this.lastTime = String(time);
    }
    const err = r.error === "" ? "" : `,"error":${JSON.stringify(r.error)}`;
    // An IPv6 client is bracketed ("[::1]:54822"), as memberKey() writes an address:port;
    // inline so the line gains no intermediate string.
    const v6 = r.ip.includes(":");
    const head = `{"level":30,"time":${this.lastTime}${this.bindings},${r.prefix},"client":"${v6 ? "[" : ""}${r.ip}${v6 ? "]" : ""}:${r.port}",${r.member},`;
    if (r.udp) {
      const dropped = r.dropped > 0 ? `,"dropped":${r.dropped}` : "";
      return (
        `${head}"datagrams_in":${r.datagramsIn},"datagrams_out":${r.datagramsOut},"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut},` +
        `"duration_ms":${r.durationMs},"end":"${r.end}"${dropped}${err},"msg":"flow ended"}\n`
      );
    }
    return `${head}"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut},"duration_ms":${r.durationMs},"end":"${r.end}"${err},"msg":"connection closed"}\n`;
  }
}
