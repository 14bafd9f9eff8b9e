import { describe, expect, it } from "vitest";
import { AdminNames, INTERFACES_REFRESH_MS, admitRequest, authorize, hostKey, isJsonType, parseHost, presentedToken, sameOrigin, tokensEqual } from "../../../src/admin/auth.js";
import { FakeClock } from "../../../src/clock.js";

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

describe("parseHost", () => {
  it.each([
    ["127.0.0.1:9870", { key: hostKey("127.0.0.1"), port: 9870 }],
    ["127.0.0.1", { key: hostKey("127.0.0.1"), port: undefined }],
    ["[::1]:9870", { key: hostKey("::1"), port: 9870 }],
    ["[0:0:0:0:0:0:0:1]", { key: hostKey("::1"), port: undefined }],
    ["LocalHost.:80", { key: "localhost", port: 80 }],
    ["lb4.example.com", { key: "lb4.example.com", port: undefined }],
    ["::1", undefined],
    ["[127.0.0.1]", undefined],
    ["evil.example@127.0.0.1", undefined],
    ["127.0.0.1/x", undefined],
    ["a b", undefined],
    ["", undefined],
    ["host:", undefined],
    ["host:65536", undefined],
  ])("%j → %j", (value, expected) => {
    expect(parseHost(value)).toEqual(expected);
  });

  it("keys an IPv4-mapped IPv6 address as its IPv4 address", () => {
    expect(parseHost("[::ffff:127.0.0.1]")?.key).toBe(hostKey("127.0.0.1"));
  });
});

describe("isJsonType", () => {
  it.each([
    ["application/json", true],
    ["application/json; charset=utf-8", true],
    ["Application/JSON;charset=UTF-8", true],
    ["text/plain", false],
    ["application/x-www-form-urlencoded", false],
    ["multipart/form-data; boundary=x", false],
    ["application/jsonp", false],
    ["text/plain; application/json", false],
    [undefined, false],
  ])("%j → %s", (value, expected) => {
    expect(isJsonType(value)).toBe(expected);
  });
});

describe("sameOrigin", () => {
  const h = (s: string) => parseHost(s)!;
  it.each([
    ["http://127.0.0.1:9870", "127.0.0.1:9870", true],
    ["http://localhost:9870", "localhost:9870", true],
    ["http://[::1]:9870", "[::1]:9870", true],
    ["https://lb4.example.com", "lb4.example.com", true],
    ["https://lb4.example.com", "lb4.example.com:443", true],
    ["http://lb4.example.com", "lb4.example.com:80", true],
    ["http://localhost:8080", "localhost:9870", false],
    ["http://evil.example:9870", "127.0.0.1:9870", false],
    ["http://127.0.0.1:9870/", "127.0.0.1:9870", false],
    ["null", "127.0.0.1:9870", false],
    ["file://", "127.0.0.1:9870", false],
    ["ftp://127.0.0.1:9870", "127.0.0.1:9870", false],
  ])("Origin %s, Host %s → %s", (origin, host, expected) => {
    expect(sameOrigin(origin, h(host))).toBe(expected);
  });
});

describe("AdminNames", () => {
  const names = (listenHost: string, extra: string[] = [], interfaces: string[] = []) =>
    new AdminNames({ listenHost, extra: extra.map((value, i) => ({ field: `admin.allowed_hosts[${i}]`, value })), interfaces: () => interfaces, clock: new FakeClock() });
  const has = (n: AdminNames, host: string) => n.has(parseHost(host)!.key);

  it.each([
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.1", "localhost", true],
    ["127.0.0.1", "[::1]", false],
    ["::1", "[::1]", true],
    ["::1", "localhost", true],
    ["127.0.0.1", "evil.example", false],
    ["127.0.0.1", "10.0.0.5", false],
    ["0.0.0.0", "0.0.0.0", true],
    ["0.0.0.0", "localhost", true],
    ["0.0.0.0", "10.0.0.5", true],
    ["::", "[fd00::5]", true],
    ["0.0.0.0", "10.0.0.6", false],
    ["10.0.0.5", "localhost", false],
    ["10.0.0.5", "127.0.0.1", false],
  ])("listening on %s, Host %s → %s", (listen, host, expected) => {
    expect(has(names(listen, [], ["127.0.0.1", "::1", "10.0.0.5", "fd00::5"]), host)).toBe(expected);
  });

  it("answers to admin.allowed_hosts names (a :port in the entry is ignored)", () => {
    const n = names("127.0.0.1", ["LB4.example.com", "proxy.internal:443", "[fd00::9]"]);
    expect(["lb4.example.com", "proxy.internal", "[fd00::9]", "other.example"].map((h) => has(n, h))).toEqual([true, true, true, false]);
  });

  it("refuses an allowed_hosts entry that is not a host, naming the field", () => {
    expect(() => names("127.0.0.1", ["ok.example", "http://x/"])).toThrow(expect.objectContaining({ code: "LB4.ADMIN_ALLOWED_HOST_INVALID", message: expect.stringContaining('admin.allowed_hosts[1] "http://x/"') }));
  });

  it("re-reads the host's addresses for an unknown IP, at most once per interval", () => {
    const clock = new FakeClock();
    let addrs = ["127.0.0.1"];
    let reads = 0;
    const n = new AdminNames({ listenHost: "0.0.0.0", interfaces: () => (reads++, addrs), clock });
    expect(reads).toBe(1);
    addrs = ["127.0.0.1", "10.1.1.1"];
    clock.advance(INTERFACES_REFRESH_MS);
    expect(has(n, "10.1.1.1")).toBe(true);
    expect(has(n, "10.9.9.9")).toBe(false);
    expect(has(n, "evil.example")).toBe(false);
    expect(reads).toBe(2);
    clock.advance(INTERFACES_REFRESH_MS);
    expect(has(n, "10.9.9.9")).toBe(false);
    expect(reads).toBe(3);
  });
});

describe("admitRequest", () => {
  const n = new AdminNames({ listenHost: "127.0.0.1", interfaces: () => [], clock: new FakeClock() });
  const json = { "content-type": ["application/json"] };
  it.each([
    ["GET, own Host", "GET", { host: ["127.0.0.1:9870"] }, undefined],
    ["GET, no Host (HTTP/1.0)", "GET", {}, undefined],
    ["GET, foreign Host", "GET", { host: ["evil.example:9870"] }, "LB4.FORBIDDEN_HOST"],
    ["GET, two Host headers", "GET", { host: ["127.0.0.1", "evil.example"] }, "LB4.FORBIDDEN_HOST"],
    ["GET, empty Host", "GET", { host: [""] }, "LB4.FORBIDDEN_HOST"],
    ["POST JSON, same origin", "POST", { host: ["localhost:9870"], origin: ["http://localhost:9870"], ...json }, undefined],
    ["POST JSON, foreign origin", "POST", { host: ["127.0.0.1:9870"], origin: ["http://evil.example"], ...json }, "LB4.FORBIDDEN_ORIGIN"],
    ["POST JSON, Origin null", "POST", { host: ["127.0.0.1:9870"], origin: ["null"], ...json }, "LB4.FORBIDDEN_ORIGIN"],
    ["POST JSON, Origin without Host", "POST", { origin: ["http://127.0.0.1:9870"], ...json }, "LB4.FORBIDDEN_ORIGIN"],
    ["POST text/plain", "POST", { host: ["127.0.0.1:9870"], "content-type": ["text/plain"] }, "LB4.UNSUPPORTED_MEDIA_TYPE"],
    ["POST without a type", "POST", { host: ["127.0.0.1:9870"] }, "LB4.UNSUPPORTED_MEDIA_TYPE"],
    ["POST with two types", "POST", { host: ["127.0.0.1:9870"], "content-type": ["text/plain", "application/json"] }, "LB4.UNSUPPORTED_MEDIA_TYPE"],
    ["PATCH form", "PATCH", { host: ["127.0.0.1:9870"], "content-type": ["application/x-www-form-urlencoded"] }, "LB4.UNSUPPORTED_MEDIA_TYPE"],
    ["DELETE without a body", "DELETE", { host: ["127.0.0.1:9870"] }, undefined],
    ["DELETE with Content-Length: 0", "DELETE", { host: ["127.0.0.1:9870"], "content-length": ["0"] }, undefined],
    ["DELETE with a text body", "DELETE", { host: ["127.0.0.1:9870"], "content-length": ["2"], "content-type": ["text/plain"] }, "LB4.UNSUPPORTED_MEDIA_TYPE"],
    ["foreign Host wins over a bad type", "POST", { host: ["evil.example"], "content-type": ["text/plain"] }, "LB4.FORBIDDEN_HOST"],
    ["foreign Origin wins over a bad type", "POST", { host: ["127.0.0.1"], origin: ["http://evil.example"] }, "LB4.FORBIDDEN_ORIGIN"],
  ])("%s", (_name, method, headers, code) => {
    expect(admitRequest({ method, headers }, n)?.code).toBe(code);
  });
});
