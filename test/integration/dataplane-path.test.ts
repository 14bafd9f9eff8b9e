/**
 * Issue 15: on the Node this suite runs on (CI's), the handle data plane passes its start-up
 * probe and is the one `lb4 start` runs, so a Node change that makes lb4 fall back to
 * net.Socket fails here instead of only slowing lb4 down. Also: LB4_DATAPLANE forces either.
 */
import { once } from "node:events";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { dataplaneChoice, handlesProblem } from "../../src/platform/dataplane-path.js";
import { probe } from "../../src/platform/stream-handles.js";
import { withDataplane } from "../helpers/engine.js";
import { TOKEN, adminConfig, api, runCli, startLb4, useChildFixture, writeConfig } from "../helpers/lb4-child.js";
import { connect, echoServer, freePort } from "../helpers/net.js";

const fx = useChildFixture();
const forcedNet = process.env.LB4_DATAPLANE === "net";

describe("the data plane in use", () => {
  it.skipIf(forcedNet)("this Node passes the handle probe (a loopback round trip on the stream handles)", async () => {
    expect(handlesProblem()).toBeUndefined();
    expect(await probe()).toBeUndefined();
  });

  it.skipIf(forcedNet)("LB4_DATAPLANE picks the path: handles, net, unset (handles here), and an unknown value falls back to net with a reason", async () => {
    expect(await withDataplane("handles", async () => dataplaneChoice())).toEqual({ path: "handles" });
    expect(await withDataplane("net", async () => dataplaneChoice())).toEqual({ path: "net" });
    const had = process.env.LB4_DATAPLANE;
    try {
      delete process.env.LB4_DATAPLANE;
      expect(dataplaneChoice()).toEqual({ path: "handles" });
      process.env.LB4_DATAPLANE = "fast";
      expect(dataplaneChoice()).toEqual({ path: "net", note: 'LB4_DATAPLANE="fast" is not net or handles' });
    } finally {
      if (had === undefined) delete process.env.LB4_DATAPLANE;
      else process.env.LB4_DATAPLANE = had;
    }
  });

  it.skipIf(forcedNet)("lb4 start runs the handle data plane by default: its start line, /metrics, /healthz and lb4 status say so, and it forwards", () => startAndCheck(undefined, "handles"));
  it("lb4 start with LB4_DATAPLANE=net runs net: its start line, /metrics, /healthz and lb4 status say so, and it forwards", () => startAndCheck("net", "net"));
});

async function startAndCheck(env: string | undefined, want: string): Promise<void> {
  {
    const echo = await echoServer();
    fx.servers.push(echo);
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, "./state", [
        {
          id: "lb-1",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [{ id: "pool-1", protocol: "TCP", members: [{ id: "m-1", address: "127.0.0.1", protocol_port: echo.port }] }],
        },
      ]),
    );
    // Two workers: each probes on its own, and the path each runs is what counts (issue 15: "the fast path is what each worker runs").
    const lb = await startLb4(file, adminPort, env ? { LB4_DATAPLANE: env } : {}, ["--grace", "1", "--workers", "2"]);
    const start = lb
      .output()
      .split("\n")
      .filter((l) => l.includes('"ev":"start"'))
      .map((l) => JSON.parse(l) as { dataplane?: string })[0]!;
    expect(start.dataplane).toBe(want);
    const metrics = await api(lb.url, "GET", "/metrics");
    expect(metrics.text).toContain(`lb4_dataplane_info{path="${want}"} 1`);
    expect((await api(lb.url, "GET", "/healthz", { token: null })).body).toEqual({ status: "ok", dataplane: want });
    const status = await runCli(["status"], { LB4_ADMIN_URL: lb.url, LB4_ADMIN_TOKEN: TOKEN });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`TCP data plane: ${want}`);
    const workers = (await api(lb.url, "GET", "/v3/elb/workers")).body.workers as Array<{ dataplane: string }>;
    expect(workers.map((w) => w.dataplane)).toEqual([want, want]);
    expect(status.stdout).toMatch(new RegExp(`Workers: 2 [\\s\\S]*ready .* ${want}`));
    const c = await connect(port);
    c.write("ping");
    const [echoed] = (await once(c, "data")) as [Buffer];
    expect(echoed.toString()).toBe("ping");
    c.destroy();
    await lb.stop();
  }
}
