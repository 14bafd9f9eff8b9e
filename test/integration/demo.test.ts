/** `lb4 demo` (npm start) as a child process: balances 5:3:1 over TCP and answers over UDP. */
import { spawn, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/net.js";

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/lb4");

function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.createServer();
    s.once("error", () => r(false));
    s.listen(port, "127.0.0.1", () => s.close(() => r(true)));
  });
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    let body = "";
    s.on("connect", () => s.write("GET / HTTP/1.0\r\n\r\n"));
    s.on("data", (d: Buffer) => (body += d));
    s.on("error", reject);
    s.on("close", () => resolve(body.split("\r\n\r\n")[1] ?? ""));
  });
}

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill("SIGKILL");
  child = undefined;
});

async function demo(args: string[]): Promise<{ port: number; out: () => string }> {
  const proc = spawn(process.execPath, [bin, "demo", ...args], { env: { ...process.env, LB4_LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "pipe"] });
  child = proc;
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d));
  proc.stderr!.on("data", (d: Buffer) => (out += d));
  await waitFor(() => /a TCP load balancer on 127\.0\.0\.1:\d+/.test(out) || proc.exitCode !== null, 15_000, "the demo to start");
  const m = /a TCP load balancer on 127\.0\.0\.1:(\d+)/.exec(out);
  if (!m) throw new Error(`demo did not start:\n${out}`);
  return { port: Number(m[1]), out: () => out };
}

describe("lb4 demo", () => {
  it("balances 9 connections 5:3:1 and echoes UDP through the same port number", async () => {
    const { port, out } = await demo(["--port", "0"]);
    const answers: string[] = [];
    for (let i = 0; i < 9; i++) answers.push(await get(port));
    const count = (name: string) => answers.filter((a) => a.startsWith(`hello from ${name}`)).length;
    expect([count("web-1"), count("web-2"), count("web-3")]).toEqual([5, 3, 1]);
    expect(out()).toContain(`curl -s http://127.0.0.1:${port}/`);

    const sock = dgram.createSocket("udp4");
    const reply = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no UDP reply")), 5000);
      sock.on("message", (m) => (clearTimeout(t), resolve(String(m))));
      sock.send("ping", port, "127.0.0.1");
    });
    sock.close();
    expect(reply).toMatch(/^udp-[12]: ping$/);
  });

  it("starts on its default port 8080 (what npm start runs)", async (ctx) => {
    if (!(await portFree(8080))) ctx.skip(); // skipped: something else holds 127.0.0.1:8080 here
    const { port } = await demo([]);
    expect(port).toBe(8080);
    expect(await get(8080)).toMatch(/^hello from web-1/);
  });
});
