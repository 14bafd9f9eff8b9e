/**
 * Dashboard tests in a real browser: Debian's chromium driven by playwright-core. One home
 * for the launch, the page watcher (every request, page error and console error recorded)
 * and the end-of-test check that no request left the admin origin and nothing failed.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { TOKEN } from "./lb4-child.js";

export const CHROMIUM = "/usr/bin/chromium";
export const chromiumOk = existsSync(CHROMIUM) && spawnSync(CHROMIUM, ["--version"], { encoding: "utf8" }).status === 0;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
/** Where the page keeps the admin token for the session. */
export const TOKEN_KEY = "lb4.admin-token";

export interface Watched {
  page: Page;
  origin: string;
  requests: string[];
  errors: string[];
}

/** A browser context for the enclosing describe (launched before its tests, closed after). */
export function useBrowser(): { context(): BrowserContext } {
  let ctx: BrowserContext | undefined;
  let profile: string | undefined;
  beforeAll(async () => {
    const { chromium } = await import("playwright-core");
    profile = await mkdtemp(path.join(os.tmpdir(), "lb4-chromium-"));
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 } });
    ctx.setDefaultTimeout(5000); // every wait in a step is bounded well inside the test's time
  });
  afterAll(async () => {
    await ctx?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });
  return { context: () => ctx! };
}

/** Open the dashboard at `url`, recording what the page does; with the admin token in the session unless `token: false`. */
export async function openPage(ctx: BrowserContext, url: string, opts: { token?: boolean } = {}): Promise<Watched> {
  const page = await ctx.newPage();
  const w: Watched = { page, origin: new URL(url).origin, requests: [], errors: [] };
  page.on("request", (r) => w.requests.push(r.url()));
  page.on("pageerror", (e) => w.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") w.errors.push(`console: ${m.text()}`);
  });
  if (opts.token !== false) await page.addInitScript(([k, t]) => sessionStorage.setItem(k!, t!), [TOKEN_KEY, TOKEN]);
  await page.goto(`${url}/`);
  return w;
}

/** Every request went to the admin origin; no page error, no console error (but those `allowed`). */
export async function clean(w: Watched, allowed: RegExp[] = []): Promise<void> {
  expect(w.requests.length).toBeGreaterThan(3);
  expect(w.requests.filter((u) => new URL(u).origin !== w.origin)).toEqual([]);
  expect(w.errors.filter((e) => !allowed.some((re) => re.test(e)))).toEqual([]);
  await w.page.close();
}
