/** state_dir files: atomic writes, stale temp files, health snapshot (SPEC §4, §8; issue 12 item 4). */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { emptyState, StateStore, writeAtomic } from "../../../src/state/store.js";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "lb4-store-"));
});
afterEach(async () => {
  await chmod(dir, 0o700).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("StateStore", () => {
  it("removes temp files that interrupted writers of other pids left, and nothing else", async () => {
    const names = ["state.json.123.tmp", "state.json.99999.tmp", "health.json.42.tmp", "state.json", "notes.txt", "state.json.bak"];
    for (const n of names) await writeFile(path.join(dir, n), "x");
    const store = new StateStore(dir);
    expect(await store.removeStaleTemps()).toBe(3);
    expect((await readdir(dir)).sort()).toEqual(["notes.txt", "state.json", "state.json.bak"]);
  });

  it("a missing state_dir has nothing to clean", async () => {
    expect(await new StateStore(path.join(dir, "absent")).removeStaleTemps()).toBe(0);
  });

  it("a failed write removes its temp file and leaves the old file", async () => {
    const store = new StateStore(dir);
    await store.save({ ...emptyState(), cross_vpc_enabled: ["lb-1"] });
    // A non-empty directory where the target file should be: the temp file is written, rename fails.
    const blocked = path.join(dir, "blocked.json");
    await mkdir(path.join(blocked, "inner"), { recursive: true });
    await expect(writeAtomic(blocked, "{}", true)).rejects.toMatchObject({ code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/) });
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    expect(await store.load()).toEqual({ ...emptyState(), cross_vpc_enabled: ["lb-1"] });
  });

  it("health.json round-trips; a corrupt one means nothing is known", async () => {
    const store = new StateStore(dir);
    expect(await store.loadHealth()).toEqual({ version: 1, members: {} });
    await store.saveHealth({ version: 1, members: { "p/m-1": { endpoint: "127.0.0.1:80", state: "ONLINE" } } });
    expect((await store.loadHealth()).members["p/m-1"]).toEqual({ endpoint: "127.0.0.1:80", state: "ONLINE" });
    await writeFile(store.healthFile, "{not json");
    expect(await store.loadHealth()).toEqual({ version: 1, members: {} });
  });
});
