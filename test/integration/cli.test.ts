/** The lb4 CLI as a real child process (dist/ is built by `npm test` before vitest runs). */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/lb4-child.js";
import { freePort, nameServer, silentServer, waitFor, type TestServer } from "../helpers/net.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "bin/lb4");
const fixtures = path.join(root, "test/fixtures");

const run = runCli;

describe("lb4 validate", () => {
  it.each([
    ["01-weight-and-port.yaml", ["loadbalancers[0].listeners[0].protocol_port: must be an integer from 1 to 65535", "loadbalancers[0].pools[0].members[0].weight: must be an integer from 0 to 100"]],
    ["02-unknown-pool.yaml", ['loadbalancers[0].listeners[0].default_pool_id: pool "pool-missing" is not a pool of load balancer "lb-1"']],
    [
      "03-persistence-source-ip.yaml",
      ["loadbalancers[0].pools[0].session_persistence: is not allowed with SOURCE_IP", "loadbalancers[0].pools[0].slow_start.enable: slow start works with ROUND_ROBIN only"],
    ],
    ["04-duplicates.json", ["loadbalancers[0].pools[0].lb_algorithm: must be ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP", "loadbalancers[0].pools[0].members[0].address: must be an IPv4 or IPv6 address"]],
    ["05-crossvpc.yaml", ["loadbalancers[0].pools[0].members[0].address: 10.1.0.5 is outside the VPC", "need ip_target_enable: true"]],
    ["06-unknown-field.yaml", ["loadbalancers[0].pools[0].members[0].colour: unknown field", "loadbalancers[0].listeners[0].keepalive_timeout: must be an integer from 10 to 4000"]],
  ])("%s: exits 1 and names each problem", async (file, expected) => {
    const r = await run(["validate", "--config", path.join(fixtures, "invalid", file)]);
    expect(r.code).toBe(1);
    for (const line of expected) expect(r.stderr).toContain(line);
  });

  it("reports duplicate ids once the shapes are right", async () => {
    const r = await run(["validate", "--config", path.join(fixtures, "invalid", "04-duplicates.json")]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain("duplicate"); // shape errors come first, cross-field rules after
  });

  it("exits 0 on a valid file with ${ENV} interpolation", async () => {
    const r = await run(["validate", "--config", path.join(fixtures, "valid.yaml")], { LB4_TEST_PORT: "18081", LB4_TEST_MEMBER_PORT: "9001" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("valid (1 load balancer(s), 1 listener(s), 1 pool(s), 1 member(s))");
  });

  it("names an unset environment variable", async () => {
    const r = await run(["validate", "--config", path.join(fixtures, "valid.yaml")], { LB4_TEST_MEMBER_PORT: "9001" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("loadbalancers[0].listeners[0].protocol_port: environment variable LB4_TEST_PORT is not set");
  });

  it("is a usage error (exit 2) without --config, and --help is complete", async () => {
    const r = await run(["validate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--config");
    const help = await run(["start", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--grace <seconds>");
    expect(help.stdout).toContain("SIGHUP");
  });
});

describe("lb4 start", () => {
  let child: ChildProcess | undefined;
  const servers: TestServer[] = [];
  afterEach(async () => {
    child?.kill("SIGKILL");
    child = undefined;
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it("serves traffic, then on SIGTERM stops accepting, lets the in-flight connection finish and exits 0", async () => {
    const slow = await silentServer();
    servers.push(slow);
    const port = await freePort();
    const proc = spawn(process.execPath, [bin, "start", "--config", path.join(fixtures, "valid.yaml"), "--grace", "5"], {
      env: { ...process.env, LB4_LOG_FORMAT: "json", LB4_TEST_PORT: String(port), LB4_TEST_MEMBER_PORT: String(slow.port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    let stdout = "";
    proc.stdout!.on("data", (c: Buffer) => (stdout += c));
    proc.stderr!.on("data", (c: Buffer) => (stdout += c));
    const exited = new Promise<number | null>((r) => proc.on("close", (code) => r(code)));
    await waitFor(() => stdout.includes('"ev":"start"'), 10_000, "lb4 start to log its start");

    // An in-flight connection through lb4: the member answers only after SIGTERM.
    const client = net.connect({ port, host: "127.0.0.1" });
    const got: Buffer[] = [];
    client.on("data", (c: Buffer) => got.push(c));
    client.on("error", () => undefined);
    await waitFor(() => slow.sockets.size === 1, 5000, "the member to get the connection");
    proc.kill("SIGTERM");
    await waitFor(() => stdout.includes('"ev":"stop"'), 5000, "lb4 to log the stop");

    // New connections are refused once stopping: nothing listens on the port any more (an
    // accepted-then-closed connection would show as "connected" here, not ECONNREFUSED).
    // The stop line is written after the listener is closed (the log is flushed later).
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect({ port, host: "127.0.0.1" });
      s.on("connect", () => resolve("connected"));
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      s.on("close", () => resolve("closed"));
    });
    expect(refused).toBe("ECONNREFUSED");

    const member = [...slow.sockets][0]!;
    member.end("late reply");
    await new Promise((r) => client.once("close", r));
    expect(Buffer.concat(got).toString()).toBe("late reply");
    expect(await exited).toBe(0);
    const access = stdout.split("\n").find((l) => l.includes('"ev":"tcp_conn"'));
    expect(access).toBeDefined();
    const line = JSON.parse(access!);
    expect(line).toMatchObject({ listener: "ls-tcp", member_id: "m-1", bytes_out: 10, end: "closed" });
  });

  it("refuses to start on an invalid file and exits 1", async () => {
    const r = await run(["start", "--config", path.join(fixtures, "invalid", "02-unknown-pool.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("default_pool_id");
  });

  it("refuses to start when the port is taken, saying which", async () => {
    const busy = await nameServer("x");
    servers.push(busy);
    const r = await run(["start", "--config", path.join(fixtures, "valid.yaml")], { LB4_TEST_PORT: String(busy.port), LB4_TEST_MEMBER_PORT: "9001" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot listen on TCP 127.0.0.1:${busy.port}`);
    expect(r.stderr).toContain("EADDRINUSE");
  });
});
