/**
 * `tcp_send` / `tcp_expect` (SPEC §4, HAProxy's `tcp-check send/expect`): the one decoder
 * of their escape syntax, used by the config schema (to reject a bad escape with its
 * position) and by the TCP prober (to get the bytes). Pure.
 *
 * Syntax: text is sent as UTF-8; `\r`, `\n`, `\t`, `\0`, `\\` and `\xNN` (two hex digits,
 * one byte) are escapes. Any other character after a backslash is an error, so a typo such
 * as `\R` is reported instead of being sent as two bytes.
 */

export type Decoded = { ok: true; bytes: Buffer } | { ok: false; error: string };

const SIMPLE: Record<string, number> = { r: 0x0d, n: 0x0a, t: 0x09, "0": 0x00, "\\": 0x5c };
const HEX = /^[0-9A-Fa-f]{2}$/;
const HELP = "use \\r, \\n, \\t, \\0, \\\\ or \\xNN (two hex digits)";

/** Decode escapes into bytes, or say what is wrong and where (1-based character position). */
export function decodeEscapes(text: string): Decoded {
  const out: number[] = [];
  let plainFrom = 0;
  const flush = (to: number): void => {
    if (to > plainFrom) for (const b of Buffer.from(text.slice(plainFrom, to), "utf8")) out.push(b);
  };
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== 0x5c) continue;
    flush(i);
    const c = text[i + 1];
    if (c === undefined) return { ok: false, error: `ends with a lone backslash (character ${i + 1}); ${HELP}` };
    const simple = SIMPLE[c];
    if (simple !== undefined) {
      out.push(simple);
      i += 1;
    } else if (c === "x") {
      const hex = text.slice(i + 2, i + 4);
      if (!HEX.test(hex)) return { ok: false, error: `bad escape "\\x${hex}" at character ${i + 1}: \\x takes two hex digits, e.g. \\x0d` };
      out.push(parseInt(hex, 16));
      i += 3;
    } else {
      return { ok: false, error: `unknown escape "\\${c}" at character ${i + 1}; ${HELP}` };
    }
    plainFrom = i + 1;
  }
  flush(text.length);
  return { ok: true, bytes: Buffer.from(out) };
}

/** The decoder's complaint about `text`, or undefined when it decodes (for the schema). */
export function escapeProblem(text: string): string | undefined {
  const d = decodeEscapes(text);
  return d.ok ? undefined : d.error;
}

/** The bytes of a validated `tcp_send`/`tcp_expect`; throws on text the schema would have refused. */
export function decodeOrThrow(text: string): Buffer {
  const d = decodeEscapes(text);
  if (!d.ok) throw new Error(d.error);
  return d.bytes;
}

/**
 * Bytes as short printable text in the same escape syntax (for check details and logs):
 * printable ASCII as is, `"` and `\` escaped, the rest as \r \n \t \0 or \xNN, cut after
 * `max` bytes with "…".
 */
export function showBytes(bytes: Uint8Array, max = 40): string {
  let s = "";
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0x5c) s += "\\\\";
    else if (b === 0x22) s += '\\"';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else if (b === 0x0d) s += "\\r";
    else if (b === 0x0a) s += "\\n";
    else if (b === 0x09) s += "\\t";
    else if (b === 0x00) s += "\\0";
    else s += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `"${s}${bytes.length > max ? "…" : ""}"`;
}

/**
 * Incremental match of a reply against `expect`, keeping at most expect.length bytes:
 * feed() each chunk; the state says whether the reply matched, diverged or needs more.
 */
export class ReplyMatcher {
  private readonly got: Buffer;
  private n = 0;
  /** Set on divergence: what came, up to a few bytes past the first difference. */
  mismatch: Buffer | undefined;

  constructor(readonly expect: Buffer) {
    this.got = Buffer.alloc(expect.length);
  }

  /** "match" once the reply starts with `expect`, "mismatch" at the first differing byte, else "more". */
  feed(chunk: Buffer): "match" | "mismatch" | "more" {
    const e = this.expect;
    const take = Math.min(chunk.length, e.length - this.n);
    for (let i = 0; i < take; i++) {
      if (chunk[i] !== e[this.n + i]) {
        // Show what came: the matching part, then some of the rest of this chunk.
        this.mismatch = Buffer.concat([this.got.subarray(0, this.n), chunk.subarray(0, Math.min(chunk.length, i + 32))]);
        return "mismatch";
      }
    }
    chunk.copy(this.got, this.n, 0, take);
    this.n += take;
    return this.n === e.length ? "match" : "more";
  }

  /** The matching bytes received so far. */
  received(): Buffer {
    return this.got.subarray(0, this.n);
  }
}
