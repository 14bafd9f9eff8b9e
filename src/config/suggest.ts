/**
 * "did you mean …?" for an unknown config field: the known fields come from the zod
 * strictObject at that path of the schema, so the suggestion can never name a field that
 * does not exist there.
 */
import type { z } from "zod";

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
}

const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

/** Field names of the object schema at `path` below `root` (wrappers and arrays looked through); undefined when there is none. */
export function knownFields(root: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let s: unknown = root;
  let i = 0;
  for (let steps = 0; steps < 256; steps++) {
    const def = defOf(s);
    if (!def) return undefined;
    if (def.innerType) s = def.innerType; // optional, nullable, default, prefault, readonly, …
    else if (def.type === "pipe") s = def.in;
    else if (def.type === "array") {
      if (typeof path[i] !== "number") return undefined;
      s = def.element;
      i++;
    } else if (def.type === "object" && def.shape) {
      if (i === path.length) return Object.keys(def.shape);
      const key = path[i];
      if (typeof key !== "string" || !Object.hasOwn(def.shape, key)) return undefined;
      s = def.shape[key];
      i++;
    } else return undefined;
  }
  return undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions: "wieght" is 1 from "weight"). */
export function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Math.abs(a.length - b.length);
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The known field an unknown `key` most likely meant: within edit distance 2 (1 for keys
 * shorter than 6, none for shorter than 3), or one a prefix of the other (3+ characters),
 * ignoring case. Undefined when nothing is that close.
 */
export function nearestField(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  const limit = k.length < 3 ? 0 : k.length < 6 ? 1 : 2;
  for (const name of known) {
    const n = name.toLowerCase();
    let score = editDistance(k, n);
    if (score > limit) {
      const prefix = k.length >= 3 && n.length >= 3 && (n.startsWith(k) || k.startsWith(n));
      if (!prefix) continue;
      score = limit + 1 + Math.abs(n.length - k.length) / 1000; // after every near miss; shortest first
    }
    if (score < bestScore) {
      best = name;
      bestScore = score;
    }
  }
  return best;
}
