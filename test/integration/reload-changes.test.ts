/** `lb4 reload` and the reload log line say what changed (issue 17): listeners bound or retired, members added, removed, re-weighted. */
import { describe, expect, it } from "vitest";
import path from "node:path";
import { freePort, waitFor } from "../helpers/net.js";
import { adminConfig, runCli, startLb4, TOKEN, useChildFixture, writeConfig } from "../helpers/lb4-child.js";

const fx = useChildFixture();

describe("lb4 reload reports its changes", () => {
  it("names the listener bound and retired and the members added, removed and re-weighted", async () => {
    const [adminPort, p1, p2] = [await freePort(), await freePort(), await freePort()];
    const file = path.join(fx.dir, "lb4.yaml");
    const write = (second: boolean) =>
      writeConfig(
        file,
        adminConfig(adminPort, path.join(fx.dir, "state"), [
          {
            id: "lb-1",
            vip_address: "127.0.0.1",
            listeners: [second ? { id: "ls-2", protocol: "TCP", protocol_port: p2, default_pool_id: "p" } : { id: "ls-1", protocol: "TCP", protocol_port: p1, default_pool_id: "p" }],
            pools: [
              {
                id: "p",
                protocol: "TCP",
                members: second
                  ? [
                      { id: "m-1", address: "127.0.0.1", protocol_port: 9001, weight: 3 },
                      { id: "m-3", address: "127.0.0.1", protocol_port: 9003 },
                    ]
                  : [
                      { id: "m-1", address: "127.0.0.1", protocol_port: 9001 },
                      { id: "m-2", address: "127.0.0.1", protocol_port: 9002 },
                    ],
              },
            ],
          },
        ]),
      );
    await write(false);
    const lb = await startLb4(file, adminPort);
    await write(true);
    const r = await runCli(["reload", "--admin", lb.url, "--token", TOKEN]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").map((l) => l.trim())).toEqual(
      expect.arrayContaining(["listeners bound: ls-2", "listeners retired: ls-1", "members added: p/m-3", "members removed: p/m-2", "re-weighted: p/m-1 1 -> 3"]),
    );
    // Log lines are batched (flushed within 250 ms): wait for it rather than read at once.
    await waitFor(() => lb.output().includes('"ev":"reload"'), 5000, "the reload log line");
    const line = lb
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.ev === "reload");
    expect(line?.msg).toBe("configuration reloaded: bound ls-2; retired ls-1; 1 member(s) added; 1 removed; 1 re-weighted");
    expect(line?.changes).toMatchObject({ listeners_bound: ["ls-2"], listeners_retired: ["ls-1"], members_added: ["p/m-3"], members_removed: ["p/m-2"], members_reweighted: [{ pool_id: "p", member_id: "m-1", from: 1, to: 3 }] });

    // The same file again: nothing to do, and it says so.
    const again = await runCli(["reload", "--admin", lb.url, "--token", TOKEN]);
    expect(again.stdout).toContain("no change");
  });
});
