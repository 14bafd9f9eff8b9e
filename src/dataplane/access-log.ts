/**
 * The access-log line, written straight to the pino destination as pino would format it
 * (`{"level":30,"time":…,<bindings>,…,"msg":…}`), from a template instead of through
 * pino's generic serializer: a line per connection is the only logging on the connection
 * path, and this keeps it to one string build and one buffered write. Every value put in
 * unquoted-escaped is from a validated id, an IP address or a number; free text goes
 * through JSON.stringify.
 */
import { pino, type Logger } from "pino";

interface Destination {
  write(line: string): unknown;
}

export class AccessLog {
  private readonly stream: Destination;
  private readonly bindings: string;
  private lastMs = 0;
  private lastTime = "0";

  constructor(logger: Logger) {
    const l = logger as unknown as Record<symbol, unknown>;
    this.stream = l[pino.symbols.streamSym] as Destination;
    this.bindings = (l[pino.symbols.chindingsSym] as string | undefined) ?? "";
  }

  /**
   * `body` is the rest of the JSON object after the bindings, without braces, ending with
   * the message, e.g. `"ev":"tcp_conn","bytes_in":5,"msg":"connection closed"`.
   */
  write(body: string): void {
    // Epoch ms is a heap number: its text is made once per millisecond, not once per line.
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastTime = String(ms);
    }
    this.stream.write(`{"level":30,"time":${this.lastTime}${this.bindings},${body}}\n`);
  }
}
