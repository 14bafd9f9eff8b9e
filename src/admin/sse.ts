/**
 * Server-Sent Events, both ends (the WHATWG "event stream" format): `formatEvent` writes one
 * event, `SseParser` reads them back. Pure and free of Node and DOM APIs, so the admin server,
 * `lb4 status --watch` and the dashboard's bundle share this one reading of the format.
 */

export interface SseMessage {
  /** The `event:` field; "message" when absent (as EventSource does). */
  event: string;
  /** The `data:` lines joined by "\n". */
  data: string;
  /** The `id:` field of this event, if it had one. */
  id: string | undefined;
}

/** One event. `data` may hold newlines (each becomes a `data:` line); no field may hold CR or LF. */
export function formatEvent(e: { event?: string; id?: string | number; data: string }): string {
  let out = "";
  if (e.id !== undefined) out += `id: ${oneLine(String(e.id))}\n`;
  if (e.event !== undefined) out += `event: ${oneLine(e.event)}\n`;
  for (const line of e.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out + "\n";
}

/** A comment line: ignored by readers, keeps proxies and idle timers from closing the stream. */
export function formatComment(text: string): string {
  return `: ${oneLine(text)}\n\n`;
}

/** `retry:` — how long a reader waits before reconnecting, ms. */
export function formatRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.round(ms))}\n\n`;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

/** Longest line kept while waiting for its end; a stream that sends more is not an event stream. */
export const MAX_LINE = 1 << 20;

/**
 * Incremental reader: feed text chunks as they arrive (split anywhere, even inside a CRLF),
 * get whole events back. Follows the spec's rules: a leading BOM is dropped, `:` lines are
 * comments, a field without `:` has an empty value, one space after the colon is stripped,
 * an event without data is not dispatched, and `id` persists as the last event id.
 */
export class SseParser {
  private buf = "";
  private started = false;
  private pendingCr = false;
  private event = "";
  private data: string[] = [];
  private id: string | undefined;
  private hasId = false;
  /** The id to resume from (the last `id:` seen), as a reader sends it in Last-Event-ID. */
  lastEventId = "";
  /** The last `retry:` value, ms. */
  retry: number | undefined;

  push(chunk: string): SseMessage[] {
    if (!this.started) {
      if (chunk.length === 0) return [];
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.pendingCr && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.pendingCr = false;
    const out: SseMessage[] = [];
    let text = this.buf + chunk;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(text.slice(start, i), out);
      if (c === 13) {
        if (i + 1 === text.length) this.pendingCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    text = text.slice(start);
    if (text.length > MAX_LINE) throw new Error(`event stream line longer than ${MAX_LINE} characters`);
    this.buf = text;
    return out;
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === "") {
      if (this.hasId) this.lastEventId = this.id ?? "";
      if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.hasId ? this.id : undefined });
      this.event = "";
      this.data = [];
      this.id = undefined;
      this.hasId = false;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.event = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) {
          this.id = value;
          this.hasId = true;
        }
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }
}
