/**
 * The import boundary of issue 13: the data plane never reaches the control plane, so it
 * runs the same in a worker that only receives snapshots. Read from the import graph of src/.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Relative imports of a file, as absolute .ts paths (type-only imports included: they are coupling too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  const patterns = [
    /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/g, // import … from "./x.js", export … from
    /(?:^|\n)\s*import\s+"(\.[^"]+)"/g, // import "./x.js" (side effects)
    /\bimport\(\s*"(\.[^"]+)"\s*\)/g, // import("./x.js")
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  return out;
}

const graph = new Map(files(src).map((f) => [f, importsOf(f)]));
const rel = (f: string) => path.relative(src, f);

/** Every file reachable from `start`, with one import chain to each. */
function reach(start: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[start, [rel(start)]]]);
  const todo = [start];
  while (todo.length) {
    const f = todo.pop()!;
    for (const dep of graph.get(f) ?? []) {
      if (seen.has(dep)) continue;
      seen.set(dep, [...seen.get(f)!, rel(dep)]);
      todo.push(dep);
    }
  }
  return seen;
}

/** What the data plane may never reach: the control plane and its parts. */
const forbidden = [/^control\//, /^engine\.ts$/, /^state\//, /^health\/checker\.ts$/, /^health\/probers\//, /^admin\//, /^cli\//, /^metrics\//, /^config\/(validate|load|support)\.ts$/];

describe("architecture", () => {
  it("finds the data plane and its imports (the test reads real files)", () => {
    expect(graph.has(path.join(src, "dataplane/dataplane.ts"))).toBe(true);
    expect(importsOf(path.join(src, "dataplane/dataplane.ts")).map(rel)).toContain("model/plan.ts");
  });

  it.each([...graph.keys()].filter((f) => rel(f).startsWith("dataplane/")).map(rel))("dataplane file %s reaches no control-plane module", (file) => {
    const reached = reach(path.join(src, file));
    const bad = [...reached.entries()].filter(([f]) => forbidden.some((re) => re.test(rel(f)))).map(([, chain]) => chain.join(" → "));
    expect(bad).toEqual([]);
  });
});
