/**
 * expected_codes end to end: an HTTP monitor through the engine against real HTTP servers on
 * loopback. A member comes ONLINE for every form the schema accepts, lists of codes and
 * ranges included, and stays OFFLINE when its status is outside them.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { useEngineFixture } from "../helpers/engine.js";
import { waitFor } from "../helpers/net.js";

const fx = useEngineFixture();

const httpServers: http.Server[] = [];
afterEach(async () => {
  for (const s of httpServers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** Answers every request with `status` and its name in a header. */
async function statusServer(name: string, status: number): Promise<number> {
  const s = http.createServer((_req, res) => {
    res.writeHead(status, { "x-backend": name, connection: "close" });
    res.end(name);
  });
  httpServers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as net.AddressInfo).port;
}

function get(port: number): Promise<{ status: number; backend: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, backend: res.headers["x-backend"] as string | undefined }));
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 5 s")));
    req.on("error", reject);
  });
}

describe("HTTP monitor expected_codes through the engine", () => {
  it.each([
    ["200-299,302", [["found", 302], ["nocontent", 204]], [["missing", 404], ["moved", 301]]],
    ["200,202-204", [["ok", 200], ["accepted", 202], ["nocontent", 204]], [["created", 201]]],
    ["302", [["found", 302]], [["ok", 200]]],
  ] as [string, [string, number][], [string, number][]][])("%s: members answering a listed status come ONLINE, the others stay OFFLINE", async (codes, up, down) => {
    const all = [...up, ...down];
    const ports = await Promise.all(all.map(([name, status]) => statusServer(name, status)));
    const { h, port } = await fx.lb({
      members: ports.map((p) => ({ protocol_port: p })),
      pool: { healthmonitor: { type: "HTTP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1, expected_codes: codes } },
    });
    const members = [...h.engine.lbs.get("lb-1")!.pools.get("pool-1")!.members.values()];
    // Every member has had its first check: UNCHECKED/OFFLINE → decided.
    await waitFor(() => members.slice(0, up.length).every((m) => m.status === "ONLINE"), 10_000, `members answering ${up.map((u) => u[1]).join(",")} to go ONLINE under "${codes}"`);
    expect(members.map((m) => m.status)).toEqual([...up.map(() => "ONLINE"), ...down.map(() => "OFFLINE")]);

    // Traffic reaches only the ONLINE members.
    const seen = new Set<string>();
    for (let i = 0; i < up.length * 3; i++) {
      const r = await get(port);
      seen.add(`${r.backend}:${r.status}`);
    }
    expect([...seen].sort()).toEqual(up.map(([n, s]) => `${n}:${s}`).sort());
  });
});
