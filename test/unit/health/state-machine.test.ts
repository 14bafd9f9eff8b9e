import { describe, expect, it } from "vitest";
import {
  applyResult,
  firstCheckDelayMs,
  initialHealth,
  restoredHealth,
  isOnline,
  type MemberHealth,
  type Transition,
} from "../../../src/health/state-machine.js";

/** Run a string of results ("P" pass, "F" fail); return the state after each step and the transitions. */
function run(seq: string, max_retries: number, max_retries_down: number) {
  let h: MemberHealth = initialHealth;
  const states: string[] = [];
  const transitions: (Transition & { step: number })[] = [];
  [...seq].forEach((c, i) => {
    const step = applyResult(h, c === "P", c === "P" ? "connected" : "connect ECONNREFUSED", {
      max_retries,
      max_retries_down,
    });
    h = step.health;
    states.push(h.state === "ONLINE" ? "1" : "0");
    if (step.transition) transitions.push({ ...step.transition, step: i });
  });
  return { states: states.join(""), transitions, health: h };
}

describe("health state machine", () => {
  // states: 1 = ONLINE, 0 = OFFLINE after each result
  const table: { name: string; seq: string; up: number; down: number; states: string }[] = [
    { name: "first pass goes online at once", seq: "P", up: 3, down: 3, states: "1" },
    { name: "first pass online even with high threshold", seq: "PPP", up: 10, down: 10, states: "111" },
    { name: "first fail offline, then max_retries passes", seq: "FPPP", up: 3, down: 3, states: "0001" },
    { name: "first fail, max_retries 1", seq: "FP", up: 1, down: 3, states: "01" },
    { name: "offline counter reset by a failure", seq: "FPPFPPP", up: 3, down: 3, states: "0000001" },
    { name: "online needs max_retries_down failures", seq: "PFFF", up: 3, down: 3, states: "1110" },
    { name: "max_retries_down 1 drops on one failure", seq: "PF", up: 3, down: 1, states: "10" },
    { name: "online counter reset by a pass", seq: "PFFPFFF", up: 2, down: 3, states: "1111110" },
    { name: "asymmetric thresholds both ways", seq: "PFFPP", up: 2, down: 2, states: "11001" },
    { name: "flapping never reaches either threshold", seq: "FPFPFPFP", up: 2, down: 2, states: "00000000" },
    { name: "full cycle", seq: "FPPPFFFPPP", up: 3, down: 3, states: "0001110001" },
    { name: "long failure stays offline", seq: "PFFFFFFF", up: 3, down: 3, states: "11100000" },
  ];
  it.each(table)("$name ($seq, up $up, down $down)", ({ seq, up, down, states }) => {
    expect(run(seq, up, down).states).toBe(states);
  });

  it("first result decides: transitions and reasons", () => {
    expect(run("P", 3, 3).transitions).toEqual([{ from: "UNCHECKED", to: "ONLINE", reason: "first check passed", step: 0 }]);
    expect(run("F", 3, 3).transitions).toEqual([
      { from: "UNCHECKED", to: "OFFLINE", reason: "first check failed: connect ECONNREFUSED", step: 0 },
    ]);
  });

  it("reports threshold transitions with counts and the last detail", () => {
    const r = run("FPPPFFF", 3, 3);
    expect(r.transitions.map(({ from, to, reason, step }) => [from, to, reason, step])).toEqual([
      ["UNCHECKED", "OFFLINE", "first check failed: connect ECONNREFUSED", 0],
      ["OFFLINE", "ONLINE", "3 consecutive passes", 3],
      ["ONLINE", "OFFLINE", "3 consecutive failures: connect ECONNREFUSED", 6],
    ]);
    expect(run("PF", 1, 1).transitions[1]?.reason).toBe("1 consecutive failure: connect ECONNREFUSED");
  });

  it("emits a transition only when the state changes", () => {
    expect(run("PPPPPP", 1, 1).transitions).toHaveLength(1);
    expect(run("FFFFFF", 1, 1).transitions).toHaveLength(1);
  });

  it("counts consecutive results and resets the other counter", () => {
    const h = run("PPFF", 5, 5).health;
    expect(h).toEqual({ state: "ONLINE", passes: 0, failures: 2 });
    expect(run("FFP", 5, 5).health).toEqual({ state: "OFFLINE", passes: 1, failures: 0 });
  });

  it("a never-checked member is not online and the input is not mutated", () => {
    expect(isOnline(initialHealth)).toBe(false);
    applyResult(initialHealth, true, "", { max_retries: 1, max_retries_down: 1 });
    expect(initialHealth).toEqual({ state: "UNCHECKED", passes: 0, failures: 0 });
  });

  it("a lowered threshold applies to the next result", () => {
    let h: MemberHealth = { state: "OFFLINE", passes: 2, failures: 0 };
    h = applyResult(h, true, "", { max_retries: 10, max_retries_down: 3 }).health;
    expect(h.state).toBe("OFFLINE");
    const step = applyResult(h, true, "", { max_retries: 3, max_retries_down: 3 });
    expect(step.transition?.to).toBe("ONLINE");
  });
});

describe("firstCheckDelayMs", () => {
  const randoms = [0, 1e-9, 0.25, 0.5, 0.75, 0.999, 0.999999, 0.9999999999, 1 - Number.EPSILON / 2];
  it.each([1, 2, 5, 50])("delay %i s: every value within [0, delay*1000)", (delay) => {
    for (const r of randoms) {
      const ms = firstCheckDelayMs(delay, () => r);
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(delay * 1000);
      expect(Number.isInteger(ms)).toBe(true);
    }
    for (let i = 0; i < 10_000; i++) {
      const ms = firstCheckDelayMs(delay, Math.random);
      expect(ms >= 0 && ms < delay * 1000).toBe(true);
    }
  });

  it("maps random() linearly: 0 → 0, 0.5 → half, 0.999999 → the end of the window", () => {
    expect(firstCheckDelayMs(5, () => 0)).toBe(0);
    expect(firstCheckDelayMs(5, () => 0.5)).toBe(2500);
    expect(firstCheckDelayMs(5, () => 0.999999)).toBe(4999);
  });

  it("is roughly uniform", () => {
    const buckets = new Array<number>(10).fill(0);
    let seed = 12345;
    const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      const b = Math.floor(firstCheckDelayMs(1, lcg) / 100);
      buckets[b] = (buckets[b] ?? 0) + 1;
    }
    for (const n of buckets) expect(n).toBeGreaterThan(1700);
  });

  it("stays inside the window for out-of-contract randoms", () => {
    for (const r of [1, 1.5, -0.1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const ms = firstCheckDelayMs(3, () => r);
      expect(ms >= 0 && ms < 3000).toBe(true);
    }
  });
});
