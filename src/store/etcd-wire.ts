/**
 * The wire format of etcd's v3 JSON gateway (grpc-gateway over etcd's protobufs): proto3 JSON,
 * so int64 fields arrive as decimal strings, bytes as base64, and fields at their default
 * (0, false, empty) are left out entirely (`succeeded`, `kvs`, `count`, an event's `type` PUT).
 * Everything here parses or builds that format; nothing knows about lb4.
 */
import { z } from "zod";
import { STORE_BAD_RESPONSE, STORE_MESSAGE_TOO_LARGE, StoreError } from "../errors.js";

export const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string): string => Buffer.from(s, "base64").toString("utf8");

/** The key range that holds every key starting with `prefix` (etcd's "prefix + 1" rule). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]! += 1;
      return end.toString("base64");
    }
  }
  // An empty prefix (or all 0xff) means "to the end of the keyspace": etcd spells that "\0".
  return Buffer.from([0]).toString("base64");
}

/** int64 revisions and counters: decimal strings that must fit a JS number exactly. */
const int = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) ctx.addIssue({ code: "custom", message: `${v} is not a safe integer` });
  return n;
});
/** Lease and member ids are random int64s beyond 2^53: kept as decimal strings. */
const id = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform(String);
const bytes = z.string().transform(unb64);

export const headerSchema = z.looseObject({
  revision: int.optional(),
  member_id: id.optional(),
  raft_term: int.optional(),
});

const kvSchema = z.looseObject({
  key: bytes,
  value: bytes.optional(),
  create_revision: int.optional(),
  mod_revision: int.optional(),
  version: int.optional(),
  lease: id.optional(),
});

/** One key as the client hands it out. */
export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
  createRevision: number;
  /** Writes since the key was created (1 on creation). */
  version: number;
  /** The lease id the key is attached to, if any. */
  lease?: string;
}

export function toKeyValue(kv: z.infer<typeof kvSchema>): KeyValue {
  const out: KeyValue = {
    key: kv.key,
    value: kv.value ?? "",
    modRevision: kv.mod_revision ?? 0,
    createRevision: kv.create_revision ?? 0,
    version: kv.version ?? 0,
  };
  if (kv.lease !== undefined && kv.lease !== "0") out.lease = kv.lease;
  return out;
}

export const rangeSchema = z.looseObject({ header: headerSchema, kvs: z.array(kvSchema).optional(), more: z.boolean().optional(), count: int.optional() });
export const putSchema = z.looseObject({ header: headerSchema });
export const deleteSchema = z.looseObject({ header: headerSchema, deleted: int.optional() });
export const txnSchema = z.looseObject({
  header: headerSchema,
  succeeded: z.boolean().optional(),
  responses: z
    .array(
      z.looseObject({
        response_range: rangeSchema.partial({ header: true }).optional(),
        response_put: putSchema.partial({ header: true }).optional(),
        response_delete_range: deleteSchema.partial({ header: true }).optional(),
      }),
    )
    .optional(),
});
export const leaseGrantSchema = z.looseObject({ header: headerSchema, ID: id, TTL: int.optional(), error: z.string().optional() });
export const leaseKeepAliveSchema = z.looseObject({ result: z.looseObject({ header: headerSchema.optional(), ID: id.optional(), TTL: int.optional() }) });
export const statusSchema = z.looseObject({ header: headerSchema, version: z.string().optional(), leader: id.optional(), raftTerm: int.optional(), raftIndex: int.optional() });

const eventSchema = z.looseObject({ type: z.enum(["PUT", "DELETE"]).optional(), kv: kvSchema });
export const watchMessageSchema = z.looseObject({
  result: z
    .looseObject({
      header: headerSchema.optional(),
      watch_id: id.optional(),
      created: z.boolean().optional(),
      canceled: z.boolean().optional(),
      compact_revision: int.optional(),
      cancel_reason: z.string().optional(),
      events: z.array(eventSchema).optional(),
    })
    .optional(),
  error: z.looseObject({ grpc_code: z.number().optional(), message: z.string().optional() }).optional(),
});

/** A gateway error body: `{"error": "...", "message": "...", "code": <gRPC code>}`. */
export const gatewayErrorSchema = z.looseObject({ message: z.string().optional(), error: z.string().optional(), code: z.number().optional() });

/** Parse one JSON answer against `schema`; a mismatch is the server's fault, said so. */
export function parseAnswer<T extends z.ZodType>(schema: T, text: string, what: string): z.output<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StoreError(STORE_BAD_RESPONSE, `${what}: etcd answered with something that is not JSON (${text.slice(0, 80)})`, { cause: err });
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new StoreError(STORE_BAD_RESPONSE, `${what}: unexpected answer from etcd: ${r.error.issues[0]?.message ?? "wrong shape"} (${text.slice(0, 120)})`);
  return r.data;
}

/** Read a whole response body, refusing one larger than `cap` bytes. */
export async function readCapped(res: Response, cap: number, what: string): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > cap) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(what, cap);
  }
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(what, cap);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

export function tooLarge(what: string, cap: number): StoreError {
  return new StoreError(STORE_MESSAGE_TOO_LARGE, `${what}: one message from etcd exceeds ${cap} bytes; raise maxMessageBytes or keep values smaller`);
}

/**
 * Splits the gateway's stream (one JSON object per line) into messages. It holds at most one
 * unfinished message, and refuses one longer than `cap` bytes.
 */
export class LineSplitter {
  private pending: Uint8Array[] = [];
  private pendingSize = 0;
  constructor(
    private readonly cap: number,
    private readonly what: string,
  ) {}

  /** The complete lines in `chunk` (with what came before), as strings. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const part = chunk.subarray(start, nl);
      if (this.pendingSize + part.byteLength > this.cap) throw tooLarge(this.what, this.cap);
      const line = this.pendingSize === 0 ? Buffer.from(part.buffer, part.byteOffset, part.byteLength) : Buffer.concat([...this.pending, part]);
      this.pending = [];
      this.pendingSize = 0;
      const text = line.toString("utf8").trim();
      if (text !== "") lines.push(text);
      start = nl + 1;
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      this.pendingSize += rest.byteLength;
      if (this.pendingSize > this.cap) throw tooLarge(this.what, this.cap);
      // Copy: the stream may reuse its chunk buffers.
      this.pending.push(Uint8Array.prototype.slice.call(rest));
    }
    return lines;
  }

  /** What is left when the stream ends (a last message without its newline). */
  end(): string | undefined {
    if (this.pendingSize === 0) return undefined;
    const text = Buffer.concat(this.pending).toString("utf8").trim();
    this.pending = [];
    this.pendingSize = 0;
    return text === "" ? undefined : text;
  }
}
