import { describe, expect, it } from "vitest";
import { LeastConnectionsScheduler } from "../../../src/scheduling/least-connections.js";
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
const client = { ip: "198.51.100.7", port: 51000 };

function scheduler(members: readonly TestMember[]): LeastConnectionsScheduler<TestMember> {
  const s = new LeastConnectionsScheduler<TestMember>();
  s.update(members);
  return s;
}

function picks(s: LeastConnectionsScheduler<TestMember>, count: number, avoid?: TestMember[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(s.pick(client, avoid)?.key ?? "-");
  return out;
}

/** [key, active, weight] */
type Row = [string, number, number];
const build = (rows: readonly Row[]) => rows.map(([k, a, w]) => member(k, w, a));

describe("LEAST_CONNECTIONS (smallest active / effectiveWeight)", () => {
  it.each<{ members: Row[]; expected: string }>([
    { members: [["a", 1, 1], ["b", 0, 1]], expected: "b" },
    { members: [["a", 2, 1], ["b", 1, 1], ["c", 3, 1]], expected: "b" },
    { members: [["a", 2, 1], ["b", 3, 3]], expected: "b" }, // 2 vs 1
    { members: [["a", 1, 1], ["b", 3, 2]], expected: "a" }, // 1 vs 1.5
    { members: [["a", 4, 2], ["b", 1, 1], ["c", 5, 10]], expected: "c" }, // 2, 1, 0.5
    { members: [["a", 10, 100], ["b", 0, 1]], expected: "b" }, // 0.1 vs 0
    { members: [["a", 9, 100], ["b", 1, 10]], expected: "a" }, // 0.09 vs 0.1
    { members: [["a", 1, 0.5], ["b", 1, 1]], expected: "b" }, // fractional weights
    { members: [["a", 5, 1], ["b", 5, 1], ["c", 5, 1], ["d", 4, 1]], expected: "d" },
    { members: [["a", 100, 50], ["b", 30, 10], ["c", 61, 30]], expected: "a" }, // 2, 3, 2.03
  ])("$members → $expected", ({ members, expected }) => {
    expect(scheduler(build(members)).pick(client)?.key).toBe(expected);
  });

  it.each<{ name: string; members: Row[]; expected: string }>([
    { name: "all idle, equal weights", members: [["a", 0, 1], ["b", 0, 1], ["c", 0, 1]], expected: "abcabc" },
    { name: "all idle, unequal weights", members: [["a", 0, 5], ["b", 0, 1], ["c", 0, 2]], expected: "abcabc" },
    { name: "ties among a subset", members: [["a", 0, 1], ["b", 5, 1], ["c", 0, 1]], expected: "acacac" },
    { name: "equal ratios, different weights", members: [["a", 2, 2], ["b", 1, 1], ["c", 9, 1]], expected: "ababab" },
  ])("ties rotate: $name → $expected", ({ members, expected }) => {
    expect(picks(scheduler(build(members)), expected.length).join("")).toBe(expected);
  });

  it("reads `active` live at pick time", () => {
    const members = build([["a", 0, 1], ["b", 0, 1]]);
    const [a, b] = members as [TestMember, TestMember];
    const s = scheduler(members);
    a.active = 3;
    expect(s.pick(client)).toBe(b);
    b.active = 7;
    expect(s.pick(client)).toBe(a);
  });

  it.each([
    { weights: [3, 1], expected: [300, 100] },
    { weights: [1, 1, 2], expected: [100, 100, 200] },
    { weights: [5, 2, 1], expected: [500, 200, 100] },
  ])("with the data plane counting, open connections follow weights $weights", ({ weights, expected }) => {
    const members = weights.map((w, i) => member(String.fromCharCode(97 + i), w));
    const s = scheduler(members);
    const total = expected.reduce((x, y) => x + y, 0);
    for (let i = 0; i < total; i++) s.pick(client)!.active++;
    expect(members.map((m) => m.active)).toEqual(expected);
  });

  it.each<{ name: string; members: Row[]; avoid: string[]; expected: string }>([
    { name: "best avoided → next best", members: [["a", 0, 1], ["b", 1, 1], ["c", 2, 1]], avoid: ["a"], expected: "bbbb" },
    { name: "ties skip the avoided", members: [["a", 0, 1], ["b", 0, 1], ["c", 0, 1]], avoid: ["b"], expected: "acac" },
    { name: "two avoided", members: [["a", 0, 1], ["b", 0, 1], ["c", 9, 1]], avoid: ["a", "b"], expected: "cccc" },
    { name: "all avoided", members: [["a", 0, 1], ["b", 0, 1]], avoid: ["a", "b"], expected: "----" },
  ])("avoid: $name", ({ members, avoid, expected }) => {
    const ms = build(members);
    const avoided = ms.filter((m) => avoid.includes(m.key));
    expect(picks(scheduler(ms), expected.length, avoided).join("")).toBe(expected);
  });

  it("avoid matches by key too", () => {
    const s = scheduler(build([["a", 0, 1], ["b", 5, 1]]));
    expect(s.pick(client, [member("a", 1)])?.key).toBe("b");
  });

  it("update: shrinking the set keeps picking; weight 0 members are not eligible", () => {
    const s = scheduler(build([["a", 0, 1], ["b", 0, 1], ["c", 0, 1]]));
    expect(picks(s, 3).join("")).toBe("abc");
    s.update(build([["a", 0, 1], ["b", 0, 0]]));
    expect(picks(s, 3).join("")).toBe("aaa");
  });

  it.each([
    { name: "never updated", members: undefined },
    { name: "updated empty", members: [] },
  ])("no member → undefined ($name)", ({ members }) => {
    const s = new LeastConnectionsScheduler<TestMember>();
    if (members) s.update(members);
    expect(s.pick(client)).toBeUndefined();
  });
});
