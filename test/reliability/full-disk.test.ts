/**
 * A full disk under state_dir: a 64 KiB tmpfs the test mounts and fills. An admin write then
 * gets a clear error and changes nothing (API, state file, traffic), lb4 keeps serving, no
 * temp file is left behind; once space is freed writes work again and survive a restart.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, type TestServer } from "../helpers/net.js";
import { lineServer } from "./helpers/backends.js";
import { missing, title } from "./helpers/env.js";
import { figure } from "./helpers/figures.js";
import { adminBase, Lb4Proc, killAllLb4 } from "./helpers/lb4.js";
import { oneRequest } from "./helpers/load.js";

const skip = missing("root", "mount", "umount");
const POOL = "pool-d";

describe.skipIf(skip !== undefined)(title("a full disk under state_dir (tmpfs, 64 KiB)", skip), () => {
  let dir: string;
  let stateDir: string;
  let mounted = false;
  let backend: TestServer;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "lb4-rel-disk-"));
    stateDir = path.join(dir, "state");
    mkdirSync(stateDir);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", stateDir]);
    mounted = true;
    backend = await lineServer("m1");
  });
  afterEach(() => killAllLb4());
  afterAll(async () => {
    await killAllLb4();
    if (mounted) {
      try {
        execFileSync("umount", [stateDir]);
      } catch {
        execFileSync("umount", ["-l", stateDir]);
      }
    }
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a write on a full disk is refused with a clear error and changes nothing; after freeing space writes work again", async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = path.join(dir, "lb4.yaml");
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    let lb = await Lb4Proc.start({
      config: {
        ...adminBase(adminPort, stateDir),
        loadbalancers: [
          {
            id: "lb-d",
            vip_address: "127.0.0.1",
            listeners: [{ id: "ls-d", protocol: "TCP", protocol_port: port, default_pool_id: POOL }],
            pools: [{ id: POOL, protocol: "TCP", members: [{ id: "m1", address: "127.0.0.1", protocol_port: backend.port }] }],
          },
        ],
      },
      file,
      adminUrl,
    });
    const add = (id: string, p: number) => lb.api("POST", `/v3/elb/pools/${POOL}/members`, { body: { member: { id, address: "127.0.0.1", protocol_port: p, weight: 0 } } });
    expect((await add("m-before", 10)).status).toBe(201);
    const stateFile = path.join(stateDir, "state.json");
    const stateBefore = readFileSync(stateFile, "utf8");
    const membersBefore = JSON.stringify(await lb.members(POOL));

    // Fill the tmpfs to the last byte.
    const filler = path.join(stateDir, "filler");
    let filled = 0;
    try {
      for (let i = 0; i < 1024; i++) {
        writeFileSync(filler, Buffer.alloc(4096), { flag: "a" });
        filled += 4096;
      }
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
    }
    try {
      for (let i = 0; i < 4096; i++) writeFileSync(filler, Buffer.alloc(1), { flag: "a" });
    } catch {
      // full
    }

    const refusedAdd = await add("m-full", 11);
    const refusedPut = await lb.api("PUT", `/v3/elb/pools/${POOL}/members/m-before`, { body: { member: { weight: 5 } } });
    const refusedDel = await lb.api("DELETE", `/v3/elb/pools/${POOL}/members/m-before`);
    const membersDuring = JSON.stringify(await lb.members(POOL));
    const stateDuring = readFileSync(stateFile, "utf8");
    const tmpLeft = readdirSync(stateDir).filter((f) => f.endsWith(".tmp"));
    const served = await oneRequest("127.0.0.1", port, 1, 5000);

    rmSync(filler);
    const addAfter = await add("m-after", 12);
    const persisted = existsSync(stateFile) && readFileSync(stateFile, "utf8").includes("m-after");
    await lb.kill9();
    lb = await Lb4Proc.spawn({ file, adminUrl });
    const afterRestart = (await lb.members(POOL)).map((m) => m.id as string).sort();
    const active = await lb.settle();
    await lb.stop();

    const code = (r: { status: number; body: { error_code?: string } | undefined }) => `${r.status} ${r.body?.error_code ?? "(no error_code)"}`;
    figure(
      "full disk (state_dir on a 64 KiB tmpfs)",
      `disk filled (${filled / 1024} KiB): POST → ${code(refusedAdd)}, PUT → ${code(refusedPut)}, DELETE → ${code(refusedDel)}; members and state.json unchanged: ${membersDuring === membersBefore && stateDuring === stateBefore}; temp files left: ${tmpLeft.length}; traffic served: ${served.ok}; after freeing: POST → ${addAfter.status}`,
      "a write on a full disk gets an LB4 error and changes nothing; traffic continues; writes work again once space is free",
    );
    for (const r of [refusedAdd, refusedPut, refusedDel]) {
      expect(r.status, "a write on a full disk is refused as Insufficient Storage").toBe(507);
      expect(r.body?.error_code).toBe("LB4.STATE_WRITE_FAILED");
      expect(String(r.body?.error_msg ?? "")).not.toBe("");
    }
    expect(membersDuring, "members after the refused writes").toBe(membersBefore);
    expect(stateDuring, "state.json after the refused writes").toBe(stateBefore);
    expect(tmpLeft, "temp files left by the failed writes").toEqual([]);
    expect(served.ok, "traffic while the disk is full").toBe(true);
    expect(addAfter.status, "a write after freeing space").toBe(201);
    expect(persisted).toBe(true);
    expect(afterRestart).toEqual(["m-after", "m-before", "m1"]);
    expect(active).toBe(0);
  });
});
