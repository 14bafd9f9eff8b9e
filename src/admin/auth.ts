/**
 * Admin API authentication (SPEC §8): a shared token in `X-Auth-Token` or
 * `Authorization: Bearer <token>`. The comparison is constant-time: both sides are hashed
 * to equal-length SHA-256 digests first, so neither the token's content nor its length
 * leaks through timing. Pure apart from hashing; no sockets here.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** Paths that never need the token (cheap liveness probe for orchestrators). */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/healthz"]);

type HeaderValue = string | string[] | undefined;

/** The token a request presents, from `X-Auth-Token` or `Authorization: Bearer`; undefined when none. */
export function presentedToken(headers: Record<string, HeaderValue>): string | undefined {
  const x = first(headers["x-auth-token"]);
  if (x !== undefined && x !== "") return x;
  const auth = first(headers["authorization"]);
  if (auth === undefined) return undefined;
  const m = /^Bearer[ \t]+(.+)$/i.exec(auth.trim());
  return m ? m[1]!.trim() : undefined;
}

function first(v: HeaderValue): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Constant-time equality of two tokens (equal-length digests, crypto.timingSafeEqual). */
export function tokensEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export type AuthResult = { ok: true } | { ok: false; reason: "missing" | "wrong" };

/**
 * Decide whether a request may proceed. No configured token (loopback-only admin): every
 * request passes. With a token: every path except PUBLIC_PATHS needs the exact token.
 */
export function authorize(path: string, headers: Record<string, HeaderValue>, token: string | undefined): AuthResult {
  if (token === undefined || PUBLIC_PATHS.has(path)) return { ok: true };
  const presented = presentedToken(headers);
  if (presented === undefined) return { ok: false, reason: "missing" };
  return tokensEqual(presented, token) ? { ok: true } : { ok: false, reason: "wrong" };
}
