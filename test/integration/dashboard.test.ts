/**
 * The dashboard (SPEC §12) in a real browser: Debian's chromium driven by playwright-core,
 * against a real `lb4 start` child. Every page records its requests, page errors and console
 * errors; each test ends by asserting that no request left the admin origin and nothing failed.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CHROMIUM, TOKEN_KEY, chromiumOk, clean, openPage as openBrowserPage, useBrowser, type Watched } from "../helpers/browser.js";
import { TOKEN, adminConfig, api, namedEcho, startLb4, useChildFixture, whoAnswers, writeConfig } from "../helpers/lb4-child.js";
import { freePort, silentServer } from "../helpers/net.js";

describe.skipIf(!chromiumOk)(`dashboard in chromium${chromiumOk ? "" : ` (SKIPPED: ${CHROMIUM} not found; apt-get install chromium)`}`, () => {
  const fx = useChildFixture();
  const browser = useBrowser();

  /**
   * lb4 with a TCP pool of three checked members (TCP monitor, delay 1), a UDP pool without a
   * monitor, and a pool whose member never answers its check within the 50 s timeout (UNCHECKED).
   */
  async function startScenario() {
    const [adminPort, tcpPort] = [await freePort(), await freePort()];
    const backends = await Promise.all(["web-1", "web-2", "web-3"].map((n) => namedEcho(n)));
    const silent = await silentServer();
    fx.servers.push(...backends, silent);
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, path.join(fx.dir, "state"), [
        {
          id: "lb-web",
          name: "front",
          vip_address: "127.0.0.1",
          listeners: [
            { id: "ls-web", name: "http", protocol: "TCP", protocol_port: tcpPort, default_pool_id: "pool-web" },
            { id: "ls-dns", protocol: "UDP", protocol_port: tcpPort, default_pool_id: "pool-dns" },
          ],
          pools: [
            {
              id: "pool-web",
              name: "web",
              protocol: "TCP",
              healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 },
              members: backends.map((b, i) => ({ id: `m-${i + 1}`, name: `web-${i + 1}`, address: "127.0.0.1", protocol_port: b.port, weight: 3 - i })),
            },
            { id: "pool-dns", protocol: "UDP", members: [{ id: "m-dns", address: "127.0.0.1", protocol_port: 5353 }] },
            {
              id: "pool-cache",
              protocol: "TCP",
              healthmonitor: { type: "TCP", delay: 1, timeout: 50, tcp_send: "PING\\r\\n", tcp_expect: "+PONG" },
              members: [{ id: "m-cache", address: "127.0.0.1", protocol_port: silent.port }],
            },
          ],
        },
      ]),
    );
    const lb = await startLb4(file, adminPort);
    return { lb, backends, tcpPort };
  }

  const openPage = (url: string, opts: { token?: boolean } = {}): Promise<Watched> => openBrowserPage(browser.context(), url, opts);

  const row = (id: string) => `tr[data-member="${id}"]`;

  it("renders every load balancer, listener, pool and member, with ids, names and health in the API's words", async () => {
    const { lb, tcpPort } = await startScenario();
    const w = await openPage(lb.url);
    const { page } = w;
    // Each member's first check runs at its own moment within the delay: wait for all three.
    for (const m of ["m-1", "m-2", "m-3"]) await page.waitForSelector(`${row(`pool-web/${m}`)}[data-status="ONLINE"]`, { timeout: 10_000 });
    await expect.poll(() => page.locator("section.lb").getAttribute("data-lb")).toBe("lb-web");
    const lbHead = await page.locator('section[data-lb="lb-web"] > h2').innerText();
    expect(lbHead).toContain("lb-web");
    expect(lbHead).toContain("front");
    for (const l of ["ls-web", "ls-dns"]) expect(await page.locator(`[data-listener="${l}"]`).count()).toBe(1);
    expect(await page.locator('[data-listener="ls-web"]').innerText()).toContain(`127.0.0.1:${tcpPort}`);
    for (const p of ["pool-web", "pool-dns", "pool-cache"]) expect(await page.locator(`div.pool[data-pool="${p}"] .pool-head`).innerText()).toContain(p);
    for (const [id, status] of [
      ["pool-web/m-1", "ONLINE"],
      ["pool-web/m-2", "ONLINE"],
      ["pool-web/m-3", "ONLINE"],
      ["pool-dns/m-dns", "NO_MONITOR"],
    ] as const) {
      const r = page.locator(row(id));
      expect(await r.getAttribute("data-status")).toBe(status);
      const text = await r.innerText();
      expect(text).toContain(id.split("/")[1]!);
      expect(text).toContain(status);
    }
    expect(await page.locator(row("pool-web/m-2")).innerText()).toContain("web-2");
    // Not checked yet is not failed: OFFLINE in the API's words, shown as UNCHECKED, coloured apart.
    const unchecked = page.locator(row("pool-cache/m-cache"));
    expect(await unchecked.getAttribute("data-status")).toBe("OFFLINE");
    expect(await unchecked.getAttribute("data-health")).toBe("UNCHECKED");
    expect(await unchecked.getAttribute("class")).toBe("row-unchecked");
    expect(await unchecked.locator(".tag").first().innerText()).toBe("UNCHECKED");
    expect(await unchecked.locator(".check").innerText()).toBe("not checked yet");
    // the last check's result and reason
    expect(await page.locator(`${row("pool-web/m-1")} .check`).innerText()).toMatch(/✓ connected/);
    // configured vs effective weight
    expect(await page.locator(`${row("pool-web/m-1")} .w-of`).innerText()).toContain("/ 3");
    // traffic shows up live: a connection raises the listener's total without a reload
    expect(await whoAnswers(tcpPort)).toMatch(/^web-\d$/);
    await expect.poll(() => page.locator('[data-listener="ls-web"] .l-stats').innerText(), { timeout: 5000 }).toMatch(/total\s+1\b/);
    await clean(w);
  });

  it("a killed backend turns OFFLINE on the open page within 3 s, without a reload", async () => {
    const { lb, backends } = await startScenario();
    const w = await openPage(lb.url);
    const { page } = w;
    await page.waitForSelector(`${row("pool-web/m-2")}[data-status="ONLINE"]`, { timeout: 10_000 });
    let navigations = 0;
    page.on("framenavigated", () => navigations++);
    await page.evaluate(() => ((window as unknown as { lb4Marker: number }).lb4Marker = 42));

    await backends[1]!.close();
    const killedAt = Date.now();
    await page.waitForSelector(`${row("pool-web/m-2")}[data-status="OFFLINE"][data-health="OFFLINE"]`, { timeout: 3000 });
    expect(Date.now() - killedAt).toBeLessThan(3000);
    expect(await page.evaluate(() => (window as unknown as { lb4Marker?: number }).lb4Marker)).toBe(42);
    expect(navigations).toBe(0);
    const r = page.locator(row("pool-web/m-2"));
    expect(await r.locator(".pill").innerText()).toBe("OFFLINE");
    expect(await r.locator(".check").innerText()).toMatch(/^✗ connect/);
    expect(await page.locator("#event-log").innerText()).toMatch(/pool-web\/m-2 .* ONLINE → OFFLINE/);

    await clean(w);
  });

  it("set weight, admin down and remove from the page reach the admin API", async () => {
    const { lb } = await startScenario();
    const w = await openPage(lb.url);
    const { page } = w;
    await page.waitForSelector(`${row("pool-web/m-1")}[data-status="ONLINE"]`, { timeout: 10_000 });

    await page.fill(`${row("pool-web/m-1")} input[data-action="weight"]`, "7");
    await page.click(`${row("pool-web/m-1")} button[data-action="set-weight"]`);
    await expect.poll(() => page.locator(`${row("pool-web/m-1")} .w-of`).innerText(), { timeout: 5000 }).toBe(" / 7");
    const m1 = await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-1");
    expect(m1.body.member).toMatchObject({ weight: 7, effective_weight: 7 });

    await page.click(`${row("pool-web/m-2")} button[data-action="admin"]`);
    await page.waitForSelector(`${row("pool-web/m-2")}.row-maint`, { timeout: 5000 });
    expect(await page.locator(`${row("pool-web/m-2")} .tag`).first().innerText()).toBe("ADMIN DOWN");
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-2")).body.member).toMatchObject({ admin_state_up: false, operating_status: "OFFLINE" });
    await page.click(`${row("pool-web/m-2")} button[data-action="admin"]`);
    await page.waitForSelector(`${row("pool-web/m-2")}:not(.row-maint)`, { timeout: 5000 });
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-2")).body.member.admin_state_up).toBe(true);

    // Remove asks for a second click.
    await page.click(`${row("pool-web/m-3")} button[data-action="remove"]`);
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-3")).status).toBe(200);
    await page.click(`${row("pool-web/m-3")} button[data-action="remove"]`);
    await page.waitForSelector(row("pool-web/m-3"), { state: "detached", timeout: 5000 });
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-3")).status).toBe(404);

    // A refused change says why and changes nothing.
    await page.fill(`${row("pool-web/m-1")} input[data-action="weight"]`, "500");
    await page.click(`${row("pool-web/m-1")} button[data-action="set-weight"]`);
    await expect.poll(() => page.locator(".toast.error").innerText(), { timeout: 5000 }).toMatch(/weight/);
    expect((await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-1")).body.member.weight).toBe(7);
    // the browser logs the API's 400 as a failed resource load; nothing else may fail
    await clean(w, [/status of 400/]);
  });

  it("asks for the token once per browser session when the API answers 401", async () => {
    const { lb } = await startScenario();
    const w = await openPage(lb.url, { token: false });
    const { page } = w;
    await page.waitForSelector("#token-dialog", { timeout: 5000 });
    await page.fill("#token-input", "wrong-token");
    await page.click("#token-submit");
    await expect.poll(() => page.locator("#token-dialog").innerText(), { timeout: 5000 }).toMatch(/refused/);
    await page.fill("#token-input", TOKEN);
    await page.click("#token-submit");
    await page.waitForSelector(row("pool-web/m-1"), { timeout: 5000 });
    expect(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)).toBe(TOKEN);
    // The token was sent in a header, never in a URL.
    expect(w.requests.filter((u) => u.includes(TOKEN))).toEqual([]);
    // Same tab, same session: a reload does not ask again.
    await page.reload();
    await page.waitForSelector(row("pool-web/m-1"), { timeout: 5000 });
    expect(await page.locator("#token-dialog").count()).toBe(0);
    // Writes work with the stored token.
    await page.fill(`${row("pool-web/m-3")} input[data-action="weight"]`, "4");
    await page.click(`${row("pool-web/m-3")} button[data-action="set-weight"]`);
    await expect.poll(async () => (await api(lb.url, "GET", "/v3/elb/pools/pool-web/members/m-3")).body.member.weight, { timeout: 5000 }).toBe(4);
    await clean(w, [/status of 401/]);
  });

  it("takes a screenshot that shows the page (LB4_DASHBOARD_SCREENSHOT=file keeps it)", async () => {
    const { lb } = await startScenario();
    const w = await openPage(lb.url);
    await w.page.waitForSelector(`${row("pool-web/m-1")}[data-status="ONLINE"]`, { timeout: 10_000 });
    const file = process.env.LB4_DASHBOARD_SCREENSHOT || path.join(fx.dir, "dashboard.png");
    await w.page.screenshot({ path: file, fullPage: true });
    const png = await readFile(file);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    await clean(w);
  });
});
