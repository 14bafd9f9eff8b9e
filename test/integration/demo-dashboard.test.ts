/** `lb4 demo` prints its dashboard's URL, and the dashboard is there. */
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { bin } from "../helpers/lb4-child.js";
import { waitFor } from "../helpers/net.js";

let stop: (() => void) | undefined;
afterEach(() => stop?.());

describe("lb4 demo", () => {
  it("prints the dashboard URL, which serves the page", async () => {
    const proc = spawn(process.execPath, [bin, "demo", "--port", "0", "--admin-port", "0", "--log-level", "warn"], { stdio: ["ignore", "pipe", "pipe"] });
    stop = () => proc.kill("SIGKILL");
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d));
    proc.stderr.on("data", (d: Buffer) => (out += d));
    await waitFor(() => /Dashboard: (http:\/\/\S+)/.test(out) || proc.exitCode !== null, 15_000, "the dashboard URL");
    const url = /Dashboard: (http:\/\/\S+)/.exec(out)?.[1];
    expect(url, out).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url!);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await page.text()).toContain("lb4 dashboard");
  });
});
