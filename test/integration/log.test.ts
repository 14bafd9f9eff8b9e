/**
 * The log destination (src/log.ts): lines batched as bytes, written in order, nothing lost
 * on flush, multi-byte text intact, lines larger than a batch passed through whole.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { AccessLog } from "../../src/dataplane/access-log.js";
import { BATCH_BYTES, createLogger } from "../../src/log.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function logFile(): { file: string; fd: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lb4-log-"));
  dirs.push(dir);
  const file = path.join(dir, "out.log");
  return { file, fd: fs.openSync(file, "w") };
}

const flushed = (logger: ReturnType<typeof createLogger>) =>
  new Promise<void>((resolve, reject) => logger.flush((err?: Error) => (err ? reject(err) : resolve())));

function readLines(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("log destination", () => {
  it("keeps pino lines and access-log lines in the order they were written, across many batches", async () => {
    const { file, fd } = logFile();
    const logger = createLogger("info", { pretty: false, fd });
    const access = new AccessLog(logger);
    const n = 5000; // ~1 MB: many BATCH_BYTES batches
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) logger.info({ ev: "x", i }, "pino line");
      else {
        const r = access.next();
        r.prefix = `"ev":"tcp_conn","i":${i}`;
        r.ip = "127.0.0.1";
        r.port = i;
        r.member = '"member":"127.0.0.1:80","member_id":"m"';
        r.end = "closed";
        r.error = i % 3 === 0 ? 'bad "quote"' : "";
        r.endedAt = performance.now();
        access.commit();
      }
    }
    await flushed(logger);
    fs.closeSync(fd);
    const lines = readLines(file);
    expect(lines).toHaveLength(n);
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(lines[1]).toMatchObject({ level: 30, ev: "tcp_conn", client: "127.0.0.1:1", member_id: "m", end: "closed", msg: "connection closed", pid: process.pid });
    expect(lines[3]).toMatchObject({ ev: "tcp_conn", error: 'bad "quote"' });
    // Wall-clock time from the monotonic end time: the same epoch ms as pino's own lines.
    expect(Math.abs((lines[1]!.time as number) - (lines[0]!.time as number))).toBeLessThan(1000);
    expect(Math.abs((lines[1]!.time as number) - Date.now())).toBeLessThan(10_000);
    expect(lines[5]).not.toHaveProperty("error");
    expect(fs.statSync(file).size).toBeGreaterThan(4 * BATCH_BYTES);
  });

  it("writes multi-byte UTF-8 and a line larger than a whole batch intact", async () => {
    const { file, fd } = logFile();
    const logger = createLogger("info", { pretty: false, fd });
    const big = "é€😀".repeat(BATCH_BYTES); // ~9 bytes per repeat: far more than one batch
    logger.info({ ev: "small", s: "naïve – ✓" }, "before");
    logger.info({ ev: "big", s: big }, "big");
    logger.info({ ev: "after" }, "after");
    await flushed(logger);
    fs.closeSync(fd);
    const lines = readLines(file);
    expect(lines.map((l) => l.ev)).toEqual(["small", "big", "after"]);
    expect(lines[0]!.s).toBe("naïve – ✓");
    expect(lines[1]!.s).toBe(big);
  });

  it("access-log records wait for a batch but never pass a later line, and are written by the periodic flush", async () => {
    const { file, fd } = logFile();
    const logger = createLogger("info", { pretty: false, fd });
    const access = new AccessLog(logger);
    const r = access.next();
    r.prefix = '"ev":"tcp_conn"';
    r.member = '"member":null,"member_id":null';
    r.end = "closed";
    access.commit();
    expect(access.pending).toBe(1); // kept as a record, not yet a line
    const deadline = Date.now() + 3000;
    while (fs.statSync(file).size === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(readLines(file).map((l) => l.ev)).toEqual(["tcp_conn"]);
    const r2 = access.next();
    r2.prefix = '"ev":"tcp_conn","n":2';
    r2.member = '"member":null,"member_id":null';
    access.commit();
    logger.warn({ ev: "later" }, "a line logged after the record");
    access.close();
    await flushed(logger);
    fs.closeSync(fd);
    expect(readLines(file).map((l) => l.ev)).toEqual(["tcp_conn", "tcp_conn", "later"]);
  });

  it("process.exit() right after logging loses no line, deferred access-log records included (dist build)", () => {
    const { file, fd } = logFile();
    fs.closeSync(fd);
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist");
    const script = `
      import { createLogger } from ${JSON.stringify(path.join(dist, "log.js"))};
      import { AccessLog } from ${JSON.stringify(path.join(dist, "dataplane/access-log.js"))};
      const logger = createLogger("info", { pretty: false });
      const access = new AccessLog(logger);
      for (let i = 0; i < 3000; i++) {
        if (i % 2) logger.info({ i }, "line");
        else { const r = access.next(); r.prefix = '"i":' + i; r.member = '"member":null,"member_id":null'; access.commit(); }
      }
      process.exit(0);`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
    fs.writeFileSync(file, out);
    expect(readLines(file).map((l) => l.i)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  it("a stdout nobody reads: memory stays bounded and dropped lines are counted as lines", async () => {
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist");
    const script = `
      import { createLogger, LineBatcher } from ${JSON.stringify(path.join(dist, "log.js"))};
      import { pino } from "pino";
      const logger = createLogger("info", { pretty: false });
      const pad = "x".repeat(200);
      let n = 0;
      const t = setInterval(() => { for (let i = 0; i < 2000; i++) logger.info({ n: n++, pad }, "line"); }, 5);
      setTimeout(() => {
        clearInterval(t);
        const dest = logger[pino.symbols.streamSym];
        process.stderr.write(JSON.stringify({ lines: n, dropped: dest.dropped, isBatcher: dest instanceof LineBatcher, ab: process.memoryUsage().arrayBuffers }) + "\\n");
      }, 1500);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: dist, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pause(); // never read: the pipe fills and stays full
    let err = "";
    const exited = new Promise((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve) => {
      const giveUp = setTimeout(resolve, 15_000);
      child.stderr.on("data", (c: Buffer) => {
        err += c.toString();
        if (err.includes("\n")) {
          clearTimeout(giveUp);
          resolve();
        }
      });
    });
    // A thread-pool write blocked on a full pipe would hold the exit (Node joins its
    // thread pool), so the child is killed here; see README "Observability".
    child.kill("SIGKILL");
    await exited;
    const stats = JSON.parse(err.trim().split("\n")[0]!) as { lines: number; dropped: number; isBatcher: boolean; ab: number };
    expect(stats.isBatcher).toBe(true);
    // ~280-byte lines: everything past MAX_PENDING_BYTES (+ what the pipe took) is dropped, counted per line.
    expect(stats.dropped).toBeGreaterThan(stats.lines - 40_000);
    expect(stats.dropped).toBeLessThan(stats.lines);
    expect(stats.ab).toBeLessThan(64 * 1024 * 1024);
  });

  it("a quiet log is written within the flush interval, without an explicit flush", async () => {
    const { file, fd } = logFile();
    const logger = createLogger("info", { pretty: false, fd });
    logger.info({ ev: "lonely" }, "one line");
    const deadline = Date.now() + 3000;
    while (fs.statSync(file).size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    fs.closeSync(fd);
    expect(readLines(file).map((l) => l.ev)).toEqual(["lonely"]);
  });
});
