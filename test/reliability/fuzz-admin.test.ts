/**
 * Admin API fuzzing (fast-check) against a real `lb4 start`: random and mutated request
 * bodies get a 4xx with an LB4 error code — never a 5xx — and a refused request changes
 * nothing (members and state.json); writes with a foreign Content-Type, Host or Origin are
 * refused whatever the body (SPEC §8). lb4 stays up throughout.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.js";
import { envInt } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";
import { adminBase, Lb4Proc, killAllLb4, type Reply } from "./helpers/lb4.js";
import { anyValue, deep, mutate, mutation, serialise, setOwn, type Json } from "./helpers/mutate.js";

const RUNS = envInt("LB4_FUZZ_RUNS", 400);
const SEED = envInt("LB4_FUZZ_SEED", Date.now() % 2 ** 31);
const POOL = "pool-z";
const UDP_POOL = "pool-u";

const validMember: Json = { member: { id: "m-new", name: "n", address: "127.0.0.1", protocol_port: 9100, weight: 3, instance_id: "ecs-9", admin_state_up: true } };
const validPut: Json = { member: { weight: 7, name: "renamed", admin_state_up: true } };

type Target = { method: "POST" | "PUT"; path: string; base: Json };
const targets: Target[] = [
  { method: "POST", path: `/v3/elb/pools/${POOL}/members`, base: validMember },
  { method: "PUT", path: `/v3/elb/pools/${POOL}/members/m1`, base: validPut },
  { method: "POST", path: `/v3/elb/pools/${UDP_POOL}/members`, base: validMember },
  { method: "PUT", path: `/v3/elb/pools/${POOL}/members/no-such-member`, base: validPut },
  { method: "POST", path: `/v3/elb/pools/no-such-pool/members`, base: validMember },
];

interface Req {
  target: Target;
  body: Buffer;
  what: string;
}

const bodies: fc.Arbitrary<Req> = fc.tuple(
  fc.constantFrom(...targets),
  fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([ms]) => ({ kind: "mutated", ms }) as const) },
    { weight: 2, arbitrary: anyValue.map((v) => ({ kind: "json", v }) as const) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }).map((s) => ({ kind: "text", s }) as const) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ kind: "bytes", b }) as const) },
    { weight: 1, arbitrary: fc.constantFrom(deep(2000, "array"), deep(2000, "object")).map((v) => ({ kind: "deep", v }) as const) },
  ),
).map(([target, b]): Req => {
  switch (b.kind) {
    case "mutated":
      return { target, body: Buffer.from(serialise(mutate(target.base, b.ms), false).text), what: "mutated" };
    case "json":
    case "deep":
      return { target, body: Buffer.from(serialise(b.kind === "deep" ? { member: b.v } : b.v, false).text), what: b.kind };
    case "text":
      return { target, body: Buffer.from(b.s, "latin1"), what: "text" };
    case "bytes":
      return { target, body: Buffer.from(b.b), what: "bytes" };
  }
});

describe("admin API fuzzing", () => {
  let dir: string;
  let lb: Lb4Proc;
  let adminPort: number;
  let stateFile: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-fuzzadm-"));
    stateFile = path.join(dir, "state", "state.json");
    const port = await freePort();
    adminPort = await freePort();
    lb = await Lb4Proc.start({
      config: {
        ...adminBase(adminPort, path.join(dir, "state")),
        loadbalancers: [
          {
            id: "lb-z",
            vip_address: "127.0.0.1",
            listeners: [
              { id: "ls-z", protocol: "TCP", protocol_port: port, default_pool_id: POOL },
              { id: "ls-u", protocol: "UDP", protocol_port: port, default_pool_id: UDP_POOL },
            ],
            pools: [
              { id: POOL, protocol: "TCP", members: [{ id: "m1", address: "127.0.0.1", protocol_port: 9001 }] },
              { id: UDP_POOL, protocol: "UDP", members: [{ id: "u1", address: "127.0.0.1", protocol_port: 9002 }] },
            ],
          },
        ],
      },
      file: path.join(dir, "lb4.yaml"),
      adminUrl: `http://127.0.0.1:${adminPort}`,
    });
  });
  afterAll(async () => {
    await killAllLb4();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const snapshot = async () => JSON.stringify([await lb.members(POOL), await lb.members(UDP_POOL)]);
  const stateText = () => {
    try {
      return readFileSync(stateFile, "utf8");
    } catch {
      return "";
    }
  };
  /** Undo an accepted change so the next run starts from the same members. */
  const restore = async (req: Req, r: Reply) => {
    if (req.target.method === "POST" && r.status === 201 && r.body?.member?.id) {
      await lb.api("DELETE", `${req.target.path}/${r.body.member.id}`);
    }
  };

  it(`${RUNS} random and mutated bodies: 4xx with an LB4 code (never 5xx), and a refused one changes nothing`, async () => {
    const reqs = fc.sample(bodies, { numRuns: RUNS, seed: SEED });
    const statuses: Record<string, number> = {};
    const bad: string[] = [];
    for (const req of reqs) {
      const before = await snapshot();
      const stateBefore = stateText();
      let r: Reply;
      try {
        r = await lb.api(req.target.method, req.target.path, { raw: req.body, timeoutMs: 10_000 });
      } catch (err) {
        bad.push(`${req.target.method} ${req.target.path} ${JSON.stringify(req.body.toString("latin1").slice(0, 200))}: no answer (${(err as Error).message}); lb4 alive: ${lb.alive()}`);
        if (!lb.alive()) break;
        continue;
      }
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      const show = `${req.target.method} ${req.target.path} (${req.what}) ${JSON.stringify(req.body.toString("latin1").slice(0, 300))} → ${r.status} ${r.text.slice(0, 200)}`;
      if (r.status >= 500) bad.push(`5xx: ${show}`);
      else if (r.status >= 400) {
        if (!/^LB4\./.test(String(r.body?.error_code))) bad.push(`no LB4 error code: ${show}`);
        if ((await snapshot()) !== before) bad.push(`refused but members changed: ${show}`);
        if (stateText() !== stateBefore) bad.push(`refused but state.json changed: ${show}`);
      } else if (r.status < 200 || r.status >= 300) bad.push(`unexpected status: ${show}`);
      await restore(req, r);
    }
    figure(
      "fuzz: admin request bodies",
      `${reqs.length} random/mutated bodies to POST/PUT members (fast-check, seed ${SEED}): statuses ${JSON.stringify(statuses)}; ${bad.length} wrong`,
      "a bad body gets a 4xx with an LB4 code, never a 5xx, and changes nothing; lb4 stays up",
    );
    expect(lb.alive()).toBe(true);
    expect(bad.slice(0, 20), `seed ${SEED} (LB4_FUZZ_SEED replays it); ${bad.length} in all`).toEqual([]);
  });

  it("writes with a foreign Content-Type, Host or Origin are refused whatever the body, and change nothing", async () => {
    const own = `127.0.0.1:${adminPort}`;
    const headerSets = fc.record({
      contentType: fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx"),
      host: fc.constantFrom(own, `localhost:${adminPort}`, `evil.example:${adminPort}`, "evil.example", `attacker.${adminPort}.example`),
      origin: fc.constantFrom(undefined, `http://${own}`, "http://evil.example", "null", `http://evil.example:${adminPort}`),
      target: fc.constantFrom(targets[0]!, targets[1]!),
    });
    const sets = fc.sample(headerSets, { numRuns: 60, seed: SEED });
    const bad: string[] = [];
    let refused = 0;
    for (const h of sets) {
      const ownHost = h.host === own || h.host === `localhost:${adminPort}`;
      // A browser's Origin matches the Host it talks to; Host localhost with Origin 127.0.0.1 may go either way.
      const ownOrigin = h.origin === undefined || h.origin === `http://${h.host}`;
      const ambiguous = ownHost && h.origin === `http://${own}` && h.host !== own;
      const proper = h.contentType.split(";")[0]!.trim() === "application/json" && ownHost && ownOrigin;
      const before = await snapshot();
      const stateBefore = stateText();
      const headers: Record<string, string> = { host: h.host, "content-type": h.contentType };
      if (h.origin !== undefined) headers.origin = h.origin;
      const body = h.target.method === "POST" ? { member: { address: "127.0.0.1", protocol_port: 9200, weight: 1 } } : { member: { weight: 9 } };
      const r = await lb.api(h.target.method, h.target.path, { raw: JSON.stringify(body), headers });
      const show = `${h.target.method} ${h.target.path} Content-Type "${h.contentType}" Host "${h.host}" Origin ${h.origin ?? "(none)"} → ${r.status} ${r.text.slice(0, 160)}`;
      if (proper) {
        if (r.status >= 300) bad.push(`a proper write was refused: ${show}`);
      } else if (!ambiguous || h.contentType.split(";")[0]!.trim() !== "application/json") {
        if (r.status < 400 || r.status >= 500) bad.push(`not refused with a 4xx: ${show}`);
        else refused++;
        if ((await snapshot()) !== before || stateText() !== stateBefore) bad.push(`changed state: ${show}`);
      }
      if (h.target.method === "POST" && r.status === 201 && r.body?.member?.id) await lb.api("DELETE", `${h.target.path}/${r.body.member.id}`);
      if (h.target.method === "PUT" && r.status === 200) await lb.api("PUT", h.target.path, { body: { member: { weight: 1 } } });
    }
    figure(
      "fuzz: admin write headers (CSRF / DNS rebinding)",
      `${sets.length} writes with random Content-Type, Host and Origin: ${refused} refused with a 4xx, ${bad.length} wrong`,
      "a write without Content-Type: application/json, or with a foreign Host or Origin, is refused and changes nothing",
    );
    expect(bad.slice(0, 20), `${bad.length} in all`).toEqual([]);
    expect(lb.alive()).toBe(true);
  });

  it("a body of 2000 nested levels and one with __proto__ keys: 4xx, nothing changes", async () => {
    const before = await snapshot();
    const deepBody = serialise({ member: { address: "127.0.0.1", protocol_port: 9300, x: deep(2000, "object") } }, false).text;
    const poison: Record<string, unknown> = { address: "127.0.0.1", protocol_port: 9301 };
    setOwn(poison, "__proto__", { weight: 100, admin_state_up: false });
    const rs = [
      await lb.api("POST", `/v3/elb/pools/${POOL}/members`, { raw: deepBody }),
      await lb.api("POST", `/v3/elb/pools/${POOL}/members`, { raw: JSON.stringify({ member: poison }) }),
      await lb.api("PUT", `/v3/elb/pools/${POOL}/members/m1`, { raw: '{"member": {"__proto__": {"weight": 0}}}' }),
    ];
    for (const r of rs) if (r.status === 201 && r.body?.member?.id) await lb.api("DELETE", `/v3/elb/pools/${POOL}/members/${r.body.member.id}`);
    expect(rs.map((r) => `${r.status} ${r.body?.error_code ?? ""}`).map((s) => /^4\d\d LB4\./.test(s) || s)).toEqual([true, true, true]);
    expect(await snapshot()).toBe(before);
  });
});
