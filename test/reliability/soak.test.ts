/**
 * A bounded soak with member churn: steady request load through lb4 while members are
 * added, re-weighted and removed through the admin API and the config is reloaded. No
 * request fails except, at most, one whose member was removed while it ran (there is no
 * drain, and removal without drain lets open connections run, so even that should not
 * happen); lb4's RSS stays flat; every count returns to 0. 60 s by default;
 * LB4_SOAK_SECONDS=300 for the 5-minute run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitFor } from "../helpers/net.js";
import { lineServer, type LineServer } from "./helpers/backends.js";
import { envInt } from "./helpers/env.js";
import { figure, mb } from "./helpers/figures.js";
import { adminBase, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";
import { Load } from "./helpers/load.js";

const SECONDS = envInt("LB4_SOAK_SECONDS", 60);
const POOL = "pool-soak";
/**
 * RSS growth from the settled point (a fifth into the run: V8's heap has grown to its working
 * size by then) to the end. A leak of a few hundred bytes per request exceeds it.
 */
const MAX_RSS_GROWTH = 32 * 1024 * 1024;

describe("soak with member churn", () => {
  let dir: string;
  const stable: LineServer[] = [];
  const churn: LineServer[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-soak-"));
    for (let i = 1; i <= 3; i++) stable.push(await lineServer(`s${i}`, true));
    for (let i = 1; i <= 4; i++) churn.push(await lineServer(`c${i}`, true));
  });
  afterEach(() => killAllLb4());
  afterAll(async () => {
    await Promise.all([...stable, ...churn].map((s) => s.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${SECONDS} s of load while members are added, re-weighted, removed and the config reloaded: no errors, flat RSS, counts back to 0`, async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(dir, "lb4.yaml");
    const config = (keepalive: number) => ({
      ...adminBase(adminPort, path.join(dir, "state")),
      loadbalancers: [
        {
          id: "lb-soak",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-soak", protocol: "TCP", protocol_port: port, default_pool_id: POOL, keepalive_timeout: keepalive }],
          pools: [
            {
              id: POOL,
              protocol: "TCP",
              lb_algorithm: "ROUND_ROBIN",
              healthmonitor: { type: "TCP", delay: 2, timeout: 1, max_retries: 1, max_retries_down: 3 },
              members: stable.map((s) => ({ id: s.name, address: "127.0.0.1", protocol_port: s.port, weight: 10 })),
            },
          ],
        },
      ],
    });
    const lb = await Lb4Proc.start({ config: config(60), file, adminUrl: `http://127.0.0.1:${adminPort}` });
    await waitFor(async () => (await lb.members(POOL)).filter((m) => m.operating_status === "ONLINE").length === 3, 15_000, "the stable members ONLINE");

    const load = new Load({ host: "127.0.0.1", port, concurrency: 4, maxRequests: 2_000_000, maxMs: SECONDS * 1000, timeoutMs: 10_000 }).start();
    // Warm up before the RSS baseline.
    await load.until(() => load.count >= 500, 30_000, "500 warm-up requests");
    const rssStart = lb.rss();
    let rssPeak = rssStart;
    const t0 = Date.now();
    /** RSS every tenth of the run, to tell a plateau from a climb. */
    const rssTimeline: number[] = [rssStart];

    /** When each churn member was removed: an error on it while that happened is allowed. */
    const removedAt = new Map<string, number[]>();
    const present = new Set<string>();
    const ops: Record<string, number> = { add: 0, weight: 0, remove: 0, reload: 0 };
    const opFailures: string[] = [];
    let reloads = 0;
    let step = 0;
    const deadline = Date.now() + SECONDS * 1000 - 2000;
    while (Date.now() < deadline && lb.alive()) {
      const k = step++ % 8;
      let r;
      if (k === 7) {
        // A reload that changes the file (the listener's idle timeout) and keeps the members.
        await writeFile(file, stringify(config(reloads++ % 2 ? 60 : 61)));
        r = await lb.api("POST", "/v3/elb/reload", { raw: "" });
        ops.reload!++;
      } else if (k % 2 === 0) {
        const c = churn.find((s) => !present.has(s.name));
        if (c) {
          r = await lb.api("POST", `/v3/elb/pools/${POOL}/members`, { body: { member: { id: c.name, address: "127.0.0.1", protocol_port: c.port, weight: 1 + (step % 20) } } });
          if (r.status === 201) present.add(c.name);
          ops.add!++;
        } else {
          const id = [...present][step % present.size]!;
          r = await lb.api("DELETE", `/v3/elb/pools/${POOL}/members/${id}`);
          if (r.status === 204) {
            present.delete(id);
            removedAt.set(id, [...(removedAt.get(id) ?? []), Date.now()]);
          }
          ops.remove!++;
        }
      } else if (k === 3 && present.size > 0) {
        const id = [...present][step % present.size]!;
        r = await lb.api("DELETE", `/v3/elb/pools/${POOL}/members/${id}`);
        if (r.status === 204) {
          present.delete(id);
          removedAt.set(id, [...(removedAt.get(id) ?? []), Date.now()]);
        }
        ops.remove!++;
      } else {
        const target = step % 3 === 0 && present.size > 0 ? [...present][step % present.size]! : stable[step % 3]!.name;
        r = await lb.api("PUT", `/v3/elb/pools/${POOL}/members/${target}`, { body: { member: { weight: 1 + ((step * 13) % 100) } } });
        ops.weight!++;
      }
      if (r && (r.status < 200 || r.status >= 300)) opFailures.push(`${r.status} ${r.text.slice(0, 200)}`);
      const rss = lb.rss();
      rssPeak = Math.max(rssPeak, rss);
      if (Date.now() - t0 >= (rssTimeline.length * SECONDS * 1000) / 10) rssTimeline.push(rss);
      // Pace the churn: a few changes a second, not a write storm.
      await new Promise((res) => setTimeout(res, 150));
    }
    await load.done();
    const rssEnd = lb.rss();
    const rssSettled = rssTimeline[2] ?? rssStart;

    // An error is excused only if its request reached a member removed while it ran.
    const allBackends = [...stable, ...churn];
    const unexcused = load.errors.filter((e) => {
      const who = allBackends.find((b) => b.seen.has(`r${e.seq}`))?.name;
      if (who === undefined) return true;
      return !(removedAt.get(who) ?? []).some((t) => t >= e.start && t <= e.end);
    });
    const active = await lb.settle();
    const finalIds = (await lb.members(POOL)).map((m) => m.id as string).sort();
    const expectedIds = [...stable.map((s) => s.name), ...present].sort();
    const perMember = Object.fromEntries([...load.perMember.entries()].sort());
    figure(
      `soak with churn (${SECONDS} s)`,
      `${load.count} requests at concurrency 4, ${load.errors.length} errors (${unexcused.length} not on a member being removed); churn ${JSON.stringify(ops)}, ${opFailures.length} refused; RSS start ${mb(rssStart)}, settled ${mb(rssSettled)}, end ${mb(rssEnd)}, peak ${mb(rssPeak)} (every ${SECONDS / 10} s: ${rssTimeline.map((r) => (r / 1048576).toFixed(0)).join(" ")} MB); active after: ${active}; answers per member ${JSON.stringify(perMember)}`,
      `0 errors on members not being removed; every admin change and reload accepted; RSS flat (< ${mb(MAX_RSS_GROWTH)} growth after settling); active back to 0; the member list is what the acknowledged changes say`,
    );
    expect(lb.alive()).toBe(true);
    expect(unexcused.slice(0, 10), `${unexcused.length} errors`).toEqual([]);
    expect(opFailures).toEqual([]);
    expect(ops.reload).toBeGreaterThan(0);
    expect(ops.remove).toBeGreaterThan(0);
    expect(rssEnd - rssSettled, "RSS growth after the heap settled").toBeLessThan(MAX_RSS_GROWTH);
    expect(active).toBe(0);
    expect(finalIds).toEqual(expectedIds);
    for (const c of churn) if (removedAt.has(c.name) || present.has(c.name)) expect(load.perMember.get(c.name) ?? 0, `${c.name} served while it was a member`).toBeGreaterThan(0);
  });
});
