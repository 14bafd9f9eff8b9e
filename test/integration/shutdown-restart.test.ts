/**
 * `lb4 start` as a child process across SIGTERM and restarts (SPEC §4, §5): the grace period
 * is a deadline whatever the clients do, and a restart keeps members' last known health.
 */
import { describe, expect, it } from "vitest";
import path from "node:path";
import { freePort, waitFor } from "../helpers/net.js";
import { adminConfig, api, LineClient, namedEcho, startLb4, useChildFixture, whoAnswers, writeConfig } from "../helpers/lb4-child.js";

const fx = useChildFixture();

function lbWith(port: number, pool: Record<string, unknown>): unknown[] {
  return [
    {
      id: "lb-1",
      vip_address: "127.0.0.1",
      listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
      pools: [{ id: "pool-1", protocol: "TCP", lb_algorithm: "ROUND_ROBIN", ...pool }],
    },
  ];
}

describe("SIGTERM and the grace period", () => {
  it("exits 0 within grace + 2 s while an idle client stays connected, and logs its connection as end: shutdown", async () => {
    const backend = await namedEcho("b1");
    fx.servers.push(backend);
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(file, adminConfig(adminPort, path.join(fx.dir, "state"), lbWith(port, { members: [{ id: "m-1", address: "127.0.0.1", protocol_port: backend.port }] })));
    const lb = await startLb4(file, adminPort, {}, ["--grace", "2"]);
    const client = await LineClient.open(port);
    fx.clients.push(client);
    expect(await client.line()).toBe("b1");

    const t0 = performance.now();
    lb.proc.kill("SIGTERM");
    const code = await lb.exited;
    const seconds = (performance.now() - t0) / 1000;

    expect(code).toBe(0);
    expect(seconds).toBeLessThan(4);
    const lines = lb.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.ev === "tcp_conn")).toMatchObject({ member_id: "m-1", end: "shutdown" });
    expect(lines.some((l) => l.ev === "stopped")).toBe(true);
    await waitFor(() => client.closed, 2000, "the client to be closed by lb4");
  });
});

describe("restart keeps members' last known health", () => {
  it("serves the first 20 connections after a restart with delay 20, before any check has run again", async () => {
    const [b1, b2] = [await namedEcho("b1"), await namedEcho("b2")];
    fx.servers.push(b1, b2);
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    const pool = (delay: number) => ({
      healthmonitor: { type: "TCP", delay, timeout: 3, max_retries: 1, max_retries_down: 1 },
      members: [
        { id: "m-1", address: "127.0.0.1", protocol_port: b1.port },
        { id: "m-2", address: "127.0.0.1", protocol_port: b2.port },
      ],
    });
    const write = (delay: number) => writeConfig(file, adminConfig(adminPort, path.join(fx.dir, "state"), lbWith(port, pool(delay))));

    // First run with delay 1: both members come ONLINE by their first check.
    await write(1);
    let lb = await startLb4(file, adminPort);
    const online = async () => {
      const r = await api(lb.url, "GET", "/v3/elb/pools/pool-1/members");
      return (r.body?.members as Array<{ operating_status: string }> | undefined)?.filter((m) => m.operating_status === "ONLINE").length ?? 0;
    };
    await waitFor(async () => (await online()) === 2, 5000, "both members ONLINE");
    expect(await lb.stop()).toBe(0);

    // Restart with delay 20: a new member's first check could wait up to 20 s; these are not new.
    await write(20);

    lb = await startLb4(file, adminPort);
    const served: string[] = [];
    for (let i = 0; i < 20; i++) served.push(await whoAnswers(port));
    expect(served.filter((n) => n === "b1" || n === "b2")).toHaveLength(20);
    expect(new Set(served)).toEqual(new Set(["b1", "b2"]));
    expect(lb.output()).toContain('"ev":"health_restored"');
    const members = (await api(lb.url, "GET", "/v3/elb/pools/pool-1/members")).body.members as Array<Record<string, unknown>>;
    expect(members.map((m) => m.operating_status)).toEqual(["ONLINE", "ONLINE"]);
  }, 30_000);
});
