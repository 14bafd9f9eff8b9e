/**
 * fast-check mutations of a JSON document, for config and admin-body fuzzing: set a random
 * place to an arbitrary value, delete it, add a key (prototype-polluting names included),
 * duplicate an array element, or nest deeply. A mutation is data (which place, what value),
 * applied deterministically so failures shrink and replay.
 */
import fc from "fast-check";
import { stringify } from "yaml";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Keys that must never reach an object's prototype (SPEC house rule: bad input changes nothing). */
export const POISON_KEYS = ["__proto__", "constructor", "prototype"] as const;

/** Set an own property, even one named __proto__ (plain assignment would set the prototype). */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * A value `depth` levels deep stands in the document as a marker string and is written out
 * as text by `serialise` ([[[…]]] or {"a":{"a":…}}, valid JSON and YAML flow style), so the
 * test's own recursive code (clone, stringify) never walks it.
 */
export function deep(depth: number, kind: "array" | "object"): Json {
  return `@@DEEP_${depth}_${kind}@@`;
}

function deepText(depth: number, kind: string): string {
  return kind === "array" ? "[".repeat(depth) + "1" + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** JSON (or YAML) text of a document, deep markers expanded. */
export function serialise(doc: Json, yaml: boolean): { text: string; ext: ".json" | ".yaml" } {
  const text = yaml ? stringify(doc, { aliasDuplicateObjects: false }) : JSON.stringify(doc);
  return { text: text.replace(/["']?@@DEEP_(\d+)_(array|object)@@["']?/g, (_m, d: string, k: string) => deepText(Number(d), k)), ext: yaml ? ".yaml" : ".json" };
}

const special = fc.constantFrom<Json>(
  "",
  " ",
  "${LB4_RELIABILITY_UNSET_VAR}",
  "${HOME}",
  "${",
  "127.0.0.1",
  "::1",
  "0.0.0.0",
  "256.1.1.1",
  "10.0.0.0/8",
  "x".repeat(5000),
  -1,
  0,
  1,
  65535,
  65536,
  1e308,
  -1e308,
  0.5,
  Number.MAX_SAFE_INTEGER,
  true,
  false,
  null,
  [],
  {},
  "TCP",
  "UDP",
  "ROUND_ROBIN",
  "SOURCE_IP",
);

export const anyValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: special },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(deep(200, "array"), deep(200, "object"), deep(2000, "array"), deep(5000, "object")) },
);

export type Mutation =
  | { kind: "set"; at: number; value: Json }
  | { kind: "delete"; at: number }
  | { kind: "add"; at: number; key: string; value: Json }
  | { kind: "dup"; at: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: anyValue }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("add" as const),
    at: fc.nat(),
    key: fc.oneof(fc.constantFrom(...POISON_KEYS), fc.constantFrom("id", "weight", "extra", "listen", "members"), fc.string({ maxLength: 12 })),
    value: anyValue,
  }),
  fc.record({ kind: fc.constant("dup" as const), at: fc.nat() }),
);

type Place = { parent: Record<string, unknown> | unknown[]; key: string | number };

/** Every place in the document (depth-first), bounded so a deep value added earlier stays cheap. */
function places(doc: unknown, out: Place[] = [], depth = 0): Place[] {
  if (depth > 12 || out.length > 2000) return out;
  if (Array.isArray(doc)) {
    doc.forEach((v, i) => {
      out.push({ parent: doc, key: i });
      places(v, out, depth + 1);
    });
  } else if (doc && typeof doc === "object") {
    for (const k of Object.keys(doc)) {
      out.push({ parent: doc as Record<string, unknown>, key: k });
      places((doc as Record<string, unknown>)[k], out, depth + 1);
    }
  }
  return out;
}

function containers(doc: unknown): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  if (doc && typeof doc === "object" && !Array.isArray(doc)) out.push(doc as Record<string, unknown>);
  for (const p of places(doc)) {
    const v = (p.parent as Record<string | number, unknown>)[p.key];
    if (v && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, unknown>);
  }
  return out;
}

/** Apply mutations to a deep copy of `doc`. */
export function mutate(doc: Json, ms: Mutation[]): Json {
  const copy = structuredClone(doc);
  for (const m of ms) {
    if (m.kind === "add") {
      const cs = containers(copy);
      if (cs.length === 0) continue;
      setOwn(cs[m.at % cs.length]!, m.key, structuredClone(m.value));
      continue;
    }
    const ps = places(copy);
    if (ps.length === 0) continue;
    const p = ps[m.at % ps.length]!;
    const parent = p.parent as Record<string | number, unknown>;
    if (m.kind === "set") {
      if (Array.isArray(p.parent)) parent[p.key] = structuredClone(m.value);
      else setOwn(parent as Record<string, unknown>, String(p.key), structuredClone(m.value));
    } else if (m.kind === "delete") {
      if (Array.isArray(p.parent)) p.parent.splice(p.key as number, 1);
      else delete parent[p.key];
    } else if (Array.isArray(p.parent)) {
      p.parent.push(structuredClone(p.parent[p.key as number]));
    }
  }
  return copy;
}

/** The document without its poison keys (deep copy). */
export function stripPoison(doc: Json): Json {
  if (Array.isArray(doc)) return doc.map(stripPoison);
  if (doc && typeof doc === "object") {
    const out: Record<string, Json> = {};
    for (const k of Object.keys(doc)) if (!(POISON_KEYS as readonly string[]).includes(k)) out[k] = stripPoison(doc[k]!);
    return out;
  }
  return doc;
}

/** The first poison key an object in the document has as its own, if any. */
export function poisonIn(doc: unknown, depth = 0): string | undefined {
  if (depth > 64 || !doc || typeof doc !== "object") return undefined;
  if (!Array.isArray(doc)) for (const k of POISON_KEYS) if (Object.prototype.hasOwnProperty.call(doc, k)) return k;
  for (const v of Object.values(doc)) {
    const k = poisonIn(v, depth + 1);
    if (k) return k;
  }
  return undefined;
}
