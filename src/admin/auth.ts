/**
 * Admin API admission (SPEC §8).
 *
 * Browser safety first (`admitRequest`): a web page must not be able to drive the API, by
 * CSRF (a form or no-cors POST from another origin) or by DNS rebinding (a foreign name that
 * resolves to our address, which makes the page same-origin). So a foreign `Host` is 403, a
 * foreign `Origin` is 403, and a write without `Content-Type: application/json` is 415 — a
 * browser cannot send that type cross-origin without a CORS preflight, which we never grant.
 *
 * Then authentication (`authorize`): a shared token in `X-Auth-Token` or
 * `Authorization: Bearer <token>`. The comparison is constant-time: both sides are hashed
 * to equal-length SHA-256 digests first, so neither the token's content nor its length
 * leaks through timing. Pure apart from hashing; no sockets here.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Clock } from "../clock.js";
import { Lb4Error } from "../errors.js";
import { ipFamily, ipToBigInt, isLoopback } from "../ip.js";

/**
 * Paths that never need the token: the liveness probe for orchestrators, and the dashboard's
 * static files (they hold no data; the page asks for the token when the API answers 401).
 */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/healthz", "/", "/dashboard/app.js", "/dashboard/app.css", "/dashboard/favicon.svg"]);

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

// ---------------------------------------------------------------- browser safety

/** A host as compared: `key` is canonical (an IP's family and value, or a lower-case name). */
export interface HostName {
  key: string;
  port: number | undefined;
}

/** Canonical key of a bare host: IPs by value (so `::1`, `0:0::1` agree), names lower-case without a final dot. */
export function hostKey(host: string): string | undefined {
  const ip = ipToBigInt(host);
  if (ip) return `ip${ip.family}:${ip.value}`;
  if (!/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/i.test(host)) return undefined;
  return host.toLowerCase().replace(/\.$/, "");
}

/**
 * A `Host` header value (or an allowed_hosts entry): a name, an IPv4 address or a
 * bracketed IPv6 address, with an optional `:port`. undefined when it is none of those
 * (userinfo, a path, an unbracketed IPv6 address, spaces…).
 */
export function parseHost(value: string): HostName | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/i.exec(value);
  if (!m) return undefined;
  if (m[1] !== undefined && ipFamily(m[1]) !== 6) return undefined;
  const key = hostKey((m[1] ?? m[2])!);
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (key === undefined || (port !== undefined && port > 65535)) return undefined;
  return { key, port };
}

export interface AdminNamesOptions {
  /** The address the admin listener is bound to (no brackets), e.g. "127.0.0.1", "::1", "0.0.0.0". */
  listenHost: string;
  /** Further names, each with the config field it came from (for the start-up error). */
  extra?: ReadonlyArray<{ field: string; value: string }>;
  /** The host's own addresses (os.networkInterfaces); read only for a wildcard listener. */
  interfaces: () => readonly string[];
  clock: Clock;
}

/** How often, at most, an unknown IP in `Host` makes a wildcard listener re-read the host's addresses. */
export const INTERFACES_REFRESH_MS = 1000;

/**
 * The names the admin API answers to (SPEC §8): its own address; `localhost` when it
 * listens on loopback or on every address; the host's addresses when it listens on 0.0.0.0
 * or ::; the `extra` names (admin.allowed_hosts, cluster.advertise). Addresses can change
 * after start (DHCP, a new interface), so an IP that is not known re-reads them, at most
 * once per INTERFACES_REFRESH_MS.
 */
export class AdminNames {
  private readonly fixed = new Set<string>();
  private readonly wildcard: boolean;
  private ifaces = new Set<string>();
  private ifacesReadAt = -Infinity;

  constructor(private readonly opts: AdminNamesOptions) {
    const listen = hostKey(opts.listenHost);
    if (listen === undefined) throw new Lb4Error("LB4.ADMIN_LISTEN_INVALID", `admin.listen host "${opts.listenHost}" is not an IP address`);
    this.fixed.add(listen);
    this.wildcard = ipToBigInt(opts.listenHost)?.value === 0n;
    if (this.wildcard || isLoopback(opts.listenHost)) this.fixed.add("localhost");
    for (const { field, value } of opts.extra ?? []) {
      const h = parseHost(value.trim());
      if (!h) {
        throw new Lb4Error(
          "LB4.ADMIN_ALLOWED_HOST_INVALID",
          `${field} "${value}" is not a host name or IP address; write a name such as lb4.example.com, an address such as 10.0.0.5 or [fd00::5] (a :port is allowed and ignored)`,
        );
      }
      this.fixed.add(h.key);
    }
    if (this.wildcard) this.readInterfaces();
  }

  has(key: string): boolean {
    if (this.fixed.has(key)) return true;
    if (!this.wildcard || !key.includes(":")) return false; // only an IP key has a ":"; names never re-read
    if (this.ifaces.has(key)) return true;
    if (this.opts.clock.now() - this.ifacesReadAt < INTERFACES_REFRESH_MS) return false;
    this.readInterfaces();
    return this.ifaces.has(key);
  }

  private readInterfaces(): void {
    const next = new Set<string>();
    for (const a of this.opts.interfaces()) {
      const k = hostKey(a);
      if (k !== undefined) next.add(k);
    }
    this.ifaces = next;
    this.ifacesReadAt = this.opts.clock.now();
  }
}

/** A request refused before its token is looked at. */
export interface Refusal {
  status: 403 | 415;
  code: "LB4.FORBIDDEN_HOST" | "LB4.FORBIDDEN_ORIGIN" | "LB4.UNSUPPORTED_MEDIA_TYPE";
  message: string;
}

export interface AdmissionRequest {
  method: string;
  /** Each header's values as sent (node's `req.headersDistinct`), so a repeated Host or Origin is seen. */
  headers: Record<string, string[] | undefined>;
}

/** Methods that never carry a change, so need no JSON body type. */
const READ_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether a request must declare `Content-Type: application/json`: every method that may
 * change something (POST — reload too, even without a body — PUT, PATCH, …), except a
 * DELETE without a body. A browser cannot send a cross-origin DELETE at all without a
 * preflight, and a rebinding page (same-origin to the browser) is stopped by the Host rule.
 */
export function needsJsonType(method: string, headers: AdmissionRequest["headers"]): boolean {
  if (READ_METHODS.has(method)) return false;
  if (method !== "DELETE") return true;
  const length = headers["content-length"]?.[0];
  return headers["transfer-encoding"] !== undefined || (length !== undefined && Number(length) !== 0);
}

/** `application/json`, parameters such as `; charset=utf-8` allowed. */
export function isJsonType(value: string | undefined): boolean {
  return value !== undefined && /^application\/json[ \t]*(?:;.*)?$/is.test(value.trim());
}

/** Whether `origin` is exactly the origin the request was addressed to (its Host, same effective port). */
export function sameOrigin(origin: string, host: HostName): boolean {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file:, some redirects) included
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.origin !== origin) return false;
  const o = parseHost(u.host);
  const defaultPort = u.protocol === "https:" ? 443 : 80;
  return o !== undefined && o.key === host.key && (o.port ?? defaultPort) === (host.port ?? defaultPort);
}

/** At most this much of a refused header value is quoted back. */
const QUOTE_MAX = 100;
const quote = (s: string) => JSON.stringify(s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}…` : s);

/**
 * The browser-safety checks, in this order: Host (403) → Origin (403) → body type of a
 * write (415). They come before the token check, so a foreign page learns nothing about a
 * token it guesses. A request without Host (HTTP/1.0; node refuses HTTP/1.1 without one)
 * passes the Host rule — no browser sends one — but then cannot carry an Origin. The port
 * in Host is not compared: a rebinding page is recognised by its name, and a proxy in front
 * may use another port. The refusal never lists the names, which a rebinding page could read.
 */
export function admitRequest(req: AdmissionRequest, names: AdminNames): Refusal | undefined {
  const hosts = req.headers["host"];
  let host: HostName | undefined;
  if (hosts !== undefined) {
    host = hosts.length === 1 ? parseHost(hosts[0]!) : undefined;
    if (!host || !names.has(host.key)) {
      return {
        status: 403,
        code: "LB4.FORBIDDEN_HOST",
        message:
          `Host ${hosts.length === 1 ? quote(hosts[0]!) : `(${hosts.length} Host headers)`} is not a name of this admin API, so the request is refused ` +
          "(a web page must not reach it through DNS rebinding); use the address in admin.listen (or localhost), or add the name to admin.allowed_hosts",
      };
    }
  }
  const origins = req.headers["origin"];
  if (origins !== undefined && (origins.length !== 1 || !host || !sameOrigin(origins[0]!, host))) {
    return {
      status: 403,
      code: "LB4.FORBIDDEN_ORIGIN",
      message:
        `a request from the web origin ${quote(origins.join(", "))} is refused: the admin API answers only its own origin (its dashboard), so other pages cannot drive it; ` +
        "call it from a program that sends no Origin header, such as the lb4 CLI or curl",
    };
  }
  if (needsJsonType(req.method, req.headers)) {
    const types = req.headers["content-type"];
    if (types === undefined || types.length !== 1 || !isJsonType(types[0])) {
      return {
        status: 415,
        code: "LB4.UNSUPPORTED_MEDIA_TYPE",
        message:
          `${req.method} needs Content-Type: application/json (got ${types === undefined ? "none" : quote(types.join(", "))}); ` +
          "send the body as JSON with that header, e.g. curl -H 'Content-Type: application/json'",
      };
    }
  }
  return undefined;
}
