/** LineBatcher.close(): what it holds is written, and it leaves no exit hook behind (its flush interval is cleared too). */
import { describe, expect, it } from "vitest";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LineBatcher } from "../../src/log.js";

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
