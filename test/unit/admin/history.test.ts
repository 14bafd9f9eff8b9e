/** The charts' sampler: rates per listener, bounded history, counter resets, members' share of a pool. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { TrafficHistory, counterDelta, startSampler, type TrafficReading } from "../../../src/admin/history.js";

function reading(listeners: Record<string, [total: number, bytes: number]>, members: Record<string, Record<string, number>> = {}): TrafficReading {
  return {
    listeners: new Map(Object.entries(listeners).map(([id, [total, bytes]]) => [id, { total, bytes }])),
    members: new Map(Object.entries(members).map(([p, ms]) => [p, new Map(Object.entries(ms))])),
  };
}

describe("counterDelta", () => {
  it.each([
    [0, 0, 0],
    [5, 9, 4],
    [9, 3, 3], // replaced object: counts from 0
  ])("%i → %i is %i", (prev, cur, want) => expect(counterDelta(prev, cur)).toBe(want));
});

describe("TrafficHistory", () => {
  it("turns totals into rates per second over each interval", () => {
    const h = new TrafficHistory(10);
    h.record(1000, reading({ ls: [0, 0] }));
    expect(h.points("ls")).toEqual([]); // the first sample is the baseline
    h.record(6000, reading({ ls: [10, 5000] }));
    h.record(11_000, reading({ ls: [10, 5000] }));
    h.record(13_000, reading({ ls: [13, 6000] }));
    expect(h.points("ls")).toEqual([
      { t: 6000, conn_rate: 2, bytes_rate: 1000 },
      { t: 11_000, conn_rate: 0, bytes_rate: 0 },
      { t: 13_000, conn_rate: 1.5, bytes_rate: 500 },
    ]);
    expect(h.latest("ls")).toEqual({ t: 13_000, conn_rate: 1.5, bytes_rate: 500 });
  });

  it("keeps at most `capacity` points per listener", () => {
    const h = new TrafficHistory(3);
    for (let i = 0; i <= 10; i++) h.record(i * 1000, reading({ ls: [i, 0] }));
    expect(h.points("ls").map((p) => p.t)).toEqual([8000, 9000, 10_000]);
  });

  it("drops a listener that is gone; one that is new starts from 0", () => {
    const h = new TrafficHistory(5);
    h.record(0, reading({ a: [0, 0] }));
    h.record(1000, reading({ a: [4, 40] }));
    h.record(2000, reading({ b: [2, 10] }));
    expect(h.points("a")).toEqual([]);
    expect(h.points("b")).toEqual([{ t: 2000, conn_rate: 2, bytes_rate: 10 }]);
  });

  it("a rebound listener (smaller totals) counts its new totals, not a negative rate", () => {
    const h = new TrafficHistory(5);
    h.record(0, reading({ a: [100, 1000] }));
    h.record(1000, reading({ a: [3, 30] }));
    expect(h.latest("a")).toEqual({ t: 1000, conn_rate: 3, bytes_rate: 30 });
  });

  it.each([
    { name: "over the window", totals: { m1: 15, m2: 5 }, want: { m1: 0.5, m2: 0.5 } },
    { name: "nothing taken in the window", totals: { m1: 10, m2: 0 }, want: { m1: null, m2: null } },
    { name: "a member new since the window began counts from 0", totals: { m1: 10, m2: 0, m3: 10 }, want: { m1: 0, m2: 0, m3: 1 } },
  ])("members' share of their pool: $name", ({ totals, want }) => {
    const h = new TrafficHistory(5);
    h.record(0, reading({}, { p: { m1: 10, m2: 0 } }));
    expect(Object.fromEntries(h.shares("p", new Map(Object.entries(totals))))).toEqual(want);
  });

  it("the share window is the oldest sample kept", () => {
    const h = new TrafficHistory(2);
    h.record(0, reading({}, { p: { m1: 0, m2: 0 } }));
    h.record(1, reading({}, { p: { m1: 100, m2: 0 } }));
    h.record(2, reading({}, { p: { m1: 100, m2: 0 } }));
    h.record(3, reading({}, { p: { m1: 100, m2: 10 } }));
    // window starts at t=1 (m1 100, m2 0): since then only m2 took connections
    expect(Object.fromEntries(h.shares("p", new Map([["m1", 100], ["m2", 10]])))).toEqual({ m1: 0, m2: 1 });
  });
});

describe("startSampler", () => {
  afterEach(() => vi.useRealTimers());

  it("samples at once and on its interval, and stop() clears it", () => {
    vi.useFakeTimers();
    let n = 0;
    let t = 0;
    const s = startSampler(() => reading({ ls: [n++, 0] }), { intervalMs: 5000, capacity: 5, now: () => t });
    expect(n).toBe(1);
    for (let i = 1; i <= 3; i++) {
      t = i * 5000;
      vi.advanceTimersByTime(5000);
    }
    expect(n).toBe(4);
    expect(s.history.points("ls")).toEqual([5000, 10_000, 15_000].map((at) => ({ t: at, conn_rate: 0.2, bytes_rate: 0 })));
    s.stop();
    expect(s.history.points("ls")).toEqual([]);
    vi.advanceTimersByTime(20_000);
    expect(n).toBe(4);
    expect(vi.getTimerCount()).toBe(0);
  });
});
