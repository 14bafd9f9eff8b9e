import { describe, expect, it } from "vitest";
import { generateMemberId, matchRoute, toHttpError, validationError } from "../../../src/admin/routes.js";
import { ConfigError, Lb4Error, NotFoundError, NotSupportedError } from "../../../src/errors.js";

describe("matchRoute", () => {
  it.each([
    ["GET", "/v3/elb/loadbalancers", "ok", {}],
    ["GET", "/v3/elb/loadbalancers/", "ok", {}],
    ["GET", "/v3/elb/loadbalancers/lb-1", "ok", { id: "lb-1" }],
    ["HEAD", "/v3/elb/pools/p1", "ok", { id: "p1" }],
    ["GET", "/v3/elb/pools/p1/members", "ok", { pool_id: "p1" }],
    ["POST", "/v3/elb/pools/p1/members", "ok", { pool_id: "p1" }],
    ["PUT", "/v3/elb/pools/p1/members/m%3A1", "ok", { pool_id: "p1", member_id: "m:1" }],
    ["DELETE", "/v3/elb/pools/p1/members/m-1", "ok", { pool_id: "p1", member_id: "m-1" }],
    ["GET", "/v3/elb/members", "ok", {}],
    ["POST", "/v3/elb/reload", "ok", {}],
    ["GET", "/healthz", "ok", {}],
    ["GET", "/metrics", "ok", {}],
  ])("%s %s → %s", (method, path, kind, params) => {
    const m = matchRoute(method, path);
    expect(m.kind).toBe(kind);
    if (m.kind === "ok") expect(m.params).toEqual(params);
  });

  it.each([
    ["GET", "/v3/elb/nope"],
    ["GET", "/v3/elb/pools/p1/members/m-1/extra"],
    ["GET", "/v3/elb/pools//members"],
    ["GET", "/v3/elb/pools/%E0%A4%A/members"],
  ])("%s %s → not found", (method, path) => {
    expect(matchRoute(method, path).kind).toBe("not_found");
  });

  it.each([
    ["DELETE", "/v3/elb/pools/p1/members", ["GET", "HEAD", "POST"]],
    ["POST", "/v3/elb/pools/p1/members/m-1", ["DELETE", "GET", "HEAD", "PUT"]],
    ["GET", "/v3/elb/reload", ["POST"]],
    ["POST", "/v3/elb/loadbalancers", ["GET", "HEAD"]],
  ])("%s %s → 405 allowing %j", (method, path, allow) => {
    expect(matchRoute(method, path)).toEqual({ kind: "method_not_allowed", allow });
  });
});

describe("error mapping", () => {
  it.each([
    ["duplicate id only → 409", [{ path: "a", message: "dup", code: "LB4.DUPLICATE_ID" }], 409, "LB4.DUPLICATE_ID"],
    ["same address:port only → 409", [{ path: "a", message: "dup", code: "LB4.DUPLICATE_MEMBER" }], 409, "LB4.DUPLICATE_MEMBER"],
    ["a bad field and a duplicate → 400 (the request itself is bad)", [{ path: "a", message: "dup", code: "LB4.DUPLICATE_ID" }, { path: "b", message: "must be an integer" }], 400, "LB4.INVALID_REQUEST"],
    ["a rule with a code keeps it", [{ path: "a", message: "cross-VPC members must be IPv4", code: "LB4.CROSSVPC_IPV4_ONLY" }], 400, "LB4.CROSSVPC_IPV4_ONLY"],
  ])("%s", (_n, problems, status, code) => {
    const e = validationError(new ConfigError(problems));
    expect(e.status).toBe(status);
    expect(e.code).toBe(code);
    for (const p of problems) expect(e.message).toContain(`${p.path}: ${p.message}`);
  });

  it("reload refusals are always 400, duplicates included", () => {
    expect(validationError(new ConfigError([{ path: "a", message: "dup", code: "LB4.DUPLICATE_ID" }]), { conflicts: false }).status).toBe(400);
  });

  it.each([
    [new NotFoundError("pool", "p"), 404, "LB4.NOT_FOUND"],
    [new NotSupportedError("no"), 400, "LB4.NOT_SUPPORTED"],
    [new Lb4Error("LB4.LISTEN_FAILED", "port busy"), 409, "LB4.LISTEN_FAILED"],
    [new Lb4Error("LB4.CLOSED", "closed"), 503, "LB4.CLOSED"],
    [new Lb4Error("LB4.STATE_UNREADABLE", "disk"), 500, "LB4.STATE_UNREADABLE"],
    [new Error("boom"), 500, "LB4.INTERNAL"],
  ])("%s → %i %s", (err, status, code) => {
    const e = toHttpError(err);
    expect([e.status, e.code]).toEqual([status, code]);
  });
});

describe("generateMemberId", () => {
  it("is m- + 8 hex digits and skips ids in use", () => {
    const seq = [Buffer.from("deadbeef", "hex"), Buffer.from("00c0ffee", "hex")];
    const id = generateMemberId(new Set(["m-deadbeef"]), () => seq.shift()!);
    expect(id).toBe("m-00c0ffee");
    expect(generateMemberId(new Set())).toMatch(/^m-[0-9a-f]{8}$/);
  });
});
