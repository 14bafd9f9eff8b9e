/**
 * User input — a config file's document, an object handed to startLoadBalancer, an admin
 * API body — must be plain data before anything copies or reads it: no `__proto__`,
 * `constructor` or `prototype` keys (copied with `out[k] = v`, `__proto__` replaces the
 * copy's prototype and every field it carries reads as if it were set), no object whose own
 * prototype carries fields. The one home of that rule; pure.
 */
import type { Problem } from "../errors.js";

export const FORBIDDEN_KEY = "LB4.FORBIDDEN_KEY";

const FORBIDDEN: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/** Enough to act on; a hostile document could hold millions. */
const MAX_PROBLEMS = 20;

/** `["loadbalancers", 0, "pools", 1]` → `loadbalancers[0].pools[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** Every way `value` is not plain data, each with its path below `at`; [] when it is. */
export function plainDataProblems(value: unknown, at: readonly PropertyKey[] = []): Problem[] {
  const problems: Problem[] = [];
  const path: PropertyKey[] = [...at];
  const walk = (v: unknown): void => {
    if (typeof v !== "object" || v === null || problems.length >= MAX_PROBLEMS) return;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        walk(v[i]);
        path.pop();
      }
      return;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      problems.push({ path: formatPath(path), message: "must be plain data: an object with a prototype of its own is not accepted", code: FORBIDDEN_KEY });
      return;
    }
    for (const k of Object.keys(v)) {
      path.push(k);
      if (FORBIDDEN.has(k)) problems.push({ path: formatPath(path), message: `"${k}" is not allowed as a field name; remove it`, code: FORBIDDEN_KEY });
      else walk((v as Record<string, unknown>)[k]);
      path.pop();
    }
  };
  walk(value);
  return problems;
}
