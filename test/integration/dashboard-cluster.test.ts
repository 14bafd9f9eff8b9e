/**
 * The dashboard's Instances panel (SPEC §11, §12) in a real browser: Debian's chromium driven
 * by playwright-core, against a real etcd and a real `lb4 start` child with a `cluster:` block.
 * Another instance is a record written into etcd on a lease, as a second lb4 would write it.
 * Every page records its requests, page errors and console errors; each test ends by asserting
 * that no request left the admin origin and nothing failed.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CHROMIUM, chromiumOk, clean, openPage as openBrowserPage, useBrowser, type Watched } from "../helpers/browser.js";
import { EtcdClient } from "../../src/store/etcd.js";
import { etcdSkip, startEtcd, stopAllEtcd } from "../helpers/etcd.js";
import { adminConfig, api, namedEcho, startLb4, useChildFixture, writeConfig } from "../helpers/lb4-child.js";
import { freePort } from "../helpers/net.js";

const PREFIX = "/lb4/dash/";
const skip = !chromiumOk ? `${CHROMIUM} not found; apt-get install chromium` : etcdSkip;

describe.skipIf(skip !== undefined)(`dashboard instances panel in chromium${skip ? ` (SKIPPED: ${skip})` : ""}`, () => {
  const fx = useChildFixture();
  const browser = useBrowser();

  afterEach(() => stopAllEtcd());

  /** One lb4 (one worker) with a TCP listener and a pool of two members; with `etcd`, clustered on it. */
  async function startScenario(etcd?: string[]) {
    const [adminPort, tcpPort] = [await freePort(), await freePort()];
    const backends = await Promise.all(["web-1", "web-2"].map((n) => namedEcho(n)));
    fx.servers.push(...backends);
    const advertise = `127.0.0.1:${adminPort}`;
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(
        adminPort,
        path.join(fx.dir, "state"),
        [
          {
            id: "lb-web",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-web", protocol: "TCP", protocol_port: tcpPort, default_pool_id: "pool-web" }],
            pools: [
              {
                id: "pool-web",
                protocol: "TCP",
                healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 },
                members: backends.map((b, i) => ({ id: `m-${i + 1}`, address: "127.0.0.1", protocol_port: b.port })),
              },
            ],
          },
        ],
        etcd ? { cluster: { etcd, prefix: PREFIX, instance_id: "lb4-a", advertise } } : {},
      ),
    );
    const lb = await startLb4(file, adminPort, {}, ["--grace", "1", "--workers", "1"]);
    return { lb, advertise };
  }

  const openPage = (url: string): Promise<Watched> => openBrowserPage(browser.context(), url);

  const inst = (id: string) => `#instances tr[data-instance="${id}"]`;

  it("lists this instance, shows another one joining without a reload, and says when etcd is unreachable", async () => {
    const etcd = await startEtcd(1);
    const { lb, advertise } = await startScenario(etcd.endpoints);

    // The state carries the cluster: the store, the revision this instance runs, the instances.
    await expect.poll(async () => (await api(lb.url, "GET", "/v3/elb/dashboard")).body.dashboard.cluster?.instances?.length, { timeout: 10_000 }).toBe(1);
    const d0 = (await api(lb.url, "GET", "/v3/elb/dashboard")).body.dashboard;
    expect(d0.cluster).toMatchObject({ store: "ok", instance_id: "lb4-a", started_from: "store", revision: expect.any(Number) });
    expect(d0.cluster.revision).toBeGreaterThan(0);
    expect(d0.cluster.instances).toEqual([expect.objectContaining({ instance_id: "lb4-a", advertise, self: true })]);

    const w = await openPage(lb.url);
    const { page } = w;
    await page.waitForSelector(`${inst("lb4-a")}[data-self="true"]`, { timeout: 10_000 });
    expect(await page.locator("#instances").getAttribute("data-store")).toBe("ok");
    expect(await page.locator("#store-state").innerText()).toBe("etcd ok");
    const self = await page.locator(inst("lb4-a")).innerText();
    expect(self).toContain(advertise);
    expect(self).toContain("this instance");
    expect(await page.locator(inst("lb4-a")).getAttribute("class")).not.toContain("behind");
    let navigations = 0;
    page.on("framenavigated", () => navigations++);
    await page.evaluate(() => ((window as unknown as { lb4Marker: number }).lb4Marker = 42));

    // Another instance registers (as a second lb4 would: its record on a lease), running an old revision.
    const client = new EtcdClient({ endpoints: etcd.endpoints });
    const lease = await client.grantLease(30);
    const other = { instance_id: "other-1", advertise: "10.0.0.2:9870", version: "0.0.9", revision: 1, pid: 4242, started_at: new Date(Date.now() - 3_600_000).toISOString() };
    await client.put(`${PREFIX}instances/other-1`, JSON.stringify(other), { lease: lease.id });

    await page.waitForSelector(inst("other-1"), { timeout: 10_000 });
    expect(navigations).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { lb4Marker?: number }).lb4Marker)).toBe(42);
    const row = page.locator(inst("other-1"));
    expect(await row.getAttribute("data-self")).toBe("false");
    const text = await row.innerText();
    expect(text).toContain("10.0.0.2:9870");
    expect(text).not.toContain("this instance");
    // It runs revision 1, behind this instance: highlighted, and by how much.
    expect(await row.getAttribute("class")).toContain("behind");
    expect(await row.locator("td.rev").innerText()).toMatch(/^1\s*BEHIND \d+$/);
    expect(await page.locator("#instances h2").innerText()).toContain("instances (2)");

    const file = process.env.LB4_DASHBOARD_CLUSTER_SCREENSHOT || path.join(fx.dir, "dashboard-cluster.png");
    await page.screenshot({ path: file, fullPage: true });
    expect((await readFile(file)).subarray(1, 4).toString()).toBe("PNG");

    // etcd goes away: the page says so, without a reload, and lists nothing it cannot read.
    await etcd.members[0]!.kill();
    await page.waitForSelector('#instances[data-store="unreachable"]', { timeout: 15_000 });
    await expect.poll(() => page.locator("#store-state").innerText(), { timeout: 5000 }).toBe("etcd unreachable");
    await expect.poll(() => page.locator("#instances tr[data-instance]").count(), { timeout: 5000 }).toBe(0);
    expect(await page.locator("#instances tr.store-down").innerText()).toMatch(/etcd does not answer/);
    expect(navigations).toBe(0);
    const d1 = (await api(lb.url, "GET", "/v3/elb/dashboard")).body.dashboard;
    expect(d1.cluster).toMatchObject({ store: "unreachable", instance_id: "lb4-a", instances: [] });
    // The load balancer itself keeps serving what it last applied.
    expect(d1.loadbalancers.map((l: { id: string }) => l.id)).toEqual(["lb-web"]);

    await clean(w);
  }, 60_000); // the sum of its bounded waits

  it("standalone: no cluster in the state, no Instances panel and no store badge on the page", async () => {
    const { lb } = await startScenario();
    const d = (await api(lb.url, "GET", "/v3/elb/dashboard")).body.dashboard;
    expect(d).not.toHaveProperty("cluster");
    const w = await openPage(lb.url);
    const { page } = w;
    await page.waitForSelector('tr[data-member="pool-web/m-1"]', { timeout: 10_000 });
    // Wait for a counters event to have been applied too: it must not bring the panel in either.
    await expect.poll(() => page.locator("#live").innerText(), { timeout: 5000 }).toBe("live");
    expect(await page.locator("#instances").isHidden()).toBe(true);
    expect(await page.locator("#store-state").isHidden()).toBe(true);
    await clean(w);
  });
});
