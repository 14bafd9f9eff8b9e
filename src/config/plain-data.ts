/**
 * User input — a config file's document, an object handed to startLoadBalancer, an admin
 * API body — must be plain data before anything copies or reads it: no `__proto__`,
 * `constructor` or `prototype` keys (copied with `out[k] = v`, `__proto__` replaces the
 * copy's prototype and every field it carries reads as if it were set), no object whose own
 * prototype carries fields — and nested at most MAX_NESTING deep, so that no walk of it
 * (interpolation, copies, formatting) can exhaust the stack. The one home of those rules; pure.
 */
import type { Problem } from "../errors.js";

export const FORBIDDEN_KEY = "LB4.FORBIDDEN_KEY";
export const TOO_DEEP = "LB4.CONFIG_TOO_DEEP";

/**
 * Objects and arrays inside one another, the outermost counting 1. lb4's own documents
 * need 7 (loadbalancers[].listeners[].ipgroup.ip_list); 32 leaves room and keeps every
 * recursive walk far from the stack's limit.
 */
export const MAX_NESTING = 32;

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
  // Shared objects (YAML aliases, JavaScript references) are walked again only when met
  // deeper than before, so the walk stays linear; an object inside itself is a cycle.
  const walkedAt = new Map<object, number>();
  const ancestors = new Set<object>();
  const walk = (v: unknown, depth: number): void => {
    if (typeof v !== "object" || v === null || problems.length >= MAX_PROBLEMS) return;
    if (ancestors.has(v)) {
      problems.push({ path: formatPath(path), message: "contains itself (a cycle); a configuration is a tree", code: TOO_DEEP });
      return;
    }
    const before = walkedAt.get(v);
    if (before !== undefined && before >= depth) return;
    walkedAt.set(v, depth);
    if (depth >= MAX_NESTING) {
      problems.push({ path: formatPath(path), message: `nests deeper than ${MAX_NESTING} levels of objects and lists; lb4 needs 7 at most`, code: TOO_DEEP });
      return;
    }
    ancestors.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        walk(v[i], depth + 1);
        path.pop();
      }
    } else {
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        problems.push({ path: formatPath(path), message: "must be plain data: an object with a prototype of its own is not accepted", code: FORBIDDEN_KEY });
      } else {
        for (const k of Object.keys(v)) {
          path.push(k);
          if (FORBIDDEN.has(k)) problems.push({ path: formatPath(path), message: `"${k}" is not allowed as a field name; remove it`, code: FORBIDDEN_KEY });
          else walk((v as Record<string, unknown>)[k], depth + 1);
          path.pop();
        }
      }
    }
    ancestors.delete(v);
  };
  walk(value, 0);
  return problems;
}
