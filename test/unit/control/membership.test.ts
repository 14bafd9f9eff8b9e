/** FileMembership: the file + state_dir overlay behind the MembershipSource interface. */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gate } from "../../../src/control/gate.js";
import { FileMembership } from "../../../src/control/membership.js";
import type { Config, MemberConfig } from "../../../src/config/schema.js";
import { StateStore } from "../../../src/state/store.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const m = (id: string, port: number, weight = 1): MemberConfig => ({ id, address: "127.0.0.1", protocol_port: port, weight, admin_state_up: true });
const base = (pools: Array<{ id: string; members: MemberConfig[] }>, crossVpc = false): Config =>
  gate({
    vpcs: [{ id: "v", cidrs: ["127.0.0.0/16"], subnets: [{ id: "sn", cidr: "127.0.10.0/24" }] }],
    loadbalancers: [{ id: "lb", vpc_id: "v", elb_virsubnet_ids: ["sn"], ip_target_enable: crossVpc, vip_address: "127.0.0.1", listeners: [], pools: pools.map((p) => ({ ...p, protocol: "TCP" })) }],
  });

async function source(): Promise<{ src: FileMembership; store: StateStore }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lb4-membership-"));
  dirs.push(dir);
  const store = new StateStore(dir);
  const src = new FileMembership(store);
  await src.load();
  return { src, store };
}

describe("FileMembership", () => {
  it("a member change is durable, survives a new source on the same dir, and overlays the base", async () => {
    const { src, store } = await source();
    const cfg = base([{ id: "p", members: [m("a", 1), m("b", 2)] }]);
    const before = cfg.loadbalancers[0]!.pools[0]!.members;
    const changed = [before[0]!, { ...before[1]!, weight: 7 }, m("c", 3)];
    await src.acceptChange("p", before, changed);
    await src.acceptChange("p", changed, [changed[1]!, changed[2]!]); // a removed
    const again = new FileMembership(store);
    await again.load();
    expect(again.membership(cfg).loadbalancers[0]!.pools[0]!.members.map((x) => [x.id, x.weight])).toEqual([
      ["b", 7],
      ["c", 1],
    ]);
    expect(JSON.parse(await readFile(store.file, "utf8")).members.p).toEqual({ upsert: { b: changed[1], c: changed[2] }, deleted: ["a"] });
  });

  it("acceptConfig records cross-VPC on and drops overlays of pools that are gone; its undo restores both", async () => {
    const { src, store } = await source();
    await src.acceptChange("q", [], [m("z", 9)]);
    const next = base([{ id: "p", members: [m("a", 1)] }], true);
    const undo = await src.acceptConfig(next);
    expect(src.facts().cross_vpc_enabled).toEqual(["lb"]);
    expect(src.facts().members.q).toBeUndefined();
    await undo();
    expect(src.facts().cross_vpc_enabled).toEqual([]);
    expect(src.facts().members.q?.upsert.z?.protocol_port).toBe(9);
    expect(JSON.parse(await readFile(store.file, "utf8")).cross_vpc_enabled).toEqual([]);
  });

  it("without a store, changes live in memory only", async () => {
    const src = new FileMembership(undefined);
    await src.load();
    expect(src.where).toBeUndefined();
    await src.acceptChange("p", [], [m("a", 1)]);
    expect(src.membership(base([{ id: "p", members: [] }])).loadbalancers[0]!.pools[0]!.members.map((x) => x.id)).toEqual(["a"]);
  });
});
