/**
 * A web page must not be able to drive the admin API (SPEC §8): CSRF (a text/plain or form
 * POST from another origin) and DNS rebinding (a foreign name resolving to our address) are
 * refused, with and without a token, and a refusal changes neither the members nor the state
 * file. Real HTTP with node:http (fetch forbids setting Host) against a real `lb4 start`
 * child, so admin.allowed_hosts goes through the config file; plus in-process servers on
 * ::1 and on 0.0.0.0.
 */
import net from "node:net";
import os from "node:os";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startAdminServer, type AdminServer } from "../../src/admin/server.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { silentLogger } from "../../src/log.js";
import { freePort } from "../helpers/net.js";
import { TOKEN, adminConfig, removeDir, startLb4, tempDir, writeConfig, type Lb4Child } from "../helpers/lb4-child.js";
import { send, type Req } from "../helpers/raw-http.js";

const MEMBER = (port: number) => JSON.stringify({ member: { id: "m-evil", address: "127.0.0.1", protocol_port: port } });
const JSON_TYPE = { "content-type": "application/json" };
const EVIL = "http://evil.example";

interface Case {
  name: string;
  req: (adminPort: number) => Req;
  status: number;
  code: string;
}

/** Every way a page could try it; each must be refused and change nothing. */
const refusals: Case[] = [
  {
    name: "the issue's repro: text/plain POST from evil.example through a rebound name",
    req: (p) => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", host: `evil.example:${p}`, headers: { "content-type": "text/plain", origin: EVIL }, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "text/plain POST (no Origin)",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", headers: { "content-type": "text/plain;charset=UTF-8" }, body: MEMBER(9) }),
    status: 415,
    code: "LB4.UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "text/plain POST from another origin (CSRF)",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", headers: { "content-type": "text/plain", origin: EVIL }, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "form POST (no Origin)",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `{"member":{"address":"127.0.0.1","protocol_port":9,"x":"=1"}}` }),
    status: 415,
    code: "LB4.UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "multipart form POST from another origin",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", headers: { "content-type": "multipart/form-data; boundary=b", origin: EVIL }, body: "--b--" }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "POST without a content type",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", body: MEMBER(9) }),
    status: 415,
    code: "LB4.UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "reload without a content type (a no-cors fetch sends none)",
    req: () => ({ method: "POST", path: "/v3/elb/reload" }),
    status: 415,
    code: "LB4.UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "reload as text/plain from another origin",
    req: () => ({ method: "POST", path: "/v3/elb/reload", headers: { "content-type": "text/plain", origin: EVIL }, body: "" }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "PUT with text/plain",
    req: () => ({ method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", headers: { "content-type": "text/plain" }, body: '{"member":{"weight":0}}' }),
    status: 415,
    code: "LB4.UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "JSON POST from a foreign Origin",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", headers: { ...JSON_TYPE, origin: EVIL }, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "JSON POST with Origin: null (sandboxed frame, file:)",
    req: () => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", headers: { ...JSON_TYPE, origin: "null" }, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "JSON POST from another port on localhost (another origin)",
    req: (p) => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", host: `localhost:${p}`, headers: { ...JSON_TYPE, origin: `http://localhost:${p + 1}` }, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "JSON POST with a foreign Host (evil.example:port)",
    req: (p) => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", host: `evil.example:${p}`, headers: JSON_TYPE, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "JSON POST, rebound: foreign Host and its own (matching) Origin",
    req: (p) => ({ method: "POST", path: "/v3/elb/pools/pool-1/members", host: `evil.example:${p}`, headers: { ...JSON_TYPE, origin: `http://evil.example:${p}` }, body: MEMBER(9) }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "rebinding GET of the members (foreign Host)",
    req: (p) => ({ method: "GET", path: "/v3/elb/pools/pool-1/members", host: `evil.example:${p}` }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "rebinding GET of /metrics (foreign Host)",
    req: (p) => ({ method: "GET", path: "/metrics", host: `evil.example:${p}` }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "rebinding GET of /healthz (foreign Host)",
    req: (p) => ({ method: "GET", path: "/healthz", host: `evil.example:${p}` }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "rebinding PUT (foreign Host)",
    req: (p) => ({ method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", host: `evil.example:${p}`, headers: JSON_TYPE, body: '{"member":{"weight":0}}' }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "rebinding DELETE (foreign Host)",
    req: (p) => ({ method: "DELETE", path: "/v3/elb/pools/pool-1/members/m-a", host: `evil.example:${p}` }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
  {
    name: "DELETE from a foreign Origin",
    req: () => ({ method: "DELETE", path: "/v3/elb/pools/pool-1/members/m-a", headers: { origin: EVIL } }),
    status: 403,
    code: "LB4.FORBIDDEN_ORIGIN",
  },
  {
    name: "two Host headers, ours first",
    req: (p) => ({ method: "GET", path: "/v3/elb/pools/pool-1/members", host: [`127.0.0.1:${p}`, "evil.example"] }),
    status: 403,
    code: "LB4.FORBIDDEN_HOST",
  },
];

const ALLOWED = "lb4.internal.test";

for (const mode of [{ token: false }, { token: true }] as const) {
  describe(`refused browser requests ${mode.token ? "with a token configured" : "without a token (loopback default)"}`, () => {
    let dir = "";
    let lb: Lb4Child;
    let adminPort = 0;
    const tokens: Array<{ label: string; headers: Record<string, string> }> = mode.token
      ? [
          { label: "the right token", headers: { "x-auth-token": TOKEN } },
          { label: "a wrong token", headers: { "x-auth-token": `${TOKEN}-wrong` } },
          { label: "no token", headers: {} },
        ]
      : [{ label: "no token", headers: {} }];
    const auth: Record<string, string> = mode.token ? { "x-auth-token": TOKEN } : {};

    beforeAll(async () => {
      dir = await tempDir("lb4-browser-");
      const [port, ap] = [await freePort(), await freePort()];
      adminPort = ap;
      const cfg = adminConfig(adminPort, "./state", [
        {
          id: "lb-1",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [{ id: "pool-1", protocol: "TCP", members: [{ id: "m-a", address: "127.0.0.1", protocol_port: 9 }] }],
        },
      ]);
      cfg.admin = { listen: `127.0.0.1:${adminPort}`, allowed_hosts: [ALLOWED], ...(mode.token ? { token: TOKEN } : {}) };
      await writeConfig(path.join(dir, "lb4.yaml"), cfg);
      lb = await startLb4(path.join(dir, "lb4.yaml"), adminPort);
      // One accepted change, so a state file exists whose bytes a refusal must not touch.
      expect((await send(adminPort, { method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", headers: { ...JSON_TYPE, ...auth }, body: '{"member":{"weight":3}}' })).status).toBe(200);
    }, 30_000);

    afterAll(async () => {
      await lb?.kill9();
      await removeDir(dir);
    });

    const members = async () => {
      const r = await send(adminPort, { method: "GET", path: "/v3/elb/pools/pool-1/members", headers: auth });
      expect(r.status).toBe(200);
      return (r.body.members as Array<Record<string, unknown>>).map((m) => ({ id: m.id, weight: m.weight, admin_state_up: m.admin_state_up, protocol_port: m.protocol_port }));
    };
    const stateFile = () => readFile(path.join(dir, "state", "state.json"), "utf8");

    const rows = refusals.flatMap((c) => tokens.map((t) => ({ ...c, token: t })));
    it.each(rows)("$name, $token.label → $status $code", async ({ req, status, code, token }) => {
      const [before, stateBefore] = [await members(), await stateFile()];
      expect(before).toEqual([{ id: "m-a", weight: 3, admin_state_up: true, protocol_port: 9 }]);
      const r0 = req(adminPort);
      const r = await send(adminPort, { ...r0, headers: { ...r0.headers, ...token.headers } });
      expect([r.status, r.body?.error_code]).toEqual([status, code]);
      expect(r.body.error_msg).toEqual(expect.any(String));
      expect(r.text).not.toContain("m-a"); // a rebinding page reads nothing of the config
      expect(await members()).toEqual(before);
      expect(await stateFile()).toBe(stateBefore);
    });

    it("answers its own names: 127.0.0.1:port, localhost:port, an allowed_hosts name, with and without a port, same-origin Origin", async () => {
      const ok = async (r: Req, expected: number) => {
        const res = await send(adminPort, { ...r, headers: { ...r.headers, ...auth } });
        expect([r.method, r.path, r.host, res.status, res.body?.error_code]).toEqual([r.method, r.path, r.host, expected, undefined]);
        return res;
      };
      // Prometheus and orchestrators scrape by address.
      await ok({ method: "GET", path: "/metrics", host: `127.0.0.1:${adminPort}` }, 200);
      await ok({ method: "GET", path: "/healthz", host: `127.0.0.1:${adminPort}` }, 200);
      await ok({ method: "GET", path: "/healthz", host: "127.0.0.1" }, 200);
      await ok({ method: "GET", path: "/v3/elb/pools", host: `localhost:${adminPort}` }, 200);
      await ok({ method: "GET", path: "/v3/elb/pools", host: `LOCALHOST:${adminPort}` }, 200);
      await ok({ method: "GET", path: "/v3/elb/pools", host: ALLOWED }, 200);
      await ok({ method: "GET", path: "/v3/elb/pools", host: `${ALLOWED}:443` }, 200);
      // The dashboard's own writes: same-origin, JSON.
      const own = `http://127.0.0.1:${adminPort}`;
      await ok({ method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", headers: { ...JSON_TYPE, origin: own }, body: '{"member":{"weight":4}}' }, 200);
      await ok({ method: "POST", path: "/v3/elb/pools/pool-1/members", host: `localhost:${adminPort}`, headers: { "content-type": "application/json; charset=utf-8", origin: `http://localhost:${adminPort}` }, body: MEMBER(10) }, 201);
      // Behind a TLS proxy that keeps the name: Origin https://name, Host name.
      await ok({ method: "PUT", path: "/v3/elb/pools/pool-1/members/m-evil", host: ALLOWED, headers: { ...JSON_TYPE, origin: `https://${ALLOWED}` }, body: '{"member":{"weight":2}}' }, 200);
      // A DELETE needs no body and so no content type (curl -X DELETE).
      await ok({ method: "DELETE", path: "/v3/elb/pools/pool-1/members/m-evil" }, 204);
      // Reload with the type and no body (what `lb4 reload` sends).
      await ok({ method: "POST", path: "/v3/elb/reload", headers: JSON_TYPE }, 200);
      // Whatever the reload reconciled, set back what the refusal table expects.
      await ok({ method: "PUT", path: "/v3/elb/pools/pool-1/members/m-a", headers: JSON_TYPE, body: '{"member":{"weight":3}}' }, 200);
      expect(await members()).toEqual([{ id: "m-a", weight: 3, admin_state_up: true, protocol_port: 9 }]);
    });

    it("answers an HTTP/1.0 request without Host (no browser sends one)", async () => {
      const out = await new Promise<string>((resolve, reject) => {
        const s = net.connect({ port: adminPort, host: "127.0.0.1" });
        let text = "";
        s.setEncoding("utf8");
        s.on("data", (d: string) => (text += d));
        s.on("end", () => resolve(text));
        s.on("error", reject);
        s.write(`GET /healthz HTTP/1.0\r\n\r\n`);
      });
      expect(out).toMatch(/^HTTP\/1\.1 200 /);
      expect(out).toContain('{"status":"ok"');
    });
  });
}

// ---------------------------------------------------------------- listeners on ::1 and 0.0.0.0

const handles: LoadBalancerHandle[] = [];
const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(handles.splice(0).map((h) => h.close({ graceMs: 0 })));
});

async function engine(): Promise<LoadBalancerHandle> {
  const h = await startLoadBalancer({
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: await freePort(), default_pool_id: "pool-1" }],
        pools: [{ id: "pool-1", protocol: "TCP", members: [{ id: "m-a", address: "127.0.0.1", protocol_port: 9 }] }],
      },
    ],
  });
  handles.push(h);
  return h;
}

async function inProcess(listen: string, token?: string): Promise<AdminServer> {
  const h = await engine();
  const s = await startAdminServer({ engine: h.engine, listen, token, logger: silentLogger(), reload: async () => undefined });
  servers.push(s);
  return s;
}

const ipv6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer();
  s.once("error", () => resolve(false));
  s.listen(0, "::1", () => s.close(() => resolve(true)));
});
if (!ipv6) console.warn("admin-browser-safety.test.ts: skipping the ::1 listener test: cannot listen on ::1 here");

describe.skipIf(!ipv6)(`an admin listener on ::1${ipv6 ? "" : " (SKIPPED: cannot listen on ::1 here)"}`, () => {
  it("answers [::1]:port and localhost:port, refuses 127.0.0.1 and foreign names", async () => {
    const s = await inProcess("[::1]:0");
    const p = s.address.port;
    const status = async (host: string, extra: Record<string, string> = {}) => (await send(p, { method: "GET", path: "/v3/elb/pools", host, headers: extra }, "::1")).status;
    expect(await status(`[::1]:${p}`)).toBe(200);
    expect(await status(`[0:0:0:0:0:0:0:1]:${p}`)).toBe(200);
    expect(await status(`localhost:${p}`)).toBe(200);
    expect(await status(`[::1]:${p}`, { origin: `http://[::1]:${p}` })).toBe(200);
    expect(await status(`127.0.0.1:${p}`)).toBe(403);
    expect(await status(`evil.example:${p}`)).toBe(403);
    expect(await status(`[::1]:${p}`, { origin: `http://evil.example:${p}` })).toBe(403);
  });
});

describe("an admin listener on 0.0.0.0 (token required)", () => {
  it("answers the host's own addresses and localhost, refuses other names and addresses", async () => {
    const s = await inProcess("0.0.0.0:0", "t0k");
    const p = s.address.port;
    const status = async (host: string) => (await send(p, { method: "GET", path: "/v3/elb/pools", host, headers: { "x-auth-token": "t0k" } })).status;
    const own = Object.values(os.networkInterfaces())
      .flatMap((l) => l ?? [])
      .map((i) => (i.family === "IPv6" ? `[${i.address}]` : i.address));
    expect(own.length).toBeGreaterThan(0);
    for (const a of own) expect([a, await status(`${a}:${p}`)]).toEqual([a, 200]);
    expect(await status(`localhost:${p}`)).toBe(200);
    expect(await status(`0.0.0.0:${p}`)).toBe(200);
    expect(await status(`192.0.2.77:${p}`)).toBe(403); // TEST-NET-1: no host has it
    expect(await status(`evil.example:${p}`)).toBe(403);
  });
});

describe("start-up", () => {
  it("refuses an admin.allowed_hosts entry that is not a host name, naming it", async () => {
    const h = await engine();
    await expect(
      startAdminServer({ engine: h.engine, listen: "127.0.0.1:0", allowedHosts: ["ok.example", "https://lb4.example.com/"], logger: silentLogger(), reload: async () => undefined }),
    ).rejects.toMatchObject({ code: "LB4.ADMIN_ALLOWED_HOST_INVALID", message: expect.stringContaining('admin.allowed_hosts[1] "https://lb4.example.com/"') });
  });
});
