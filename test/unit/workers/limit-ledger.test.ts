/**
 * The instance-wide connection_limit with workers (issue 14): leases in blocks, never more
 * than the limit out, idle slots reclaimed before a refusal, a dead worker's slots freed.
 * On fake time.
 */
import { describe, expect, it } from "vitest";
import { FakeClock, FakeTimers } from "../../../src/clock.js";
import { LimitLedger, RECLAIM_WAIT_MS } from "../../../src/workers/limit-ledger.js";

function setup(limit: number, workers = 2) {
  const clock = new FakeClock(0);
  const timers = new FakeTimers(clock);
  const sent: string[] = [];
  const ledger = new LimitLedger({
    limitOf: () => limit,
    workerCount: () => workers,
    grant: (w, l, n, keep) => sent.push(`grant w${w} ${l} ${n} keep ${keep}`),
    reclaim: (w, l) => sent.push(`reclaim w${w} ${l}`),
    timers,
  });
  return { ledger, sent, clock, timers };
}

describe("LimitLedger", () => {
  it.each([
    // limit, workers, want → what is granted (a block is limit / (8 × workers), at least 1)
    [10, 2, 1, "grant w0 ls 1 keep 1"],
    [10, 2, 15, "grant w0 ls 10 keep 1"],
    [1600, 2, 1, "grant w0 ls 100 keep 100"],
    [0, 2, 3, "grant w0 ls 3 keep 0"],
  ])("limit %i over %i workers, %i waiting: %s", (limit, workers, want, expected) => {
    const { ledger, sent } = setup(limit, workers);
    ledger.lease(0, "ls", want);
    expect(sent).toEqual([expected]);
  });

  it("never leases more than the limit; when none is free it reclaims the idle ones, then grants what came back", () => {
    const { ledger, sent } = setup(10);
    ledger.lease(0, "ls", 6);
    ledger.lease(1, "ls", 4);
    expect(sent.splice(0)).toEqual(["grant w0 ls 6 keep 1", "grant w1 ls 4 keep 1"]);
    expect(ledger.leased("ls")).toBe(10);
    // Worker 1 wants one more: everything is out, so both holders are asked for idle slots.
    ledger.lease(1, "ls", 1);
    expect(sent.splice(0)).toEqual(["reclaim w0 ls", "reclaim w1 ls"]);
    ledger.returned(0, "ls", 2); // worker 0 had 2 idle
    expect(sent).toEqual([]); // still waiting for worker 1's answer
    ledger.returned(1, "ls", 0);
    expect(sent.splice(0)).toEqual(["grant w1 ls 1 keep 1"]);
    expect(ledger.leased("ls")).toBe(9);
  });

  it("refuses (grants 0) only when a reclaim brought nothing back: the instance is at its limit", () => {
    const { ledger, sent } = setup(2);
    ledger.lease(0, "ls", 2);
    ledger.lease(1, "ls", 1);
    expect(sent.splice(0)).toEqual(["grant w0 ls 2 keep 1", "reclaim w0 ls"]);
    ledger.returned(0, "ls", 0);
    expect(sent.splice(0)).toEqual(["grant w1 ls 0 keep 1"]);
    expect(ledger.leased("ls")).toBe(2);
  });

  it("a reclaim that a worker never answers ends after RECLAIM_WAIT_MS with what came back", async () => {
    const { ledger, sent, timers } = setup(1);
    ledger.lease(0, "ls", 1);
    ledger.lease(1, "ls", 1);
    expect(sent.splice(0)).toEqual(["grant w0 ls 1 keep 1", "reclaim w0 ls"]);
    await timers.advance(RECLAIM_WAIT_MS - 1);
    expect(sent).toEqual([]);
    await timers.advance(1);
    expect(sent.splice(0)).toEqual(["grant w1 ls 0 keep 1"]);
  });

  it("a dead worker's slots are free at once, and waiting ones get them", () => {
    const { ledger, sent } = setup(3);
    ledger.lease(0, "ls", 3);
    ledger.lease(1, "ls", 1);
    expect(sent.splice(0)).toEqual(["grant w0 ls 3 keep 1", "reclaim w0 ls"]);
    ledger.workerGone(0);
    expect(sent.splice(0)).toEqual(["grant w1 ls 1 keep 1"]);
    expect(ledger.leased("ls")).toBe(1);
  });

  it("idle slots given back unasked are leased again", () => {
    const { ledger, sent } = setup(4);
    ledger.lease(0, "ls", 4);
    ledger.returned(0, "ls", 3);
    expect(ledger.leased("ls")).toBe(1);
    ledger.lease(1, "ls", 2);
    expect(sent.slice(-1)).toEqual(["grant w1 ls 2 keep 1"]);
    expect(ledger.leased("ls")).toBe(3);
  });

  it("a changed limit asks every holder for its idle slots", () => {
    const { ledger, sent } = setup(10);
    ledger.lease(0, "ls", 2);
    ledger.lease(1, "ls", 2);
    sent.splice(0);
    ledger.limitChanged("ls");
    expect(sent).toEqual(["reclaim w0 ls", "reclaim w1 ls"]);
  });
});

describe("LimitLedger.prune", () => {
  it("forgets a listener without a limit once nothing is leased, and keeps one that still has slots out", () => {
    const { ledger } = setup(4);
    ledger.lease(0, "gone", 2);
    ledger.lease(0, "busy", 2);
    ledger.returned(0, "gone", 2);
    ledger.prune(new Set());
    expect(ledger.leased("gone")).toBe(0);
    expect(ledger.leased("busy")).toBe(2);
    expect((ledger as unknown as { ledgers: Map<string, unknown> }).ledgers.has("gone")).toBe(false);
    expect((ledger as unknown as { ledgers: Map<string, unknown> }).ledgers.has("busy")).toBe(true);
  });
});
