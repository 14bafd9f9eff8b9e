/**
 * kill -9 during admin writes: each cycle starts lb4 on the same state_dir, runs concurrent
 * member adds, weight changes and removals, and kills lb4 with SIGKILL while some are in
 * flight. After every restart each acknowledged change is there (SPEC §8: persisted before
 * the reply), lb4 starts on whatever the kill left, and no stale state.json.*.tmp files
 * remain.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.js";
import { envInt } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";
import { adminBase, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";

const CYCLES = envInt("LB4_KILL9_CYCLES", 20);
const WRITERS = 6;
const POOL = "pool-k";

/** What the acknowledged writes say must be true after a restart, per member id. */
interface Expect {
  /** Acknowledged present with at least this weight (weights only grow), or acknowledged removed. */
  present: boolean;
  minWeight: number;
  /** A write to it was in flight at the kill: its outcome is unknown (the ack rules above still bound it). */
  uncertain: boolean;
}

describe("kill -9 during admin writes", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-kill9-"));
  });
  afterEach(() => killAllLb4());
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${CYCLES} cycles of concurrent writes and kill -9: no acknowledged change is lost, no temp files pile up`, async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const stateDir = path.join(dir, "state");
    const file = path.join(dir, "lb4.yaml");
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const config = {
      ...adminBase(adminPort, stateDir),
      loadbalancers: [
        {
          id: "lb-k",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-k", protocol: "TCP", protocol_port: port, default_pool_id: POOL }],
          pools: [{ id: POOL, protocol: "TCP", members: [{ id: "m-base", address: "127.0.0.1", protocol_port: 9 }] }],
        },
      ],
    };
    const expected = new Map<string, Expect>();
    const lost: string[] = [];
    const tmpAfterStart: number[] = [];
    let tmpMax = 0;
    let acked = 0;
    let nextPort = 20_000;
    const tmpFiles = () => readdirSync(stateDir).filter((f) => f.startsWith("state.json.") && f.endsWith(".tmp")).length;

    let lb = await Lb4Proc.start({ config, file, adminUrl });
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // Writers: each owns its members, so its own acks are ordered. Stop at the kill.
      const killAfter = 3 + ((cycle * 7) % 13);
      let ackedThisCycle = 0;
      let killed = false;
      const killedNow = new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (ackedThisCycle >= killAfter || !lb.alive()) {
            clearInterval(check);
            resolve();
          }
        }, 1);
      });
      const writer = async (w: number) => {
        const mine: string[] = [];
        for (let j = 0; !killed && j < 200; j++) {
          let op: { method: string; path: string; body?: unknown; id: string; apply(ok: boolean): void };
          const r = (cycle * 31 + w * 7 + j) % 5;
          if (mine.length === 0 || r < 3) {
            const id = `k${cycle}-${w}-${j}`;
            const p = nextPort++;
            op = {
              method: "POST",
              path: `/v3/elb/pools/${POOL}/members`,
              body: { member: { id, address: "127.0.0.1", protocol_port: p, weight: 1 } },
              id,
              apply: (ok) => {
                if (ok) {
                  expected.set(id, { present: true, minWeight: 1, uncertain: false });
                  mine.push(id);
                }
              },
            };
          } else if (r === 3) {
            const id = mine[j % mine.length]!;
            const e = expected.get(id)!;
            const weight = Math.min(100, e.minWeight + 1);
            op = {
              method: "PUT",
              path: `/v3/elb/pools/${POOL}/members/${id}`,
              body: { member: { weight } },
              id,
              apply: (ok) => {
                if (ok) e.minWeight = weight;
              },
            };
          } else {
            const id = mine.splice(j % mine.length, 1)[0]!;
            op = {
              method: "DELETE",
              path: `/v3/elb/pools/${POOL}/members/${id}`,
              id,
              apply: (ok) => {
                if (ok) expected.set(id, { present: false, minWeight: 0, uncertain: false });
              },
            };
          }
          let status = 0;
          try {
            status = (await lb.api(op.method, op.path, { body: op.body, timeoutMs: 10_000 })).status;
          } catch {
            // killed mid-request: the change may or may not have been made
            const e = expected.get(op.id);
            if (e) e.uncertain = true;
            else expected.set(op.id, { present: false, minWeight: 0, uncertain: true });
            return;
          }
          if (status >= 200 && status < 300) {
            ackedThisCycle++;
            acked++;
          }
          op.apply(status >= 200 && status < 300);
        }
      };
      const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
      await killedNow;
      killed = true;
      await lb.kill9();
      await Promise.all(writers);
      tmpMax = Math.max(tmpMax, tmpFiles());

      lb = await Lb4Proc.spawn({ file, adminUrl });
      tmpAfterStart.push(tmpFiles());
      const present = new Map((await lb.members(POOL)).map((m) => [m.id as string, m]));
      for (const [id, e] of expected) {
        const m = present.get(id);
        if (e.uncertain) {
          // In flight at the kill: either outcome, but what was acknowledged before still holds.
          if (m && e.present && m.weight < e.minWeight) lost.push(`${id}: weight ${m.weight} < acknowledged ${e.minWeight}`);
          e.present = m !== undefined;
          e.minWeight = m?.weight ?? 0;
          e.uncertain = false;
          continue;
        }
        if (e.present && !m) lost.push(`${id}: acknowledged add missing after restart ${cycle}`);
        else if (!e.present && m) lost.push(`${id}: acknowledged removal undone after restart ${cycle}`);
        else if (m && m.weight < e.minWeight) lost.push(`${id}: weight ${m.weight} < acknowledged ${e.minWeight}`);
      }
    }
    const finalMembers = (await lb.members(POOL)).length;
    await lb.stop();
    figure(
      "admin: kill -9 during writes",
      `${CYCLES} cycles, ${WRITERS} concurrent writers: ${acked} acknowledged changes, ${lost.length} lost; ${finalMembers} members at the end; state.json.*.tmp left by kills: up to ${tmpMax}, after restart: up to ${Math.max(...tmpAfterStart)}`,
      "every acknowledged add, weight change and removal survives kill -9; no temp files remain after a start",
    );
    expect(lost).toEqual([]);
    expect(acked).toBeGreaterThan(CYCLES * 3);
    expect(tmpAfterStart.filter((n) => n > 0), "stale state.json.*.tmp files after a start").toEqual([]);
  });
});
