/**
 * Config fuzzing (fast-check): random and mutated config files. The loader either accepts a
 * file or rejects it with a ConfigError naming every problem — never another exception, so
 * `lb4 validate` never prints a stack trace; a key that could reach a prototype
 * (`__proto__`, `constructor`, `prototype`) is rejected with its path; nesting of any depth
 * gets a clean error. Many runs in-process, a sample through the real CLI.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.js";
import { ConfigError, Lb4Error } from "../../src/errors.js";
import { envInt, lb4Main } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";
import { deep, mutate, mutation, poisonIn, serialise, stripPoison, type Json } from "./helpers/mutate.js";

const RUNS = envInt("LB4_FUZZ_RUNS", 400);
const SEED = envInt("LB4_FUZZ_SEED", Date.now() % 2 ** 31);
const CLI_SAMPLES = 24;

const base: Json = {
  admin: { listen: "127.0.0.1:9870", token: "fuzz-token-0123456789" },
  state_dir: "./state",
  log: { level: "info" },
  vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "subnet-b", cidr: "127.0.10.0/24", used_ips: 40 }] }],
  loadbalancers: [
    {
      id: "lb-1",
      name: "web",
      vpc_id: "vpc-a",
      vip_address: "127.0.0.1",
      elb_virsubnet_ids: ["subnet-b"],
      ip_target_enable: false,
      listeners: [
        { id: "ls-tcp", protocol: "TCP", protocol_port: 18080, default_pool_id: "pool-tcp", keepalive_timeout: 300, connection_limit: 0, ipgroup: { type: "white", ip_list: ["127.0.0.0/8", "::1"] } },
        { id: "ls-udp", protocol: "UDP", protocol_port: 18080, default_pool_id: "pool-udp" },
      ],
      pools: [
        {
          id: "pool-tcp",
          protocol: "TCP",
          lb_algorithm: "ROUND_ROBIN",
          session_persistence: { type: "SOURCE_IP", persistence_timeout: 20 },
          slow_start: { enable: true, duration: 30 },
          connection_drain: { enable: true, timeout: 300 },
          pool_health: { minimum_healthy_member_count: 0 },
          client_ip: "auto",
          healthmonitor: { type: "HTTP", delay: 5, timeout: 3, max_retries: 3, max_retries_down: 3, url_path: "/", expected_codes: "200-299", http_method: "GET" },
          members: [
            { id: "m-1", name: "web-1", address: "127.0.10.11", protocol_port: 9001, weight: 1, instance_id: "ecs-1", admin_state_up: true },
            { id: "m-2", address: "127.0.10.12", protocol_port: 9002, weight: 5 },
          ],
        },
        { id: "pool-udp", protocol: "UDP", lb_algorithm: "SOURCE_IP", healthmonitor: { type: "UDP_CONNECT", delay: 5, timeout: 3 }, members: [{ id: "u-1", address: "127.0.10.21", protocol_port: 5301 }] },
      ],
    },
  ],
};

interface Doc {
  text: string;
  ext: ".json" | ".yaml";
  /** A prototype-polluting key in the file: it must be rejected. */
  poisoned: string | undefined;
  /** The same file without its poison keys: when that one is valid, the rejection must name the key. */
  stripped?: Doc;
}

const mutatedDoc: fc.Arbitrary<Doc> = fc.tuple(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([ms, yaml]) => {
  const doc = mutate(base, ms);
  const poisoned = poisonIn(doc);
  // A poison key holding a too-deep value may be refused for the depth first, without naming the key.
  const comparable = poisoned !== undefined && !JSON.stringify(doc).includes("@@DEEP_");
  return { ...serialise(doc, yaml), poisoned, ...(comparable ? { stripped: { ...serialise(stripPoison(doc), yaml), poisoned: undefined } } : {}) };
});
const randomText: fc.Arbitrary<Doc> = fc.tuple(fc.string({ unit: "binary", maxLength: 300 }), fc.boolean()).map(([text, yaml]) => ({ text, ext: yaml ? ".yaml" : ".json", poisoned: undefined }));
const yamlTricks: fc.Arbitrary<Doc> = fc
  .constantFrom(
    "a: &x [*x]\n",
    "loadbalancers: &l\n  - *l\n",
    "? [a, b]\n: c\n",
    "!!binary aGVsbG8=\n",
    "loadbalancers: !!set {a, b}\n",
    "%YAML 1.1\n---\nloadbalancers: []\n",
    "---\na: 1\n---\nb: 2\n",
    `loadbalancers:\n${"  - ".repeat(1)}${"[".repeat(2000)}${"]".repeat(2000)}\n`,
    "x: " + "{a: ".repeat(500) + "1" + "}".repeat(500) + "\n",
    "__proto__:\n  admin: { listen: 127.0.0.1:19999 }\nloadbalancers: []\n",
  )
  .map((text) => ({ text, ext: ".yaml" as const, poisoned: text.includes("__proto__") ? "__proto__" : undefined }));
const anyDoc = fc.oneof({ weight: 6, arbitrary: mutatedDoc }, { weight: 1, arbitrary: randomText }, { weight: 1, arbitrary: yamlTricks });

/** Explicit cases of issue 12: 2,000-deep JSON, a __proto__ key at the top and inside a load balancer. */
const explicit: Array<{ name: string; doc: Doc }> = [
  { name: "2000-deep JSON array", doc: { ...serialise({ loadbalancers: deep(2000, "array") }, false), poisoned: undefined } },
  { name: "2000-deep JSON object", doc: { ...serialise({ loadbalancers: [], x: deep(2000, "object") }, false), poisoned: undefined } },
  { name: "2000-deep YAML", doc: { ...serialise({ loadbalancers: [], x: deep(2000, "array") }, true), poisoned: undefined } },
  {
    name: "__proto__ carrying admin.listen",
    doc: { text: `{"__proto__": {"admin": {"listen": "127.0.0.1:19999"}}, "loadbalancers": []}`, ext: ".json", poisoned: "__proto__" },
  },
  {
    name: "__proto__ inside a load balancer",
    doc: { text: JSON.stringify(base).replace('"id":"lb-1",', '"id":"lb-1","__proto__":{"ip_target_enable":true},'), ext: ".json", poisoned: "__proto__" },
  },
];

interface Verdict {
  ok: boolean;
  accepted?: boolean;
  /** The kind of failure (for the tally) and the detail. */
  kind?: string;
  why?: string;
}

/** The in-process verdict: accepted, or a ConfigError/Lb4Error; a poison key must be named. */
async function judge(file: string, doc: Doc): Promise<Verdict> {
  writeFileSync(file + doc.ext, doc.text);
  try {
    await loadConfigFile(file + doc.ext, { env: { HOME: "/home/fuzz" } });
    if (doc.poisoned) return { ok: false, kind: `accepted a ${doc.poisoned} key`, why: `accepted a file with a ${doc.poisoned} key` };
    return { ok: true, accepted: true };
  } catch (err) {
    if (!(err instanceof Lb4Error)) return { ok: false, kind: `threw ${(err as Error)?.name}: ${(err as Error)?.message?.slice(0, 60)}`, why: `threw ${(err as Error)?.stack?.slice(0, 400)}` };
    if (err instanceof ConfigError) {
      if (err.problems.length === 0 || err.problems.some((p) => typeof p.path !== "string" || typeof p.message !== "string" || p.message === "")) {
        return { ok: false, kind: "problem without path or reason", why: "a ConfigError without a path and reason for every problem" };
      }
      if (doc.poisoned && !err.problems.some((p) => p.path.includes(doc.poisoned!) || p.message.includes(doc.poisoned!))) {
        // Only a file that is valid but for the key must name it; others may stop at an earlier problem.
        if (doc.stripped && (await judge(file + "-stripped", doc.stripped)).accepted) {
          return { ok: false, kind: `${doc.poisoned} key not named`, why: `rejected, but no problem names the ${doc.poisoned} key: ${err.message.slice(0, 300)}` };
        }
      }
    }
    return { ok: true };
  } finally {
    rmSync(file + doc.ext, { force: true });
  }
}

function validateCli(file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [lb4Main, "validate", "--config", file], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: "/home/fuzz" } });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c));
    child.stderr.on("data", (c: Buffer) => (out += c));
    const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

const STACK = /^\s+at .+[:(]\d+:\d+\)?$|RangeError|TypeError/m;

describe("config fuzzing", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-fuzzcfg-"));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${RUNS} random and mutated files: accepted, or rejected with every problem named; never another exception`, async () => {
    const docs = fc.sample(anyDoc, { numRuns: RUNS, seed: SEED });
    const failures = new Map<string, { count: number; smallest: string; why: string }>();
    let accepted = 0;
    for (const doc of docs) {
      const v = await judge(path.join(dir, "cfg"), doc);
      if (Object.keys(Object.prototype).length > 0) throw new Error(`Object.prototype polluted by ${doc.text.slice(0, 300)}`);
      if (v.ok) {
        if (v.accepted) accepted++;
        continue;
      }
      // One line per kind of failure, with the shortest file that shows it.
      const kind = v.kind!;
      const f = failures.get(kind) ?? { count: 0, smallest: doc.text, why: v.why! };
      f.count++;
      if (doc.text.length < f.smallest.length) {
        f.smallest = doc.text;
        f.why = v.why!;
      }
      failures.set(kind, f);
    }
    const failed = [...failures.values()].reduce((n, f) => n + f.count, 0);
    figure(
      "fuzz: config files (in-process loader)",
      `${RUNS} random/mutated YAML and JSON files (fast-check, seed ${SEED}): ${accepted} accepted, ${RUNS - accepted - failed} rejected cleanly, ${failed} wrong` + (failed ? ` (${[...failures.entries()].map(([k, f]) => `${f.count}× ${k}`).join("; ")})` : ""),
      "accepted, or a ConfigError naming each problem; no other exception, no prototype pollution; a __proto__/constructor/prototype key is rejected with its path",
    );
    expect(
      [...failures.entries()].map(([k, f]) => `${f.count}× ${k} — e.g. ${JSON.stringify(f.smallest.slice(0, 400))}: ${f.why}`),
      `seed ${SEED} (LB4_FUZZ_SEED replays it)`,
    ).toEqual([]);
  });

  it.each(explicit)("$name: rejected with its path, no stack trace", async ({ doc }) => {
    const v = await judge(path.join(dir, "explicit"), doc);
    expect(v.why ?? "").toBe("");
  });

  it(`lb4 validate on ${CLI_SAMPLES} sampled files and the explicit cases: exit 0 or 1, never a stack trace`, async () => {
    const docs = [...fc.sample(anyDoc, { numRuns: CLI_SAMPLES, seed: SEED + 1 }), ...explicit.map((e) => e.doc)];
    const bad: string[] = [];
    const codes: Record<string, number> = {};
    for (let i = 0; i < docs.length; i += 4) {
      await Promise.all(
        docs.slice(i, i + 4).map(async (doc, k) => {
          const file = path.join(dir, `cli-${i + k}${doc.ext}`);
          writeFileSync(file, doc.text);
          const r = await validateCli(file);
          codes[String(r.code)] = (codes[String(r.code)] ?? 0) + 1;
          if (r.code !== 0 && r.code !== 1) bad.push(`${file}: exit ${r.code}: ${r.out.slice(0, 300)}`);
          else if (STACK.test(r.out)) bad.push(`${file}: stack trace: ${r.out.slice(0, 600)}`);
          else if (r.code === 1 && !/^lb4: /m.test(r.out)) bad.push(`${file}: exit 1 without an lb4 message: ${r.out.slice(0, 300)}`);
          else if (r.code === 0 && doc.poisoned) bad.push(`${file}: valid with a ${doc.poisoned} key`);
          else rmSync(file);
        }),
      );
    }
    figure("fuzz: lb4 validate (CLI)", `${docs.length} files through \`lb4 validate\`: exit codes ${JSON.stringify(codes)}; ${bad.length} with a stack trace or wrong exit`, "exit 0 or 1 with the problems listed; never a stack trace");
    expect(bad).toEqual([]);
  });
});
