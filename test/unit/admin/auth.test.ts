import { describe, expect, it } from "vitest";
import { authorize, presentedToken, tokensEqual } from "../../../src/admin/auth.js";

describe("presentedToken", () => {
  it.each([
    [{ "x-auth-token": "abc" }, "abc"],
    [{ authorization: "Bearer abc" }, "abc"],
    [{ authorization: "bearer   abc  " }, "abc"],
    [{ authorization: "Basic YWJjOg==" }, undefined],
    [{ authorization: "Bearer" }, undefined],
    [{ "x-auth-token": "" }, undefined],
    [{ "x-auth-token": "x", authorization: "Bearer y" }, "x"],
    [{ "x-auth-token": ["first", "second"] }, "first"],
    [{}, undefined],
  ])("%j → %s", (headers, expected) => {
    expect(presentedToken(headers)).toBe(expected);
  });
});

describe("tokensEqual (constant-time over digests)", () => {
  it.each([
    ["s3cret", "s3cret", true],
    ["s3cret", "s3creT", false],
    ["s3cret", "s3cret-and-more", false],
    ["", "s3cret", false],
    ["é", "é", true],
  ])("%s vs %s → %s", (a, b, expected) => {
    expect(tokensEqual(a, b)).toBe(expected);
  });
});

describe("authorize", () => {
  it.each([
    ["no token configured: everything passes", "/v3/elb/pools", {}, undefined, { ok: true }],
    ["token configured, none sent", "/v3/elb/pools", {}, "t0k", { ok: false, reason: "missing" }],
    ["token configured, wrong one", "/v3/elb/pools", { "x-auth-token": "nope" }, "t0k", { ok: false, reason: "wrong" }],
    ["token configured, X-Auth-Token", "/v3/elb/pools", { "x-auth-token": "t0k" }, "t0k", { ok: true }],
    ["token configured, Bearer", "/metrics", { authorization: "Bearer t0k" }, "t0k", { ok: true }],
    ["/healthz needs no token", "/healthz", {}, "t0k", { ok: true }],
    ["unknown paths need the token too (no route discovery)", "/nope", {}, "t0k", { ok: false, reason: "missing" }],
  ])("%s", (_name, path, headers, token, expected) => {
    expect(authorize(path, headers, token)).toEqual(expected);
  });
});
