/** RateLimitedLog: a flood of one kind of event is one line per interval, counting the rest. */
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { RateLimitedLog } from "../../../src/dataplane/ratelimit.js";

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  let now = 0;
  const log = new RateLimitedLog(pino({ level: "warn" }, stream), () => now, 1000);
  return { log, lines, at: (t: number) => (now = t) };
}

describe("RateLimitedLog", () => {
  it.each<[string, number[], number[]]>([
    // event times (ms) → the `suppressed` count of each line written
    ["one event, one line", [0], [0]],
    ["a burst within the interval: one line", [0, 1, 2, 999], [0]],
    ["the next line after the interval counts what was held back", [0, 10, 20, 1000, 1001, 2500], [0, 2, 1]],
  ])("%s", async (_name, times, suppressed) => {
    const { log, lines, at } = setup();
    for (const t of times) {
      at(t);
      log.event("accept_error", "accept:ls-1", { listener: "ls-1", err: "EMFILE", msg: "accept failed" });
    }
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => l.suppressed)).toEqual(suppressed);
    expect(lines.every((l) => l.ev === "accept_error" && l.err === "EMFILE" && l.msg === "accept failed")).toBe(true);
  });

  it("limits each key apart, and warn() writes ev refused with its reason", async () => {
    const { log, lines, at } = setup();
    at(0);
    log.warn("acl", { listener: "a", msg: "refused" });
    log.warn("fd_limit", { listener: "a", msg: "refused" });
    log.warn("acl", { listener: "a", msg: "refused" });
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.ev, l.reason])).toEqual([
      ["refused", "acl"],
      ["refused", "fd_limit"],
    ]);
  });
});
