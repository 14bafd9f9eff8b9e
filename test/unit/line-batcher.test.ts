/** LineBatcher.close(): what it holds is written, and it leaves no exit hook behind (its flush interval is cleared too). */
import { describe, expect, it } from "vitest";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LineBatcher, linePieces } from "../../src/log.js";

describe("LineBatcher.close", () => {
  it("writes the held lines and removes its exit hook", async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "lb4-batcher-")), "out.log");
    const fd = openSync(file, "w");
    const b = new LineBatcher({ fd });
    // sonic-boom may hook exit too; ours is the one close() must remove.
    const hooks = process.listenerCount("exit");
    b.write('{"msg":"one"}\n');
    b.close();
    expect(process.listenerCount("exit")).toBe(hooks - 1);
    for (let i = 0; i < 100 && readFileSync(file, "utf8") === ""; i++) await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(file, "utf8")).toBe('{"msg":"one"}\n');
    closeSync(fd);
  });
});

describe("linePieces (whole-line writes of at most PIPE_BUF bytes, for workers sharing stdout)", () => {
  const lines = (n: number, len: number) => Array.from({ length: n }, (_, i) => `${String(i).padStart(4, "0")}${"x".repeat(len - 5)}\n`).join("");
  it.each([
    ["small batch: one piece", lines(3, 100), 4096, [300]],
    ["cut at the last line end before the limit", lines(100, 100), 4096, [4000, 4000, 2000]],
    ["a line longer than the limit is a piece of its own", lines(1, 50) + "y".repeat(5000) + "\n" + lines(1, 50), 4096, [50, 5001, 50]],
    ["exactly the limit", lines(4, 1024), 4096, [4096]],
  ])("%s", (_name, text, max, sizes) => {
    const pieces = linePieces(Buffer.from(text), max);
    expect(pieces.map((p) => p.length)).toEqual(sizes);
    expect(Buffer.concat(pieces).toString()).toBe(text);
    for (const p of pieces) expect(p[p.length - 1]).toBe(10);
  });
});
