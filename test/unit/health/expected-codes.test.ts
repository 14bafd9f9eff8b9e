import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { healthMonitorSchema } from "../../../src/config/schema.js";
import { EXPECTED_CODES_INVALID, parseExpectedCodes, validateExpectedCodes } from "../../../src/health/expected-codes.js";

describe("expected_codes parser", () => {
  const valid: [string, number[], number[]][] = [
    ["200", [200], [201, 199, 404, 0]],
    ["404", [404], [200, 403]],
    ["200,202", [200, 202], [201, 203]],
    ["200,202,204,301", [200, 202, 204, 301], [203, 302]],
    ["200-299", [200, 250, 299], [199, 300, 404]],
    ["200-200", [200], [201]],
    ["100-599", [100, 599], [99, 600]],
    ["301-302", [301, 302], [300, 303]],
    ["200-299,302", [200, 250, 299, 302], [199, 300, 301, 303]],
    ["200,202-204", [200, 202, 203, 204], [201, 205]],
    ["302,200-204,404-404", [302, 200, 204, 404], [205, 301, 403, 405]],
    ["200,200,200-201", [200, 201], [202]],
  ];
  it.each(valid)("%s is valid", (text, hits, misses) => {
    expect(validateExpectedCodes(text)).toBeUndefined();
    const m = parseExpectedCodes(text);
    expect(m.text).toBe(text);
    for (const c of hits) expect(m(c), `${c} in ${text}`).toBe(true);
    for (const c of misses) expect(m(c), `${c} not in ${text}`).toBe(false);
  });

  const invalid: [string, RegExp][] = [
    ["", /empty/],
    [" ", /not a 3-digit/],
    ["20", /not a 3-digit/],
    ["2000", /not a 3-digit/],
    ["abc", /not a 3-digit/],
    ["2xx", /"200-299"/],
    ["200 ", /not a 3-digit/],
    [" 200", /not a 3-digit/],
    ["200, 202", /not a 3-digit/],
    ["200,", /empty item/],
    [",200", /empty item/],
    ["200,,202", /empty item/],
    ["200-", /not a 3-digit/],
    ["-200", /not a 3-digit/],
    ["299-200", /runs backwards; write the lower code first \("200-299"\)/],
    ["200,299-200", /runs backwards/],
    ["200-299-300", /not a code or a range/],
    ["099", /outside 100-599/],
    ["600", /outside 100-599/],
    ["200-600", /outside 100-599/],
    ["2e2", /not a 3-digit/],
    ["+200", /not a 3-digit/],
    ["200.0", /not a 3-digit/],
    ["0x0C8", /not a 3-digit/],
    ["２００", /not a 3-digit/],
  ];
  it.each(invalid)("%j is rejected: %s", (text, reason) => {
    const err = validateExpectedCodes(text);
    expect(err).toMatch(reason);
    expect(() => parseExpectedCodes(text)).toThrow(expect.objectContaining({ code: EXPECTED_CODES_INVALID }));
  });
});

/** The schema's verdict on one expected_codes string: undefined = accepted, else the message. */
function schemaVerdict(text: string): { ok: true; value: string } | { ok: false; message: string; code: unknown } {
  const r = healthMonitorSchema.safeParse({ type: "HTTP", expected_codes: text });
  if (r.success) return { ok: true, value: r.data.expected_codes };
  const issue = r.error.issues.find((i) => i.path[0] === "expected_codes")!;
  return { ok: false, message: issue.message, code: (issue as { params?: { code?: unknown } }).params?.code };
}

describe("schema and prober agree on expected_codes", () => {
  // Strings over the alphabet the grammar uses, plus a few that it must refuse.
  const soup = fc.string({ unit: fc.constantFrom("1", "2", "3", "5", "6", "9", "0", ",", "-", " ", "x"), maxLength: 16 });
  const code = fc.integer({ min: 100, max: 599 });
  const item = fc.oneof(code.map(String), fc.tuple(code, code).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`));
  const wellFormed = fc.array(item, { minLength: 1, maxLength: 6 }).map((xs) => xs.join(","));

  it("every string the schema accepts is parsed by the prober, and every one it refuses is refused with the same reason", () => {
    fc.assert(
      fc.property(fc.oneof(soup, wellFormed), (text) => {
        const v = schemaVerdict(text);
        if (v.ok) {
          expect(v.value).toBe(text);
          expect(() => parseExpectedCodes(text)).not.toThrow();
        } else {
          expect(v.code).toBe(EXPECTED_CODES_INVALID);
          expect(() => parseExpectedCodes(text)).toThrow(`invalid expected_codes: ${v.message}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("a list of codes and ascending ranges is accepted and matches exactly its codes", () => {
    fc.assert(
      fc.property(wellFormed, code, (text, status) => {
        expect(schemaVerdict(text).ok).toBe(true);
        const inItems = text.split(",").some((it) => {
          const [lo, hi = lo] = it.split("-").map(Number);
          return status >= lo! && status <= hi!;
        });
        expect(parseExpectedCodes(text)(status)).toBe(inItems);
      }),
      { numRuns: 500 },
    );
  });
});
