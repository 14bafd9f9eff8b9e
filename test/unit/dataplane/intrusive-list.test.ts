import { describe, expect, it } from "vitest";
import { IntrusiveList as SessionList } from "../../../src/dataplane/intrusive-list.js";

class Node {
  prev: Node | undefined = undefined;
  next: Node | undefined = undefined;
  constructor(readonly n: number) {}
}

const ids = (l: SessionList<Node>) => [...l].map((x) => x.n);

describe("SessionList", () => {
  const cases: Array<{ name: string; add: number[]; remove: number[]; left: number[] }> = [
    { name: "newest first", add: [1, 2, 3], remove: [], left: [3, 2, 1] },
    { name: "remove the head", add: [1, 2, 3], remove: [3], left: [2, 1] },
    { name: "remove the tail", add: [1, 2, 3], remove: [1], left: [3, 2] },
    { name: "remove the middle", add: [1, 2, 3], remove: [2], left: [3, 1] },
    { name: "remove all", add: [1, 2, 3], remove: [2, 3, 1], left: [] },
    { name: "removing twice is a no-op", add: [1, 2], remove: [1, 1], left: [2] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const l = new SessionList<Node>();
      const nodes = new Map(c.add.map((n) => [n, new Node(n)]));
      for (const n of c.add) l.add(nodes.get(n)!);
      for (const n of c.remove) l.delete(nodes.get(n)!);
      expect(ids(l)).toEqual(c.left);
      expect(l.size).toBe(c.left.length);
    });
  }

  it("a node that was never added is not removed, and the list is untouched", () => {
    const l = new SessionList<Node>();
    l.add(new Node(1));
    l.delete(new Node(2));
    expect(ids(l)).toEqual([1]);
    expect(l.size).toBe(1);
  });

  it("forEach visits every node even when the visitor removes the one it is given", () => {
    const l = new SessionList<Node>();
    for (let i = 0; i < 5; i++) l.add(new Node(i));
    const seen: number[] = [];
    l.forEach((x) => {
      seen.push(x.n);
      if (x.n % 2 === 0) l.delete(x);
    });
    expect(seen).toEqual([4, 3, 2, 1, 0]);
    expect(ids(l)).toEqual([3, 1]);
    expect(l.size).toBe(2);
  });
});
