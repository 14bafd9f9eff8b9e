/** The data plane's file-descriptor budget: the limit read from /proc, the reserve, the caps. */
import { describe, expect, it } from "vitest";
import { budgetFor, FALLBACK_MAX_FLOWS, FdBudget, openFileLimit, parseOpenFileLimit, reserveFor } from "../../../src/dataplane/fd-budget.js";

const limits = (soft: string, hard: string) =>
  [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max cpu time              unlimited            unlimited            seconds   ",
    `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
    "Max locked memory         8388608              8388608              bytes     ",
  ].join("\n");

describe("parseOpenFileLimit", () => {
  it.each<[string, string, number | undefined]>([
    ["a plain soft limit", limits("1024", "1048576"), 1024],
    ["the soft limit, not the hard one", limits("256", "256"), 256],
    ["unlimited", limits("unlimited", "unlimited"), Infinity],
    ["no such line", "Max processes 100 100 processes", undefined],
    ["garbage", limits("lots", "lots"), undefined],
    ["empty", "", undefined],
  ])("%s", (_name, text, expected) => {
    expect(parseOpenFileLimit(text)).toBe(expected);
  });

  it("reads this process's limit on Linux", () => {
    if (process.platform !== "linux") return;
    const n = openFileLimit();
    expect(n === Infinity || (Number.isInteger(n) && n! > 0)).toBe(true);
  });
});

describe("budgetFor", () => {
  it.each<[number | undefined, number, number, number]>([
    // limit, reserve, data-plane max, default UDP flow cap (half the budget, at most 65,536)
    [256, 64, 192, 96],
    [1024, 103, 921, 460],
    [65_536, 1024, 64_512, 32_256],
    [1_048_576, 1024, 1_047_552, FALLBACK_MAX_FLOWS],
    [100, 64, 36, 18],
    [10, 64, 0, 1],
  ])("limit %s: reserve %i, budget %i, UDP flow cap %i", (limit, reserve, max, flows) => {
    expect(reserveFor(limit!)).toBe(reserve);
    const b = budgetFor(limit);
    expect(b.max).toBe(max);
    expect(b.defaultMaxFlows()).toBe(flows);
  });

  it.each([undefined, Infinity])("limit %s: no cap, and today's flow cap", (limit) => {
    const b = budgetFor(limit);
    expect(b.max).toBe(Infinity);
    expect(b.defaultMaxFlows()).toBe(FALLBACK_MAX_FLOWS);
    expect(b.tryTake(1_000_000)).toBe(true);
  });
});

describe("FdBudget", () => {
  it("takes up to its max, refuses beyond it without taking, and gives back", () => {
    const b = new FdBudget(5);
    expect([b.tryTake(2), b.tryTake(2), b.tryTake(2), b.used]).toEqual([true, true, false, 4]);
    expect(b.tryTake(1)).toBe(true);
    expect(b.used).toBe(5);
    b.give(2);
    expect([b.used, b.tryTake(2), b.used]).toEqual([3, true, 5]);
  });
});
