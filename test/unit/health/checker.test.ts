import { afterEach, describe, expect, it } from "vitest";
import { FakeClock, FakeTimers } from "../../../src/clock.js";
import { HealthChecker, type TimerApi } from "../../../src/health/checker.js";
import type { Transition } from "../../../src/health/state-machine.js";
import type { HealthMonitorSettings, ProbeOptions, ProbeResult, ProbeTarget } from "../../../src/health/types.js";

/** Timers driven by a FakeClock: advance() fires due callbacks in time order. */
class ManualTimers extends FakeTimers {
  get count(): number {
    return this.pending;
  }
}

/** Let promise chains (prober → checker) settle. */
const flush = () => new Promise<void>((r) => setImmediate(r));

const base: HealthMonitorSettings = {
  type: "TCP",
  delay: 5,
  timeout: 3,
  max_retries: 3,
  max_retries_down: 3,
  monitor_port: null,
  url_path: "/",
  expected_codes: "200",
  http_method: "GET",
  domain_name: null,
  tcp_send: null,
  tcp_expect: null,
  admin_state_up: true,
};

interface Call {
  key: string;
  target: ProbeTarget;
  settings: HealthMonitorSettings;
  opts: ProbeOptions | undefined;
  at: number;
}

/** A scripted prober: results per member, "P"/"F"; the last one repeats. */
function setup(script: Record<string, string>, o: { random?: () => number; settle?: "now" | "manual" } = {}) {
  const clock = new FakeClock(1_000);
  const timers = new ManualTimers(clock);
  const calls: Call[] = [];
  const transitions: { key: string; t: Transition; at: number }[] = [];
  const held: ((r: ProbeResult) => void)[] = [];
  const idx = new Map<string, number>();
  const checker = new HealthChecker({
    clock,
    timers,
    random: o.random ?? (() => 0.5),
    onTransition: (key, t) => transitions.push({ key, t, at: clock.now() }),
    prober: (target, settings, opts) => {
      const key = `${target.address}:${target.port}`;
      calls.push({ key, target, settings, opts, at: clock.now() });
      if (o.settle === "manual")
        return new Promise<ProbeResult>((r) => {
          held.push(r);
          // Honour abort as the Prober contract asks (close() waits for probes to settle).
          opts?.signal?.addEventListener("abort", () => r({ ok: false, detail: "aborted" }));
        });
      const s = script[key] ?? "P";
      const i = idx.get(key) ?? 0;
      idx.set(key, i + 1);
      const c = s[Math.min(i, s.length - 1)];
      return Promise.resolve(c === "P" ? { ok: true, detail: "connected" } : { ok: false, detail: "connect ECONNREFUSED" });
    },
  });
  return { clock, timers, calls, transitions, held, checker };
}

let current: HealthChecker | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe("HealthChecker (fake clock, scripted prober)", () => {
  it("first check at the random moment within delay; a pass is ONLINE at once", async () => {
    const h = setup({ "10.0.0.1:80": "P" }, { random: () => 0.25 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    expect(h.checker.status("m1")).toMatchObject({ status: "OFFLINE", state: "UNCHECKED", lastResult: null, checkedAt: null });
    await h.timers.advance(1249);
    expect(h.calls).toHaveLength(0);
    await h.timers.advance(1);
    expect(h.calls.map((c) => c.at)).toEqual([2250]);
    expect(h.checker.status("m1")).toMatchObject({ status: "ONLINE", lastResult: true, lastDetail: "connected", checkedAt: 2250 });
    expect(h.transitions).toEqual([{ key: "m1", at: 2250, t: { from: "UNCHECKED", to: "ONLINE", reason: "first check passed" } }]);
  });

  it("then checks every delay seconds", async () => {
    const h = setup({}, { random: () => 0 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    await h.timers.advance(20_000);
    expect(h.calls.map((c) => c.at)).toEqual([1000, 6000, 11000, 16000, 21000]);
  });

  // Each row: results in order; expected status after each check (1 ONLINE, 0 OFFLINE).
  const table = [
    { name: "first fail, then max_retries passes", script: "FPPP", up: 3, down: 3, expect: "0001" },
    { name: "first pass, max_retries_down failures", script: "PFFF", up: 3, down: 3, expect: "1110" },
    { name: "a failure resets the pass count", script: "FPPFPPP", up: 3, down: 2, expect: "0000001" },
    { name: "a pass resets the failure count", script: "PFFPFFF", up: 2, down: 3, expect: "1111110" },
    { name: "thresholds of 1", script: "PFPF", up: 1, down: 1, expect: "1010" },
    { name: "thresholds of 10", script: "FPPPPPPPPPP", up: 10, down: 10, expect: "00000000001" },
  ];
  it.each(table)("$name ($script)", async ({ script, up, down, expect: want }) => {
    const h = setup({ "10.0.0.1:80": script }, { random: () => 0 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1, max_retries: up, max_retries_down: down });
    const seen: string[] = [];
    for (let i = 0; i < script.length; i++) {
      await h.timers.advance(i === 0 ? 0 : 1000);
      seen.push(h.checker.status("m1")?.status === "ONLINE" ? "1" : "0");
    }
    expect(h.calls).toHaveLength(script.length);
    expect(seen.join("")).toBe(want);
  });

  it("reports one transition per state change with reasons", async () => {
    const h = setup({ "10.0.0.1:80": "FPPFFF" }, { random: () => 0 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1, max_retries: 2, max_retries_down: 3 });
    await h.timers.advance(10_000);
    expect(h.transitions.map((x) => [x.t.from, x.t.to, x.t.reason, x.at])).toEqual([
      ["UNCHECKED", "OFFLINE", "first check failed: connect ECONNREFUSED", 1000],
      ["OFFLINE", "ONLINE", "2 consecutive passes", 3000],
      ["ONLINE", "OFFLINE", "3 consecutive failures: connect ECONNREFUSED", 6000],
    ]);
  });

  it("applies monitor_port, localAddress and the prefix; per-member settings", async () => {
    const h = setup({}, { random: () => 0 });
    current = h.checker;
    const prefix = Buffer.from("hdr");
    h.checker.add("a", { address: "10.0.0.1", port: 80, localAddress: "10.0.0.9", prefix }, { ...base, monitor_port: 8081 });
    h.checker.add("b", { address: "10.0.0.2", port: 81 }, { ...base, type: "HTTP" });
    await h.timers.advance(0);
    expect(h.calls).toHaveLength(2);
    expect(h.calls[0]?.target).toEqual({ address: "10.0.0.1", port: 8081, localAddress: "10.0.0.9" });
    expect(h.calls[0]?.opts?.prefix).toBe(prefix);
    expect(h.calls[0]?.opts?.signal).toBeInstanceOf(AbortSignal);
    expect(h.calls[1]?.target).toEqual({ address: "10.0.0.2", port: 81 });
    expect(h.calls[1]?.settings.type).toBe("HTTP");
  });

  it("late timer wakeups do not drift the schedule", async () => {
    const clock = new FakeClock(0);
    const manual = new ManualTimers(clock);
    const late: TimerApi = { set: (fn, ms) => manual.set(fn, ms + 7), clear: (h) => manual.clear(h) };
    const at: number[] = [];
    const checker = new HealthChecker({
      clock,
      timers: late,
      random: () => 0,
      prober: () => (at.push(clock.now()), Promise.resolve({ ok: true, detail: "" })),
    });
    current = checker;
    checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1 });
    await manual.advance(4_100);
    expect(at).toEqual([7, 1007, 2007, 3007, 4007]);
  });

  it("never overlaps probes of one member; an overrunning probe is followed at once", async () => {
    const h = setup({}, { random: () => 0, settle: "manual" });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1, timeout: 5 });
    await h.timers.advance(0);
    expect(h.calls).toHaveLength(1);
    await h.timers.advance(4_000); // four intervals pass while the probe hangs
    expect(h.calls).toHaveLength(1);
    expect(h.timers.count).toBe(0);
    h.held[0]?.({ ok: true, detail: "late" });
    await h.timers.advance(0);
    expect(h.calls.map((c) => c.at)).toEqual([1000, 5000]);
    h.held[1]?.({ ok: true, detail: "quick" });
    await h.timers.advance(1000);
    expect(h.calls.map((c) => c.at)).toEqual([1000, 5000, 6000]);
  });

  it("remove clears the timer and aborts the in-flight probe; its result is dropped", async () => {
    const h = setup({}, { random: () => 0, settle: "manual" });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    h.checker.add("m2", { address: "10.0.0.2", port: 80 }, base);
    await h.timers.advance(0);
    const signal = h.calls[0]?.opts?.signal;
    expect(h.checker.remove("m1")).toBe(true);
    expect(h.checker.remove("m1")).toBe(false);
    expect(signal?.aborted).toBe(true);
    h.held[0]?.({ ok: true, detail: "late" });
    await h.timers.advance(60_000);
    expect(h.checker.status("m1")).toBeUndefined();
    expect(h.transitions).toEqual([]);
    expect(h.checker.size).toBe(1);
  });

  it("remove before the first check: no probe ever runs", async () => {
    const h = setup({});
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    expect(h.timers.count).toBe(1);
    h.checker.remove("m1");
    expect(h.timers.count).toBe(0);
    await h.timers.advance(60_000);
    expect(h.calls).toHaveLength(0);
  });

  it("close clears every timer, aborts in-flight probes and refuses new members", async () => {
    const h = setup({ "10.0.0.1:80": "P" }, { random: () => 0.9 });
    h.checker.add("m0", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1 });
    await h.timers.advance(1000);
    // A prober that honours abort, like the real ones.
    for (let i = 1; i <= 100; i++) h.checker.add(`m${i}`, { address: "10.0.1.1", port: i }, base);
    expect(h.timers.count).toBe(101);
    await h.checker.close();
    expect(h.timers.count).toBe(0);
    expect(h.checker.size).toBe(0);
    expect(() => h.checker.add("x", { address: "10.0.0.1", port: 1 }, base)).toThrow(
      expect.objectContaining({ code: "LB4.HEALTH_CHECKER_CLOSED" }),
    );
  });

  it("close waits for in-flight probes to settle after abort", async () => {
    const clock = new FakeClock();
    const timers = new ManualTimers(clock);
    let released = false;
    const checker = new HealthChecker({
      clock,
      timers,
      random: () => 0,
      prober: (_t, _s, opts) =>
        new Promise((resolve) =>
          opts?.signal?.addEventListener("abort", () =>
            setImmediate(() => {
              released = true;
              resolve({ ok: false, detail: "aborted" });
            }),
          ),
        ),
    });
    checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    await timers.advance(0);
    await checker.close();
    expect(released).toBe(true);
  });

  it("monitor admin_state_up false: NO_MONITOR and no probes; back up: starts over", async () => {
    const h = setup({ "10.0.0.1:80": "PPPPF" }, { random: () => 0 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, admin_state_up: false });
    await h.timers.advance(30_000);
    expect(h.calls).toHaveLength(0);
    expect(h.checker.status("m1")?.status).toBe("NO_MONITOR");
    h.checker.update("m1", { ...base, admin_state_up: true });
    await h.timers.advance(0);
    expect(h.checker.status("m1")?.status).toBe("ONLINE");
    h.checker.update("m1", { ...base, admin_state_up: false });
    expect(h.checker.status("m1")).toMatchObject({ status: "NO_MONITOR", state: "UNCHECKED", lastResult: null, checkedAt: null });
    expect(h.timers.count).toBe(0);
  });

  it("update keeps health, applies a new delay from the last check, drops stale in-flight results", async () => {
    const h = setup({ "10.0.0.1:80": "PF" }, { random: () => 0 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 10, max_retries_down: 1 });
    await h.timers.advance(0);
    expect(h.checker.status("m1")?.status).toBe("ONLINE");
    await h.timers.advance(1000);
    h.checker.update("m1", { ...base, delay: 2, max_retries_down: 1 });
    expect(h.checker.status("m1")?.status).toBe("ONLINE");
    await h.timers.advance(2000);
    expect(h.calls.map((c) => c.at)).toEqual([1000, 3000]);
    expect(h.checker.status("m1")?.status).toBe("OFFLINE");
    expect(() => h.checker.update("nope", base)).toThrow(expect.objectContaining({ code: "LB4.NOT_FOUND" }));
  });

  it("a result of a probe started before an update is ignored", async () => {
    const h = setup({}, { random: () => 0, settle: "manual" });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1 });
    await h.timers.advance(0);
    h.checker.update("m1", { ...base, delay: 1, monitor_port: 9999 });
    h.held[0]?.({ ok: true, detail: "old port" });
    await h.timers.advance(0);
    expect(h.checker.status("m1")).toMatchObject({ state: "UNCHECKED", lastResult: null });
    await h.timers.advance(1000);
    expect(h.calls[1]?.target.port).toBe(9999);
  });

  it("adding a known key updates it instead of duplicating timers", async () => {
    const h = setup({});
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, base);
    expect(h.timers.count).toBe(1);
    expect(h.checker.size).toBe(1);
  });

  it("a rejecting or throwing prober counts as a failure", async () => {
    const clock = new FakeClock();
    const timers = new ManualTimers(clock);
    const checker = new HealthChecker({
      clock,
      timers,
      random: () => 0,
      prober: { TCP: () => Promise.reject(Object.assign(new Error("x"), { code: "EBOOM" })), HTTP: () => { throw new Error("sync boom"); } },
    });
    current = checker;
    checker.add("t", { address: "10.0.0.1", port: 80 }, base);
    checker.add("h", { address: "10.0.0.1", port: 81 }, { ...base, type: "HTTP" });
    await timers.advance(0);
    expect(checker.status("t")).toMatchObject({ status: "OFFLINE", lastResult: false, lastDetail: "EBOOM" });
    expect(checker.status("h")).toMatchObject({ status: "OFFLINE", lastResult: false, lastDetail: "sync boom" });
  });

  it("a throwing callback goes to onError and the checker keeps going", async () => {
    const clock = new FakeClock();
    const timers = new ManualTimers(clock);
    const errors: unknown[] = [];
    const results: [string, boolean, number][] = [];
    const checker = new HealthChecker({
      clock,
      timers,
      random: () => 0,
      prober: () => Promise.resolve({ ok: true, detail: "ok" }),
      onTransition: () => {
        throw new Error("listener bug");
      },
      onResult: (k, r, d) => results.push([k, r.ok, d]),
      onError: (e) => errors.push(e),
    });
    current = checker;
    checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, delay: 1 });
    await timers.advance(2000);
    expect(errors).toHaveLength(1);
    expect(results).toEqual([["m1", true, 0], ["m1", true, 0], ["m1", true, 0]]);
  });

  it("spreads first checks of many members over the first delay", async () => {
    const h = setup({});
    current = h.checker;
    let i = 0;
    const c = new HealthChecker({ clock: h.clock, timers: h.timers, random: () => (i++ % 100) / 100, prober: () => Promise.resolve({ ok: true, detail: "" }) });
    for (let k = 0; k < 100; k++) c.add(`m${k}`, { address: "10.0.0.1", port: k + 1 }, { ...base, delay: 1 });
    expect(h.timers.nextAt()).toBe(1000);
    const starts = new Set<number>();
    const before = h.clock.now();
    for (let k = 0; k < 100; k++) {
      const at = h.timers.nextAt()!;
      starts.add(at - before);
      await h.timers.advance(at - h.clock.now());
    }
    expect(starts.size).toBeGreaterThan(90);
    await c.close();
  });
});

describe("HealthChecker: health restored after a restart (SPEC §4)", () => {
  it.each([
    { restored: "ONLINE" as const, script: "P", after: "ONLINE", transitions: [] as string[] },
    { restored: "ONLINE" as const, script: "F", after: "OFFLINE", transitions: ["ONLINE->OFFLINE"] },
    { restored: "OFFLINE" as const, script: "P", after: "ONLINE", transitions: ["OFFLINE->ONLINE"] },
    { restored: "OFFLINE" as const, script: "F", after: "OFFLINE", transitions: [] as string[] },
  ])("restored $restored, first check $script: keeps the state until the check, which decides at once ($after)", async ({ restored, script, after, transitions }) => {
    // random 0.999 with delay 5 would put a new member's first check at 4,995 ms.
    const h = setup({ "10.0.0.1:80": script }, { random: () => 0.999 });
    current = h.checker;
    h.checker.add("m1", { address: "10.0.0.1", port: 80 }, { ...base, max_retries: 3, max_retries_down: 3 }, { restored });
    expect(h.checker.status("m1")).toMatchObject({ status: restored, state: restored, lastResult: null });
    await h.timers.advance(998);
    expect(h.calls).toHaveLength(0);
    expect(h.checker.status("m1")?.state).toBe(restored);
    await h.timers.advance(1);
    expect(h.calls.map((c) => c.at)).toEqual([1_999]);
    expect(h.checker.status("m1")?.state).toBe(after);
    expect(h.transitions.map((t) => `${t.t.from}->${t.t.to}`)).toEqual(transitions);
    // From then on the thresholds apply as usual: the next result alone changes nothing.
    await h.timers.advance(5000);
    expect(h.checker.status("m1")?.state).toBe(after);
  });
});
