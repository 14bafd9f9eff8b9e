import { describe, expect, it } from "vitest";
import { Lb4Error } from "../../../src/errors.js";
import { LeastConnectionsScheduler } from "../../../src/scheduling/least-connections.js";
import { MaglevScheduler } from "../../../src/scheduling/maglev.js";
import { ALGORITHMS, createScheduler } from "../../../src/scheduling/registry.js";
import { RoundRobinScheduler } from "../../../src/scheduling/round-robin.js";
import type { Algorithm } from "../../../src/scheduling/types.js";

describe("scheduler registry", () => {
  it("lists every algorithm of SPEC §4", () => {
    expect([...ALGORITHMS].sort()).toEqual(["LEAST_CONNECTIONS", "ROUND_ROBIN", "SOURCE_IP"]);
  });

  it.each([
    { name: "ROUND_ROBIN", cls: RoundRobinScheduler },
    { name: "LEAST_CONNECTIONS", cls: LeastConnectionsScheduler },
    { name: "SOURCE_IP", cls: MaglevScheduler },
  ] as const)("$name → $cls.name", ({ name, cls }) => {
    const s = createScheduler(name);
    expect(s).toBeInstanceOf(cls);
    expect(s.algorithm).toBe(name);
  });

  it("gives a fresh scheduler each call", () => {
    const a = createScheduler("ROUND_ROBIN");
    a.update([{ key: "x:1", effectiveWeight: 1, active: 0 }]);
    expect(createScheduler("ROUND_ROBIN").pick({ ip: "192.0.2.1", port: 1 })).toBeUndefined();
  });

  it.each(["RANDOM", "", "round_robin", "SOURCE_IP_PORT", "toString", "__proto__", "constructor"])(
    "unknown name %j throws LB4.UNKNOWN_ALGORITHM",
    (name) => {
      let caught: unknown;
      try {
        createScheduler(name as Algorithm);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(Lb4Error);
      expect((caught as Lb4Error).code).toBe("LB4.UNKNOWN_ALGORITHM");
    },
  );
});
