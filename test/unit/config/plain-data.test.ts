/** User input is plain data: no __proto__/constructor/prototype keys, no inherited fields. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson, HttpError } from "../../../src/admin/routes.js";
import { interpolateEnv, loadConfigFile } from "../../../src/config/load.js";
import { FORBIDDEN_KEY, MAX_NESTING, plainDataProblems, TOO_DEEP } from "../../../src/config/plain-data.js";
import { validateConfig } from "../../../src/config/validate.js";
import { ConfigError, type Problem } from "../../../src/errors.js";

const LB = { id: "lb-1", vip_address: "127.0.0.1", listeners: [], pools: [] };

describe("plainDataProblems", () => {
  it.each<[string, unknown, string[]]>([
    ["a plain document", { loadbalancers: [LB], log: { level: "info" } }, []],
    ["objects without a prototype", Object.assign(Object.create(null), { a: Object.assign(Object.create(null), { b: 1 }) }), []],
    ["scalars", 5, []],
    ["__proto__ at the top (JSON.parse makes it an own key)", JSON.parse('{"__proto__": {"admin": {"listen": "127.0.0.1:19999"}}}'), ["__proto__"]],
    ["__proto__ deep in an array", JSON.parse('{"loadbalancers": [{"pools": [{"__proto__": {}}]}]}'), ["loadbalancers[0].pools[0].__proto__"]],
    ["constructor and prototype", JSON.parse('{"a": {"constructor": {"prototype": 1}}, "prototype": 2}'), ["a.constructor", "prototype"]],
    ["an object literal whose prototype carries fields", { __proto__: { state_dir: "/tmp/elsewhere" }, loadbalancers: [] }, [""]],
    ["a class instance inside", { log: new (class Level { level = "info"; })() }, ["log"]],
    ["a Date inside", { state_dir: new Date(0) }, ["state_dir"]],
  ])("%s", (_name, value, paths) => {
    const ps = plainDataProblems(value);
    expect(ps.map((p) => p.path)).toEqual(paths);
    for (const p of ps) expect(p.code).toBe(FORBIDDEN_KEY);
  });

  it("says what to do and names the key", () => {
    expect(plainDataProblems(JSON.parse('{"__proto__": 1}'))).toEqual([{ path: "__proto__", message: '"__proto__" is not allowed as a field name; remove it', code: FORBIDDEN_KEY }]);
  });

  it("paths start below `at`", () => {
    expect(plainDataProblems(JSON.parse('{"x": {"__proto__": 1}}'), ["member"])[0]!.path).toBe("member.x.__proto__");
  });

  it("stops after 20 problems", () => {
    const doc = JSON.parse(`[${Array.from({ length: 1000 }, () => '{"__proto__": 1}').join(",")}]`);
    expect(plainDataProblems(doc)).toHaveLength(20);
  });
});

describe("the __proto__ exploit (issue 12 item 2)", () => {
  const exploit = '{"__proto__": {"admin": {"listen": "127.0.0.1:19999"}}, "loadbalancers": []}';

  it("interpolateEnv refuses it instead of setting the copy's prototype", () => {
    const problems: Problem[] = [];
    expect(interpolateEnv(JSON.parse(exploit), {}, problems)).toBeUndefined();
    expect(problems).toEqual([expect.objectContaining({ path: "__proto__", code: FORBIDDEN_KEY })]);
  });

  it("interpolateEnv copies into objects without a prototype", () => {
    const out = interpolateEnv({ a: { b: "${X}" }, l: [{ c: 1 }] }, { X: "y" }, []) as Record<string, any>;
    expect(Object.getPrototypeOf(out)).toBeNull();
    expect(Object.getPrototypeOf(out.a)).toBeNull();
    expect(Object.getPrototypeOf(out.l[0])).toBeNull();
    expect(out.a.b).toBe("y");
  });

  it("validateConfig refuses an object given directly (startLoadBalancer, a change), whichever way __proto__ got in", () => {
    for (const input of [JSON.parse(exploit), { __proto__: { admin: { listen: "127.0.0.1:19999" } }, loadbalancers: [] }]) {
      const r = validateConfig(input);
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.problems).toEqual([expect.objectContaining({ code: FORBIDDEN_KEY })]);
    }
  });

  describe("in a file", () => {
    let dir = "";
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "lb4-plain-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it.each([
      ["lb4.json", exploit, "__proto__"],
      ["lb4.yaml", "__proto__:\n  admin: { listen: 127.0.0.1:19999 }\nloadbalancers: []\n", "__proto__"],
      ["nested.yaml", "loadbalancers:\n  - id: lb-1\n    vip_address: 127.0.0.1\n    constructor: { name: x }\n", "loadbalancers[0].constructor"],
      ["nested.json", '{"loadbalancers": [{"id": "lb-1", "vip_address": "127.0.0.1", "pools": [{"prototype": 1}]}]}', "loadbalancers[0].pools[0].prototype"],
    ])("%s is refused with the key's path", async (name, text, at) => {
      const f = path.join(dir, name);
      await writeFile(f, text);
      const err = await loadConfigFile(f, { env: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([expect.objectContaining({ path: at, code: FORBIDDEN_KEY })]);
      expect((err as ConfigError).message).toContain(`${at}: "${at.split(".").pop()}" is not allowed as a field name; remove it [LB4.FORBIDDEN_KEY]`);
    });
  });
});

describe("admin API bodies", () => {
  it.each([
    ['{"member": {"address": "127.0.0.1", "protocol_port": 9, "__proto__": {"weight": 100}}}', "member.__proto__"],
    ['{"__proto__": {"member": {}}, "member": {"address": "127.0.0.1", "protocol_port": 9}}', "__proto__"],
    ['{"member": {"constructor": 1}}', "member.constructor"],
  ])("%s → 400 naming %s", (text, at) => {
    const err = (() => {
      try {
        parseJson(Buffer.from(text));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 400, code: "LB4.INVALID_REQUEST", problems: [expect.objectContaining({ path: at, code: FORBIDDEN_KEY })] });
  });

  it("a plain body passes as it was", () => {
    expect(parseJson(Buffer.from('{"member": {"weight": 3}}'))).toEqual({ member: { weight: 3 } });
  });
});

/** `n` arrays inside one another around `inner`. */
const nestArrays = (n: number, inner: unknown = 1): unknown => {
  let v = inner;
  for (let i = 0; i < n; i++) v = [v];
  return v;
};
const deepJson = (n: number) => `{"loadbalancers": ${"[".repeat(n - 1)}${"]".repeat(n - 1)}}`;

describe("nesting limit (issue 12 item 3)", () => {
  it(`accepts ${MAX_NESTING} levels and refuses ${MAX_NESTING + 1}, naming the path where it went too deep`, () => {
    expect(plainDataProblems(nestArrays(MAX_NESTING))).toEqual([]);
    expect(plainDataProblems(nestArrays(MAX_NESTING + 1))).toEqual([
      { path: "[0]".repeat(MAX_NESTING), message: `nests deeper than ${MAX_NESTING} levels of objects and lists; lb4 needs 7 at most`, code: TOO_DEEP },
    ]);
  });

  it.each([2_000, 100_000])("a %i-deep document is one problem, not a stack overflow", (n) => {
    const ps = plainDataProblems(JSON.parse(deepJson(n)));
    expect(ps).toEqual([expect.objectContaining({ path: `loadbalancers${"[0]".repeat(MAX_NESTING - 1)}`, code: TOO_DEEP })]);
  });

  it("a cycle is a problem, not an endless walk", () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = { back: a };
    expect(plainDataProblems({ loadbalancers: [a] })).toEqual([expect.objectContaining({ path: "loadbalancers[0].self.back", code: TOO_DEEP, message: expect.stringContaining("cycle") })]);
  });

  it("shared objects are walked once per depth, so 2^40 paths through 40 shared levels end at once", () => {
    let shallow: unknown = { leaf: true };
    for (let i = 0; i < 20; i++) shallow = { a: shallow, b: shallow };
    expect(plainDataProblems(shallow)).toEqual([]);
    let deep: unknown = { leaf: true };
    for (let i = 0; i < 40; i++) deep = { a: deep, b: deep };
    expect(plainDataProblems(deep)).toEqual([expect.objectContaining({ path: "a.".repeat(MAX_NESTING - 1) + "a", code: TOO_DEEP })]);
  });

  it("interpolateEnv and validateConfig report it instead of throwing RangeError", () => {
    const doc = JSON.parse(deepJson(2_000));
    const problems: Problem[] = [];
    expect(() => interpolateEnv(doc, {}, problems)).not.toThrow();
    expect(problems.map((p) => p.code)).toEqual([TOO_DEEP]);
    const r = validateConfig(doc);
    expect(r.ok ? [] : r.problems.map((p) => p.code)).toEqual([TOO_DEEP]);
  });

  it("an admin API body is refused with 400", () => {
    const body = `{"member": ${"[".repeat(2_000)}${"]".repeat(2_000)}}`;
    expect(() => parseJson(Buffer.from(body))).toThrow(expect.objectContaining({ status: 400, problems: [expect.objectContaining({ code: TOO_DEEP, path: `member${"[0]".repeat(MAX_NESTING - 1)}` })] }));
  });

  describe("in a file", () => {
    let dir = "";
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "lb4-deep-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it.each([
      ["deep.json", deepJson(2_000), `loadbalancers${"[0]".repeat(MAX_NESTING - 1)}`],
      ["deep.yaml", `loadbalancers: ${"[".repeat(99)}${"]".repeat(99)}\n`, `loadbalancers${"[0]".repeat(MAX_NESTING - 1)}`],
      ["deeper.yaml", `loadbalancers: ${"[".repeat(2_000)}${"]".repeat(2_000)}\n`, ""], // beyond what the YAML parser can read
    ])("%s: a ConfigError naming where", async (name, text, at) => {
      const f = path.join(dir, name);
      await writeFile(f, text);
      const err = await loadConfigFile(f, { env: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([expect.objectContaining({ path: at, code: TOO_DEEP })]);
    });
  });
});
