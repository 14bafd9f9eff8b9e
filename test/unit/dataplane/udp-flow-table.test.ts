/** The UDP flow table (SPEC §3): keyed by address:port, bounded, expiry in last-activity order. */
import { describe, expect, it } from "vitest";
import { FlowTable, type Flow } from "../../../src/dataplane/flow-table.js";

interface F extends Flow {
  name: string;
}

function flow(name: string, address: string, port: number, lastSeen: number): F {
  return { name, address, port, lastSeen, prev: null, next: null, inTable: false };
}

type Step =
  | ["add", string, number] // name, time
  | ["touch", string, number]
  | ["delete", string];

/** Names are "<address>:<port>"-free labels; every flow gets its own port on one of two addresses. */
function run(steps: Step[], cap = 100): { table: FlowTable<F>; flows: Map<string, F>; added: boolean[] } {
  const table = new FlowTable<F>(cap);
  const flows = new Map<string, F>();
  const added: boolean[] = [];
  let port = 1000;
  for (const s of steps) {
    if (s[0] === "add") {
      const f = flow(s[1], port % 2 ? "10.0.0.1" : "2001:db8::1", port++, s[2]);
      flows.set(s[1], f);
      added.push(table.add(f));
    } else if (s[0] === "touch") table.touch(flows.get(s[1])!, s[2]);
    else table.delete(flows.get(s[1])!);
  }
  return { table, flows, added };
}

describe("FlowTable expiry order", () => {
  const cases: Array<{ name: string; steps: Step[]; order: string[]; idleAt5: string[] }> = [
    { name: "insertion order without activity", steps: [["add", "a", 0], ["add", "b", 1], ["add", "c", 2]], order: ["a", "b", "c"], idleAt5: ["a", "b", "c"] },
    { name: "a touched flow becomes the youngest", steps: [["add", "a", 0], ["add", "b", 1], ["add", "c", 2], ["touch", "a", 6]], order: ["b", "c", "a"], idleAt5: ["b", "c"] },
    { name: "touching the youngest keeps the order", steps: [["add", "a", 0], ["add", "b", 1], ["touch", "b", 7]], order: ["a", "b"], idleAt5: ["a"] },
    { name: "a touch at the same coarse time does not move", steps: [["add", "a", 3], ["add", "b", 3], ["touch", "a", 3]], order: ["a", "b"], idleAt5: ["a", "b"] },
    { name: "delete from the middle, the head and the tail", steps: [["add", "a", 0], ["add", "b", 1], ["add", "c", 2], ["add", "d", 3], ["delete", "b"], ["delete", "a"], ["delete", "d"]], order: ["c"], idleAt5: ["c"] },
    { name: "expiry stops at the first younger flow", steps: [["add", "a", 0], ["add", "b", 9], ["add", "c", 1], ["touch", "a", 9]], order: ["b", "c", "a"], idleAt5: [] },
    { name: "repeated touches rotate", steps: [["add", "a", 0], ["add", "b", 0], ["add", "c", 0], ["touch", "a", 1], ["touch", "b", 2], ["touch", "c", 3], ["touch", "a", 8]], order: ["b", "c", "a"], idleAt5: ["b", "c"] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { table } = run(c.steps);
      expect(table.all().map((f) => f.name)).toEqual(c.order);
      expect(table.idleSince(5).map((f) => f.name)).toEqual(c.idleAt5);
      expect(table.size).toBe(c.order.length);
      expect(table.oldest()?.name).toBe(c.order[0]);
    });
  }

  it("looks flows up by address and port, and forgets deleted ones", () => {
    const { table, flows } = run([["add", "a", 0], ["add", "b", 0], ["add", "c", 0], ["delete", "b"]]);
    const a = flows.get("a")!;
    expect(table.get(a.address, a.port)).toBe(a);
    const b = flows.get("b")!;
    expect(table.get(b.address, b.port)).toBeUndefined();
    expect(table.get(a.address, 9)).toBeUndefined();
    expect(table.get("10.9.9.9", a.port)).toBeUndefined();
    expect(table.delete(b)).toBe(false); // twice is harmless
    expect(table.size).toBe(2);
  });

  it("an empty table has nothing to expire", () => {
    const { table } = run([["add", "a", 0], ["delete", "a"]]);
    expect(table.oldest()).toBeNull();
    expect(table.idleSince(100)).toEqual([]);
    expect(table.all()).toEqual([]);
  });
});

describe("FlowTable cap", () => {
  const cases: Array<{ cap: number; adds: number; deletesAfter: number; size: number; refusedBeforeDelete: number }> = [
    { cap: 1, adds: 3, deletesAfter: 0, size: 1, refusedBeforeDelete: 2 },
    { cap: 3, adds: 3, deletesAfter: 0, size: 3, refusedBeforeDelete: 0 },
    { cap: 3, adds: 5, deletesAfter: 1, size: 3, refusedBeforeDelete: 2 },
    { cap: 100, adds: 1000, deletesAfter: 10, size: 100, refusedBeforeDelete: 900 },
  ];
  for (const c of cases) {
    it(`cap ${c.cap}: ${c.adds} adds keep ${c.size}; a freed slot is usable again`, () => {
      const steps: Step[] = Array.from({ length: c.adds }, (_, i) => ["add", `f${i}`, i] as Step);
      const { table, flows, added } = run(steps, c.cap);
      expect(added.filter((x) => !x).length).toBe(c.refusedBeforeDelete);
      expect(table.size).toBe(Math.min(c.cap, c.adds));
      // Flows refused by the cap are not in the table.
      for (const [i, ok] of added.entries()) expect(flows.get(`f${i}`)!.inTable).toBe(ok);
      for (let i = 0; i < c.deletesAfter; i++) table.delete(table.oldest()!);
      for (let i = 0; i < c.deletesAfter; i++) expect(table.add({ name: `n${i}`, address: "10.1.1.1", port: i, lastSeen: 99, prev: null, next: null, inTable: false })).toBe(true);
      expect(table.size).toBe(c.size);
    });
  }

  it("refuses a second flow for the same address:port", () => {
    const table = new FlowTable<F>(10);
    expect(table.add(flow("a", "10.0.0.1", 5, 0))).toBe(true);
    expect(table.add(flow("b", "10.0.0.1", 5, 0))).toBe(false);
    expect(table.get("10.0.0.1", 5)!.name).toBe("a");
    expect(table.size).toBe(1);
  });

  it("a lowered cap refuses new flows and keeps the existing ones", () => {
    const table = new FlowTable<F>(5);
    for (let i = 0; i < 5; i++) table.add(flow(`f${i}`, "10.0.0.1", i, 0));
    table.cap = 2;
    expect(table.add(flow("x", "10.0.0.1", 99, 0))).toBe(false);
    expect(table.size).toBe(5);
  });
});
