/** User input is plain data: no __proto__/constructor/prototype keys, no inherited fields. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson, HttpError } from "../../../src/admin/routes.js";
import { interpolateEnv, loadConfigFile } from "../../../src/config/load.js";
import { FORBIDDEN_KEY, plainDataProblems } from "../../../src/config/plain-data.js";
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
