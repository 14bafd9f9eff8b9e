/**
 * Every command in the README's "Runtime control" section, read from the README itself, runs
 * against `lb4 demo` and succeeds: the `lb4 …` lines as CLI children, the curl lines as the
 * same requests made with node:http. A README edit that breaks a command against the demo
 * fails here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, tempDir, type CliRun } from "../helpers/lb4-child.js";
import { waitFor } from "../helpers/net.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "bin/lb4");
const README_ADMIN = "http://127.0.0.1:9870";

/** The ```sh blocks of the README section whose heading starts with `title`. */
async function shellBlocks(title: string): Promise<string[]> {
  const text = await readFile(path.join(root, "README.md"), "utf8");
  const start = text.indexOf(`\n## ${title}`);
  if (start < 0) throw new Error(`README has no "## ${title}" section`);
  const end = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * A small POSIX-shell word splitter for the README's lines: quotes, `\` line continuations,
 * `#` comments, `;` between commands, `$NAME` / `${NAME}` expanded from `vars` (outside
 * single quotes). Returns one word list per command.
 */
function shellCommands(block: string, vars: Map<string, string>): string[][] {
  const src = block.replace(/\\\n/g, " ");
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  const expand = (s: string, i: number): [string, number] => {
    const m = /^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/.exec(s.slice(i));
    if (!m) return ["$", i + 1];
    return [vars.get(m[1] ?? m[2]!) ?? "", i + m[0].length];
  };
  const endCommand = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
    // A lone NAME=value is an assignment, in effect for what follows.
    const m = words.length === 1 ? /^([A-Za-z_]\w*)=(.*)$/s.exec(words[0]!) : null;
    if (m) vars.set(m[1]!, m[2]!);
    else if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < src.length; ) {
    const c = src[i]!;
    if (c === "\n" || c === ";") {
      endCommand();
      i++;
    } else if (c === " " || c === "\t") {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (c === "#" && word === undefined) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "'") {
      const j = src.indexOf("'", i + 1);
      word = (word ?? "") + src.slice(i + 1, j);
      i = j + 1;
    } else if (c === '"') {
      word ??= "";
      i++;
      while (src[i] !== '"') {
        if (src[i] === "$") {
          const [v, next] = expand(src, i);
          word += v;
          i = next;
        } else word += src[i++];
      }
      i++;
    } else if (c === "$") {
      const [v, next] = expand(src, i);
      word = (word ?? "") + v;
      i = next;
    } else {
      word = (word ?? "") + c;
      i++;
    }
  }
  endCommand();
  return commands;
}

/** `lb4 ARGS` in `cwd` to completion. */
function lb4(args: string[], cwd: string, env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, LB4_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    const t = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`lb4 ${args.join(" ")} did not exit in time`));
    }, 20_000);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a curl command line asks for (-s, -H, -d, -X and the URL), made with node:http. */
function curl(words: string[], base: string): Promise<{ status: number; body: string }> {
  let method: string | undefined;
  let data: string | undefined;
  let url: string | undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === "-s") continue;
    else if (w === "-H") {
      const h = words[++i]!;
      const at = h.indexOf(":");
      const value = h.slice(at + 1).trim();
      if (value !== "") headers[h.slice(0, at).trim().toLowerCase()] = value; // curl drops a header with no value
    } else if (w === "-d") data = words[++i]!;
    else if (w === "-X") method = words[++i]!;
    else if (w.startsWith("-")) throw new Error(`curl option ${w} is not known to this test; teach it`);
    else url = w;
  }
  if (!url) throw new Error(`no URL in: ${words.join(" ")}`);
  // The README's admin address is the demo's default; the demo may have fallen back to another port.
  const target = new URL(url.startsWith(README_ADMIN) ? base + url.slice(README_ADMIN.length) : url);
  method ??= data !== undefined ? "POST" : "GET";
  if (data !== undefined) headers["content-type"] ??= "application/x-www-form-urlencoded"; // what curl -d sends without -H
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method, headers, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${target}`)));
    req.on("error", reject);
    req.end(data);
  });
}

let demo: ChildProcess | undefined;
let demoOut = "";
let adminUrl = "";
let cwd = "";

beforeAll(async () => {
  cwd = await tempDir("lb4-readme-");
  // --port 0: the README's commands need the admin API, not the demo's traffic port.
  const proc = spawn(process.execPath, [bin, "demo", "--port", "0"], { cwd, env: { ...process.env, LB4_LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "pipe"] });
  demo = proc;
  proc.stdout!.on("data", (d: Buffer) => (demoOut += d));
  proc.stderr!.on("data", (d: Buffer) => (demoOut += d));
  await waitFor(() => /Admin API \(loopback, no token\): (http:\/\/\S+)/.test(demoOut) || proc.exitCode !== null, 15_000, "the demo to print its admin URL");
  const m = /Admin API \(loopback, no token\): (http:\/\/\S+)/.exec(demoOut);
  if (!m) throw new Error(`demo did not start:\n${demoOut}`);
  adminUrl = m[1]!;
});

afterAll(async () => {
  demo?.kill("SIGKILL");
  await removeDir(cwd);
});

describe("README runtime-control commands against lb4 demo", () => {
  it("the demo prints its admin URL and serves /healthz and /metrics there", async () => {
    expect(demoOut).toContain(`curl -s ${adminUrl}/v3/elb/pools/pool-web/members`);
    const health = await curl(["curl", `${adminUrl}/healthz`], adminUrl);
    expect(health).toEqual({ status: 200, body: expect.stringContaining('"status":"ok"') });
    const metrics = await curl(["curl", `${adminUrl}/metrics`], adminUrl);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('lb4_member_weight{lb="lb-web",pool="pool-web",member="m-1"');
  });

  it("every lb4 command of the section succeeds (cwd has the `lb4 init --out lb4.yaml` starter)", async () => {
    const env = { LB4_ADMIN_TOKEN: "", LB4_CONFIG: "", ...(adminUrl === README_ADMIN ? { LB4_ADMIN_URL: "" } : { LB4_ADMIN_URL: adminUrl }) };
    expect((await lb4(["init", "--out", "lb4.yaml"], cwd, env)).code).toBe(0);
    const vars = new Map<string, string>();
    const commands = (await shellBlocks("Runtime control")).flatMap((b) => shellCommands(b, vars)).filter((c) => c[0] === "lb4");
    // The section documents each of these; a README that drops one should fail loudly, not pass quietly.
    const names = commands.map((c) => (c[1] === "members" ? `members ${c[2]}` : c[1]));
    for (const n of ["status", "members list", "members add", "members set-weight", "members set-admin", "members remove", "members find", "reload"]) expect(names).toContain(n);
    for (const cmd of commands) {
      const r = await lb4(cmd.slice(1), cwd, env);
      expect({ cmd: cmd.join(" "), code: r.code, stderr: r.stderr }).toEqual({ cmd: cmd.join(" "), code: 0, stderr: "" });
    }
    // What the sequence did is visible in the demo: m-1 re-weighted and back up, m-15 gone again.
    const after = JSON.parse((await lb4(["members", "list", "--pool", "pool-web", "--json"], cwd, env)).stdout) as { members: Array<{ id: string; weight: number; admin_state_up: boolean }> };
    expect(after.members.map((m) => m.id).sort()).toEqual(["m-1", "m-2", "m-3"]);
    expect(after.members.find((m) => m.id === "m-1")).toMatchObject({ weight: 0, admin_state_up: true });
  });

  it("every curl line of the section succeeds (2xx) when made with node:http", async () => {
    const vars = new Map<string, string>([["LB4_ADMIN_TOKEN", ""]]);
    const commands = (await shellBlocks("Runtime control")).flatMap((b) => shellCommands(b, vars)).filter((c) => c[0] === "curl");
    expect(commands.length).toBeGreaterThanOrEqual(8);
    const replies: Array<{ cmd: string; status: number; body: string }> = [];
    for (const cmd of commands) {
      const r = await curl(cmd, adminUrl);
      replies.push({ cmd: cmd.join(" "), ...r });
      expect({ cmd: cmd.join(" "), status: r.status < 300 ? "2xx" : r.status, body: r.status < 300 ? "" : r.body }).toEqual({ cmd: cmd.join(" "), status: "2xx", body: "" });
    }
    const lookup = replies.find((r) => r.cmd.includes("members?instance_id="));
    expect(JSON.parse(lookup!.body).members).toEqual([expect.objectContaining({ pool_id: "pool-web", member_id: "m-16" })]);
    expect(replies.at(-1)!.body).toContain("lb4_reloads_total");
  });
});

describe("the README shell splitter", () => {
  it.each([
    [`A=x; H="Auth: $A"; J='C: $A'\ncurl -s -H "$H" -H "$J" $A/p # note`, [["curl", "-s", "-H", "Auth: x", "-H", "C: $A", "x/p"]]],
    [`lb4 members add --pool p \\\n   --id m-1   # add`, [["lb4", "members", "add", "--pool", "p", "--id", "m-1"]]],
    [`curl -d '{"a": 1}' "\${A}/q?x=1"`, [["curl", "-d", '{"a": 1}', "x/q?x=1"]]],
  ])("%s", (block, expected) => {
    const vars = new Map([["A", "x"]]);
    expect(shellCommands(block, vars)).toEqual(expected);
  });
});
