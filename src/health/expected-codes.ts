/**
 * `expected_codes` of an HTTP health check (SPEC §4): the one parser, used by the config
 * schema to refuse a string and by the HTTP prober to match statuses, so every string that
 * validates also works. Pure.
 *
 * Grammar (as HAProxy's `http-check expect status` lists and Octavia's expected_codes):
 * comma-separated items, each a code or an ascending range `lo-hi`, codes 100-599, no
 * spaces: "200", "200,202", "200-299", "200-299,302".
 */
import { Lb4Error } from "../errors.js";

export const EXPECTED_CODES_INVALID = "LB4.HEALTH_EXPECTED_CODES_INVALID";

/** A matcher for HTTP status codes; `text` is the source string, for details. */
export interface ExpectedCodes {
  (status: number): boolean;
  readonly text: string;
}

const MIN_CODE = 100;
const MAX_CODE = 599;
const CODE = /^[0-9]{3}$/;

const FORMS = 'use a code ("200"), a list ("200,202"), a range ("200-299") or a list of both ("200-299,302")';

function parseCode(s: string): number | { error: string } {
  if (!CODE.test(s)) return { error: `"${s}" is not a 3-digit HTTP status code; ${FORMS}` };
  const n = Number(s);
  if (n < MIN_CODE || n > MAX_CODE) return { error: `${s} is outside ${MIN_CODE}-${MAX_CODE}; ${FORMS}` };
  return n;
}

/** Inclusive [lo, hi] pairs, flattened: [lo0, hi0, lo1, hi1, …]. */
function parse(text: unknown): { error: string } | { ranges: number[] } {
  if (typeof text !== "string" || text.length === 0) return { error: `is empty; ${FORMS}` };
  const ranges: number[] = [];
  for (const item of text.split(",")) {
    if (item === "") return { error: `"${text}" has an empty item (a stray comma); ${FORMS}` };
    const parts = item.split("-");
    if (parts.length > 2) return { error: `"${item}" is not a code or a range; ${FORMS}` };
    const lo = parseCode(parts[0]!);
    if (typeof lo !== "number") return lo;
    const hi = parts.length === 2 ? parseCode(parts[1]!) : lo;
    if (typeof hi !== "number") return hi;
    if (lo > hi) return { error: `range "${item}" runs backwards; write the lower code first ("${hi}-${lo}")` };
    ranges.push(lo, hi);
  }
  return { ranges };
}

/** Error text for an invalid `expected_codes`, or undefined when valid (the config schema calls this). */
export function validateExpectedCodes(text: string): string | undefined {
  const r = parse(text);
  return "error" in r ? r.error : undefined;
}

/** Throws Lb4Error LB4.HEALTH_EXPECTED_CODES_INVALID on an invalid string. */
export function parseExpectedCodes(text: string): ExpectedCodes {
  const r = parse(text);
  if ("error" in r) throw new Lb4Error(EXPECTED_CODES_INVALID, `invalid expected_codes: ${r.error}`);
  const { ranges } = r;
  const match = (status: number): boolean => {
    for (let i = 0; i < ranges.length; i += 2) if (status >= ranges[i]! && status <= ranges[i + 1]!) return true;
    return false;
  };
  return Object.assign(match, { text });
}
