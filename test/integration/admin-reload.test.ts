/**
 * Reload (SPEC §8) of a real `lb4 start` child: POST /v3/elb/reload, `lb4 reload` and SIGHUP
 * apply the file as a diff — open connections keep flowing, removed listeners stop
 * accepting, new ones serve, and an invalid file is refused whole.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePort, waitFor } from "../helpers/net.js";
import { useChildFixture, TOKEN, adminConfig, api, connectTo, namedEcho, refused, runCli, startLb4, whoAnswers, writeConfig } from "../helpers/lb4-child.js";

const fx = useChildFixture();
const { servers, clients } = fx;

interface Spec {
  weightA: number;
  withB: boolean;
  keepalive: number;
  listeners: string[];
  broken?: boolean;
}

describe("reload", () => {
  it("a long-lived connection flows across 20+ reloads; invalid file refused; listeners removed and added; SIGHUP and lb4 reload work too", async () => {
    const a = await namedEcho("a");
    const b = await namedEcho("b");
    servers.push(a, b);
    const ports: Record<string, number> = {};
    for (const id of ["ls-1", "ls-2", "ls-3", "ls-4"]) ports[id] = await freePort();
    const adminPort = await freePort();
    const file = path.join(fx.dir, "lb4.yaml");
    const spec: Spec = { weightA: 1, withB: false, keepalive: 300, listeners: ["ls-1", "ls-2"] };
    const write = () =>
      writeConfig(
        file,
        adminConfig(adminPort, "./state", [
          {
            id: "lb-1",
            vip_address: "127.0.0.1",
            listeners: spec.listeners.map((id) => ({
              id,
              protocol: "TCP",
              protocol_port: ports[id],
              default_pool_id: "pool-1",
              keepalive_timeout: spec.broken && id === "ls-1" ? 5 : spec.keepalive,
            })),
            pools: [
              {
                id: "pool-1",
                protocol: "TCP",
                members: [
                  { id: "m-a", address: "127.0.0.1", protocol_port: a.port, weight: spec.broken ? 101 : spec.weightA },
                  ...(spec.withB ? [{ id: "m-b", address: "127.0.0.1", protocol_port: b.port }] : []),
                ],
              },
            ],
          },
        ]),
      );
    await write();
    const lb = await startLb4(file, adminPort);
    const long = await connectTo(ports["ls-1"]!, "a");
    clients.push(long);
    await long.echo("before any reload");
    const reload = () => api(lb.url, "POST", "/v3/elb/reload");
    const memberIds = async () => ((await api(lb.url, "GET", "/v3/elb/pools/pool-1/members")).body.members as Array<{ id: string; weight: number }>).map((m) => `${m.id}:${m.weight}`);

    // 20 reloads, the file changing between most of them.
    for (let i = 0; i < 20; i++) {
      if (i % 3 === 0) spec.weightA = spec.weightA === 1 ? 2 : 1;
      if (i % 4 === 1) spec.withB = !spec.withB;
      if (i % 5 === 2) spec.keepalive = spec.keepalive === 300 ? 301 : 300;
      await write();
      const r = await reload();
      expect(r.status, `reload ${i}`).toBe(200);
      expect(r.body.reload).toMatchObject({ status: "ok", listeners: 2, members: spec.withB ? 2 : 1 });
      expect(await memberIds()).toEqual([`m-a:${spec.weightA}`, ...(spec.withB ? ["m-b:1"] : [])]);
      await long.echo(`after reload ${i}`);
    }
    expect(await whoAnswers(ports["ls-2"]!)).toMatch(/^[ab]$/);

    // An invalid file: refused whole with every problem; the running config stays.
    const membersBefore = await memberIds();
    spec.broken = true;
    await write();
    const bad = await reload();
    expect(bad.status).toBe(400);
    expect(bad.body.error_code).toBe("LB4.CONFIG_INVALID");
    expect(bad.body.error_msg).toContain("reload refused");
    expect(bad.body.error_msg).toContain("loadbalancers[0].pools[0].members[0].weight");
    expect(bad.body.error_msg).toContain("loadbalancers[0].listeners[0].keepalive_timeout");
    expect(bad.body.problems).toHaveLength(2);
    expect(await memberIds()).toEqual(membersBefore);
    expect(await whoAnswers(ports["ls-1"]!)).toMatch(/^[ab]$/);
    expect(await whoAnswers(ports["ls-2"]!)).toMatch(/^[ab]$/);
    await long.echo("after a refused reload");
    // The CLI says the same and exits 1.
    const cliBad = await runCli(["reload", "--admin", lb.url, "--token", TOKEN]);
    expect(cliBad.code).toBe(1);
    expect(cliBad.stderr).toContain("members[0].weight");
    spec.broken = false;

    // A listener removed from the file stops accepting; the open connection is untouched.
    spec.listeners = ["ls-1"];
    await write();
    expect((await reload()).status).toBe(200);
    await waitFor(() => refused(ports["ls-2"]!), 3000, "ls-2 to stop accepting");
    expect(((await api(lb.url, "GET", "/v3/elb/listeners")).body.listeners as Array<{ id: string }>).map((l) => l.id)).toEqual(["ls-1"]);
    expect((await api(lb.url, "GET", "/v3/elb/listeners/ls-2")).status).toBe(404);
    await long.echo("after a listener was removed");

    // A new listener in the file starts serving (through `lb4 reload` this time).
    spec.listeners = ["ls-1", "ls-3"];
    await write();
    const cliOk = await runCli(["reload", "--admin", lb.url, "--token", TOKEN]);
    expect(cliOk.stderr).toBe("");
    expect(cliOk.code).toBe(0);
    expect(cliOk.stdout).toContain("reloaded: 1 load balancer(s), 2 listener(s)");
    expect(await whoAnswers(ports["ls-3"]!)).toMatch(/^[ab]$/);
    await long.echo("after a listener was added");

    // SIGHUP: same reload.
    spec.listeners = ["ls-1", "ls-3", "ls-4"];
    await write();
    lb.proc.kill("SIGHUP");
    await waitFor(async () => !(await refused(ports["ls-4"]!)), 5000, "ls-4 to accept after SIGHUP");
    expect(await whoAnswers(ports["ls-4"]!)).toMatch(/^[ab]$/);
    expect(((await api(lb.url, "GET", "/v3/elb/listeners")).body.listeners as Array<{ id: string }>).map((l) => l.id)).toEqual(["ls-1", "ls-3", "ls-4"]);
    // An invalid file on SIGHUP is refused and logged; everything keeps serving.
    spec.broken = true;
    await write();
    lb.proc.kill("SIGHUP");
    await waitFor(() => lb.output().includes('"ev":"reload_failed"'), 5000, "the refused SIGHUP reload to be logged");
    expect(await whoAnswers(ports["ls-4"]!)).toMatch(/^[ab]$/);
    await long.echo("after SIGHUP reloads");
    expect(long.closed).toBe(false);
  }, 30_000);
});
