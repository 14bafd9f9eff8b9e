/** `lb4 status --watch` against a real `lb4 start`: the event stream as JSON lines, redraws, Ctrl-C, refusals. */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TOKEN, adminConfig, api, bin, namedEcho, runCli, startLb4, useChildFixture, writeConfig } from "../helpers/lb4-child.js";
import { freePort, waitFor } from "../helpers/net.js";

const watchers: ChildProcess[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) if (w.exitCode === null) w.kill("SIGKILL");
});

function watch(args: string[]) {
  const proc = spawn(process.execPath, [bin, "status", "--watch", ...args], { env: { ...process.env, LB4_ADMIN_URL: "", LB4_ADMIN_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"] });
  watchers.push(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c));
  proc.stderr!.on("data", (c: Buffer) => (err += c));
  const exited = new Promise<number | null>((r) => proc.on("close", (code) => r(code)));
  return { proc, exited, out: () => out, err: () => err };
}

describe("lb4 status --watch", () => {
  const fx = useChildFixture();

  async function start() {
    const [adminPort, port] = [await freePort(), await freePort()];
    const b = await namedEcho("a");
    fx.servers.push(b);
    const file = path.join(fx.dir, "lb4.yaml");
    await writeConfig(
      file,
      adminConfig(adminPort, path.join(fx.dir, "state"), [
        {
          id: "lb-1",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [{ id: "pool-1", protocol: "TCP", members: [{ id: "m-a", address: "127.0.0.1", protocol_port: b.port, weight: 2 }] }],
        },
      ]),
    );
    return startLb4(file, adminPort);
  }

  it("--json prints each event as one JSON line, a member change included; Ctrl-C exits 0", async () => {
    const lb = await start();
    const w = watch(["--json", "--admin", lb.url, "--token", TOKEN]);
    const lines = () => w.out().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(() => lines().some((l) => l.type === "hello") && lines().some((l) => l.type === "counters"), 10_000, "hello and counters");
    expect(lines()[0]).toMatchObject({ type: "hello", last_seq: 0 });
    expect(lines().find((l) => l.type === "counters")).toMatchObject({ listeners: { "ls-1": { active: 0 } }, members: { "pool-1": { "m-a": { effective_weight: 2 } } } });

    expect((await api(lb.url, "PUT", "/v3/elb/pools/pool-1/members/m-a", { body: { member: { weight: 5 } } })).status).toBe(200);
    await waitFor(() => lines().some((l) => l.type === "member_updated"), 5000, "the member_updated line");
    expect(lines().find((l) => l.type === "member_updated")).toMatchObject({ type: "member_updated", seq: 1, pool_id: "pool-1", member_id: "m-a", time: expect.any(Number) });

    w.proc.kill("SIGINT");
    expect(await w.exited).toBe(0);
    expect(w.err()).toBe("");
  });

  it("without --json redraws the status table, at once on a change", async () => {
    const lb = await start();
    const w = watch(["--admin", lb.url, "--token", TOKEN]);
    await waitFor(() => w.out().includes("Load balancer lb-1"), 10_000, "the first table");
    expect(w.out()).toContain("lb4 status --watch");
    expect(w.out()).toMatch(/m-a\s+-\s+127\.0\.0\.1:\d+\s+2\s+2\s+NO_MONITOR/);
    expect((await api(lb.url, "PUT", "/v3/elb/pools/pool-1/members/m-a", { body: { member: { weight: 9 } } })).status).toBe(200);
    await waitFor(() => /m-a\s+-\s+127\.0\.0\.1:\d+\s+9\s+9\s+NO_MONITOR/.test(w.out()), 5000, "a redraw with weight 9");
    w.proc.kill("SIGINT");
    expect(await w.exited).toBe(0);
  });

  it("a wrong token is refused at once (exit 1, says what to do)", async () => {
    const lb = await start();
    const r = await runCli(["status", "--watch", "--admin", lb.url, "--token", "nope"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/401.*LB4\.UNAUTHORIZED|LB4\.UNAUTHORIZED/s);
    expect(r.stderr).toContain("--token");
  });
});
