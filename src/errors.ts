/**
 * Error classes with stable codes (undici / Node core habit): callers and tests match on
 * `code`, never on message text. Messages say what was wrong and what to do.
 */
export class Lb4Error extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A field broke the schema (type, range, format) and no finer code applies. */
export const CONFIG_INVALID = "LB4.CONFIG_INVALID";
/** A field the schema does not know (the message suggests the nearest one). */
export const UNKNOWN_FIELD = "LB4.UNKNOWN_FIELD";

/** One validation problem: a dotted/indexed field path and the rule it broke. */
export interface Problem {
  path: string;
  message: string;
  /**
   * Stable code of the rule, e.g. LB4.CROSSVPC_IPV4_ONLY. Every problem of a ConfigError has
   * one (LB4.CONFIG_INVALID when its maker gave none); request-shape problems of the admin
   * API may not.
   */
  code?: string;
}

/** `path: message [CODE]`, the line `lb4 validate`, `lb4 start` and the admin API print. */
export function formatProblem(p: Problem): string {
  const code = p.code ? ` [${p.code}]` : "";
  return p.path ? `${p.path}: ${p.message}${code}` : `${p.message}${code}`;
}

/** The whole config (or a change) was rejected; `problems` lists every reason. */
export class ConfigError extends Lb4Error {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[], what = "configuration") {
    const coded = problems.map((p) => (p.code ? p : { ...p, code: CONFIG_INVALID }));
    super(
      coded[0]?.code ?? CONFIG_INVALID,
      `invalid ${what} (${coded.length} problem${coded.length === 1 ? "" : "s"}):\n` + coded.map((p) => `  - ${formatProblem(p)}`).join("\n"),
    );
    this.problems = coded;
  }
}

/** A request named something that does not exist (HTTP 404 at the admin API). */
export class NotFoundError extends Lb4Error {
  constructor(kind: string, id: string) {
    super("LB4.NOT_FOUND", `${kind} "${id}" does not exist; list them to see the valid ids`);
  }
}

/** A request conflicts with current state (HTTP 409 at the admin API). */
export class ConflictError extends Lb4Error {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** A feature of the schema that this build cannot serve yet: refused, never ignored. */
export class NotSupportedError extends Lb4Error {
  constructor(message: string) {
    super("LB4.NOT_SUPPORTED", message);
  }
}

/** No etcd endpoint answered within the deadline, or the cluster has no quorum (HTTP 503). */
export const STORE_UNAVAILABLE = "LB4.STORE_UNAVAILABLE";
/** etcd answered and refused the request (bad argument, unknown path, permission). */
export const STORE_REJECTED = "LB4.STORE_REJECTED";
/** The lease expired or was revoked: grant a new one and write the keys again. */
export const STORE_LEASE_NOT_FOUND = "LB4.STORE_LEASE_NOT_FOUND";
/** One response or watch message exceeded the client's size cap. */
export const STORE_MESSAGE_TOO_LARGE = "LB4.STORE_MESSAGE_TOO_LARGE";
/** etcd's answer did not have the expected shape (not JSON, a missing field). */
export const STORE_BAD_RESPONSE = "LB4.STORE_BAD_RESPONSE";

/** A call to the store (etcd, SPEC §11) failed; `tried` says which endpoints and why. */
export class StoreError extends Lb4Error {
  /** Each endpoint tried, in order, with why it failed. */
  readonly tried: readonly { endpoint: string; reason: string }[];
  /** A write may have been applied although the call failed: read before repeating it. */
  readonly indeterminate: boolean;
  constructor(code: string, message: string, options: { tried?: readonly { endpoint: string; reason: string }[]; indeterminate?: boolean; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause });
    this.tried = options.tried ?? [];
    this.indeterminate = options.indeterminate ?? false;
  }
}
