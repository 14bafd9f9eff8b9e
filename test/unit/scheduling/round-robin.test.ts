import { describe, expect, it } from "vitest";
import { RoundRobinScheduler } from "../../../src/scheduling/round-robin.js";
import type { Schedulable } from "../../../src/scheduling/types.js";

interface TestMember extends Schedulable {
  key: string;
  effectiveWeight: number;
  active: number;
}

const member = (key: string, effectiveWeight: number, active = 0): TestMember => ({
  key,
  effectiveWeight,
  active,
});
const client = { ip: "192.0.2.1", port: 40000 };

/** Members named a, b, c… with the given weights. */
function membersOf(weights: readonly number[]): TestMember[] {
  return weights.map((w, i) => member(String.fromCharCode(97 + i), w));
}

function scheduler(members: readonly TestMember[]): RoundRobinScheduler<TestMember> {
  const s = new RoundRobinScheduler<TestMember>();
  s.update(members);
  return s;
}

function picks(s: RoundRobinScheduler<TestMember>, count: number, avoid?: TestMember[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(s.pick(client, avoid)?.key ?? "-");
  return out;
}

function countKeys(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of keys) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

/** mulberry32 (Tommy Ettinger): a tiny seeded PRNG, so random cases are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("ROUND_ROBIN (nginx smooth weighted round robin)", () => {
  it("{5,1,1} gives a a b a c a a, three cycles running", () => {
    const seq = picks(scheduler(membersOf([5, 1, 1])), 21);
    expect(seq.join("")).toBe("aabacaa".repeat(3));
  });

  it("{5,1,1}: 5/1/1 in every cycle of 7, light members never adjacent", () => {
    const seq = picks(scheduler(membersOf([5, 1, 1])), 70);
    for (let c = 0; c < 10; c++) {
      expect(countKeys(seq.slice(c * 7, c * 7 + 7))).toEqual({ a: 5, b: 1, c: 1 });
    }
    for (let i = 1; i < seq.length; i++) {
      expect(seq[i] !== "a" && seq[i - 1] !== "a", `picks ${i - 1},${i}`).toBe(false);
    }
  });

  it.each([
    { weights: [1] },
    { weights: [1, 1] },
    { weights: [2, 1] },
    { weights: [4, 6] },
    { weights: [3, 2, 1] },
    { weights: [7, 7, 7] },
    { weights: [10, 3, 2, 1] },
    { weights: [100, 1] },
    { weights: [1, 100, 1] },
    { weights: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    { weights: [100, 99, 98, 97] },
  ])("weights $weights: exact counts in each of 3 cycles of sum(weights)", ({ weights }) => {
    const members = membersOf(weights);
    const sum = weights.reduce((a, b) => a + b, 0);
    const expected = Object.fromEntries(members.map((m) => [m.key, m.effectiveWeight]));
    const seq = picks(scheduler(members), 3 * sum);
    for (let c = 0; c < 3; c++) {
      const cycle = seq.slice(c * sum, (c + 1) * sum);
      expect(countKeys(cycle)).toEqual(expected);
      // Exact means periodic: every cycle repeats the first.
      expect(cycle).toEqual(seq.slice(0, sum));
    }
  });

  it.each([
    { w: [3, 1], longestRun: 3 },
    { w: [1, 1, 1, 1], longestRun: 1 },
    { w: [2, 2, 1], longestRun: 1 },
    { w: [9, 1], longestRun: 9 }, // one b per 10 picks: runs of 9 are unavoidable
    { w: [9, 3], longestRun: 3 },
  ])("weights $w are smooth: no run longer than $longestRun", ({ w, longestRun }) => {
    const seq = picks(scheduler(membersOf(w)), 200);
    let run = 1;
    let max = 1;
    for (let i = 1; i < seq.length; i++) {
      run = seq[i] === seq[i - 1] ? run + 1 : 1;
      max = Math.max(max, run);
    }
    expect(max).toBe(longestRun);
  });

  const rng = mulberry32(0x5eed);
  const randomSets = Array.from({ length: 24 }, (_, i) => {
    const n = 2 + Math.floor(rng() * 11);
    // Half integer weights 1-100, half fractional (slow-start-like) 0.05-100.
    const weights = Array.from({ length: n }, () =>
      i % 2 === 0 ? 1 + Math.floor(rng() * 100) : 0.05 + rng() * 99.95,
    );
    return { i, weights };
  });
  it.each(randomSets)("random weight set #$i: shares over 10,000 picks within 1 pp", ({ weights }) => {
    const members = membersOf(weights);
    const sum = weights.reduce((a, b) => a + b, 0);
    const counts = countKeys(picks(scheduler(members), 10_000));
    for (const m of members) {
      const share = (counts[m.key] ?? 0) / 10_000;
      expect(Math.abs(share - m.effectiveWeight / sum), m.key).toBeLessThanOrEqual(0.01);
    }
  });

  it.each([
    { name: "one avoided", weights: [1, 1, 1], avoid: ["a"], expect: { b: 50, c: 50 } },
    { name: "heavy avoided", weights: [5, 1, 1], avoid: ["a"], expect: { b: 50, c: 50 } },
    { name: "two avoided", weights: [5, 1, 1], avoid: ["a", "c"], expect: { b: 100 } },
    { name: "light avoided", weights: [3, 1, 1], avoid: ["c"], expect: { a: 75, b: 25 } },
    { name: "all avoided", weights: [2, 1], avoid: ["a", "b"], expect: { "-": 100 } },
  ])("avoid: $name", ({ weights, avoid, expect: expected }) => {
    const members = membersOf(weights);
    const s = scheduler(members);
    const avoided = members.filter((m) => avoid.includes(m.key));
    expect(countKeys(picks(s, 100, avoided))).toEqual(expected);
  });

  it("avoid matches by key too (member object replaced by an update in between)", () => {
    const s = scheduler(membersOf([1, 1]));
    const stale = member("a", 1);
    expect(countKeys(picks(s, 10, [stale]))).toEqual({ b: 10 });
  });

  it("avoided members sit the pick out: the rotation of the others is unchanged after", () => {
    const s = scheduler(membersOf([5, 1, 1]));
    const members = membersOf([5, 1, 1]);
    // A retry that avoids everyone changes nothing.
    expect(s.pick(client, members)).toBeUndefined();
    expect(picks(s, 7).join("")).toBe("aabacaa");
  });

  it("update with the same weights keeps the rotation (no reset to the first member)", () => {
    const s = scheduler(membersOf([1, 1]));
    expect(s.pick(client)?.key).toBe("a");
    s.update(membersOf([1, 1])); // fresh objects, same keys
    expect(picks(s, 4)).toEqual(["b", "a", "b", "a"]);
  });

  it("update with the same weights mid-cycle keeps {5,1,1} exact", () => {
    const s = scheduler(membersOf([5, 1, 1]));
    const seq = picks(s, 3);
    s.update(membersOf([5, 1, 1]));
    seq.push(...picks(s, 11));
    expect(seq.join("")).toBe("aabacaa".repeat(2));
  });

  it("weight change via update: new shares hold and a returned member is served again", () => {
    const s = scheduler(membersOf([1, 1]));
    picks(s, 5);
    s.update(membersOf([3, 1]));
    expect(countKeys(picks(s, 4000))).toEqual({ a: 3000, b: 1000 });
    s.update(membersOf([3, 1, 4]));
    const counts = countKeys(picks(s, 8000));
    expect(counts).toEqual({ a: 3000, b: 1000, c: 4000 });
    s.update([member("c", 4)]);
    expect(countKeys(picks(s, 10))).toEqual({ c: 10 });
  });

  it("slow start: a member's fractional weight ramping up gets a rising share", () => {
    const s = scheduler(membersOf([10, 10]));
    const perStep: number[] = [];
    for (let step = 1; step <= 10; step++) {
      s.update([member("a", 10), member("b", 10), member("c", step)]);
      perStep.push(countKeys(picks(s, 1000))["c"] ?? 0);
    }
    for (let step = 1; step <= 10; step++) {
      const expected = (1000 * step) / (20 + step);
      expect(Math.abs(perStep[step - 1]! - expected)).toBeLessThanOrEqual(3);
    }
    const tiny = scheduler([member("a", 10), member("c", 0.3)]);
    const c = countKeys(picks(tiny, 10_300))["c"] ?? 0;
    expect(Math.abs(c - 300)).toBeLessThanOrEqual(2);
  });

  it.each([
    { name: "never updated", members: undefined },
    { name: "updated empty", members: [] },
    { name: "only weight 0", members: [member("a", 0)] },
  ])("no eligible member → undefined ($name)", ({ members }) => {
    const s = new RoundRobinScheduler<TestMember>();
    if (members) s.update(members);
    expect(s.pick(client)).toBeUndefined();
    expect(s.pick(client, [member("a", 1)])).toBeUndefined();
  });

  it("returns the member objects it was given", () => {
    const members = membersOf([1, 2]);
    const s = scheduler(members);
    expect(members).toContain(s.pick(client));
  });
});
