/**
 * The admin API's live side in-process: the event stream (GET /v3/elb/events: resume by seq,
 * counters, limits, close), the dashboard's state (GET /v3/elb/dashboard) and its files (GET /).
 */
import { afterEach, describe, expect, it } from "vitest";
import { startAdminServer, type AdminServer, type AdminServerOptions } from "../../src/admin/server.js";
import { SseParser, type SseMessage } from "../../src/admin/sse.js";
import { EVENT_CAP } from "../../src/control/events.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { silentLogger } from "../../src/log.js";
import { echoServer, freePort, waitFor, connect, type TestServer } from "../helpers/net.js";

const TOKEN = "events-test-token";
const handles: LoadBalancerHandle[] = [];
const servers: AdminServer[] = [];
const backends: TestServer[] = [];
const readers: EventReader[] = [];

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(handles.splice(0).map((h) => h.close({ graceMs: 0 })));
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

async function start(opts: { live?: AdminServerOptions["live"]; token?: string | undefined; monitor?: boolean } = {}) {
  const port = await freePort();
  const b = await echoServer();
  const b2 = await echoServer("127.0.0.2");
  backends.push(b, b2);
  const h = await startLoadBalancer(
    {
      loadbalancers: [
        {
          id: "lb-1",
          name: "front",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [
            {
              id: "pool-1",
              protocol: "TCP",
              ...(opts.monitor ? { healthmonitor: { type: "TCP", delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1 } } : {}),
              members: [
                { id: "m-0", address: "127.0.0.1", protocol_port: b.port, weight: 3 },
                { id: "m-1", address: "127.0.0.2", protocol_port: b2.port, weight: 1, name: "second" },
              ],
            },
          ],
        },
      ],
    },
    { tuning: { tickMs: 100 } },
  );
  handles.push(h);
  const s = await startAdminServer({
    engine: h.engine,
    listen: "127.0.0.1:0",
    token: "token" in opts ? opts.token : TOKEN,
    logger: silentLogger(),
    reload: async () => undefined,
    live: { countersMs: 200, ...opts.live },
  });
  servers.push(s);
  return { h, s, port, url: `http://127.0.0.1:${s.address.port}` };
}

/** An event-stream reader: every event kept, awaited with a bound. */
class EventReader {
  readonly events: SseMessage[] = [];
  ended = false;
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];

  private constructor(readonly res: Response) {}

  static async open(url: string, headers: Record<string, string> = { "x-auth-token": TOKEN }): Promise<EventReader> {
    const ac = new AbortController();
    const res = await fetch(url, { headers, signal: ac.signal });
    const r = new EventReader(res);
    (r as unknown as { abort: AbortController }).abort = ac;
    readers.push(r);
    if (res.ok) void r.pump();
    return r;
  }

  private async pump(): Promise<void> {
    const parser = new SseParser();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.res.body as unknown as AsyncIterable<Uint8Array>) {
        this.events.push(...parser.push(decoder.decode(chunk, { stream: true })));
        this.wake();
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first event (after `from`) that matches, within `ms`. */
  async next(pred: (m: SseMessage) => boolean, ms = 5000, from = 0): Promise<SseMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.slice(from).find(pred);
      if (found) return found;
      if (this.ended) throw new Error(`stream ended; events: ${this.events.map((e) => e.event).join(", ")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${ms} ms; got: ${this.events.map((e) => e.event).join(", ")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async untilEnded(ms = 5000): Promise<void> {
    await waitFor(() => this.ended, ms, "the stream to end");
  }

  close(): void {
    (this as unknown as { abort: AbortController }).abort.abort();
  }
}

const json = (m: SseMessage) => JSON.parse(m.data) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function put(url: string, path: string, body: unknown): Promise<number> {
  const r = await fetch(`${url}${path}`, { method: "PUT", headers: { "x-auth-token": TOKEN, "content-type": "application/json" }, body: JSON.stringify(body) });
  await r.text();
  return r.status;
}

describe("GET /v3/elb/events", () => {
  it("is an event stream: retry, hello with the last seq, counters, then control events with id = seq", async () => {
    const { url } = await start();
    const r = await EventReader.open(`${url}/v3/elb/events`);
    expect(r.res.status).toBe(200);
    expect(r.res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(r.res.headers.get("cache-control")).toBe("no-store");
    const hello = await r.next((m) => m.event === "hello");
    expect(json(hello)).toMatchObject({ last_seq: 0 });
    const counters = json(await r.next((m) => m.event === "counters"));
    expect(counters.listeners["ls-1"]).toMatchObject({ active: 0, total: 0, bytes_in: 0, bytes_out: 0 });
    expect(counters.members["pool-1"]["m-0"]).toMatchObject({ active: 0, total: 0, effective_weight: 3, operating_status: "NO_MONITOR", health: "NO_MONITOR" });

    expect(await put(url, "/v3/elb/pools/pool-1/members/m-1", { member: { weight: 7 } })).toBe(200);
    const e = await r.next((m) => m.event === "member_updated");
    expect(e.id).toBe("1");
    expect(json(e)).toMatchObject({ seq: 1, type: "member_updated", pool_id: "pool-1", member_id: "m-1" });
    // the next counters carry the new effective weight
    const after = r.events.length;
    const c2 = json(await r.next((m) => m.event === "counters", 5000, after));
    expect(c2.members["pool-1"]["m-1"].effective_weight).toBe(7);
  });

  it("counters follow traffic: a connection shows as active on its listener and member, then in the rate", async () => {
    const { url, port } = await start();
    const r = await EventReader.open(`${url}/v3/elb/events`);
    await r.next((m) => m.event === "counters");
    const sock = await connect(port);
    try {
      const c = json(await r.next((m) => m.event === "counters" && json(m).listeners["ls-1"].active === 1));
      expect(c.listeners["ls-1"].total).toBe(1);
      const members = c.members["pool-1"];
      expect(members["m-0"].active + members["m-1"].active).toBe(1);
      // the interval that saw it has a positive new-connection rate
      const withRate = await r.next((m) => m.event === "counters" && json(m).listeners["ls-1"].total === 1 && json(m).listeners["ls-1"].conn_rate > 0, 5000, 0);
      expect(json(withRate).listeners["ls-1"].conn_rate).toBeGreaterThan(0);
    } finally {
      sock.destroy();
    }
  });

  it.each<{ name: string; since: (url: string) => string; headers: Record<string, string>; want: number[] }>([
    { name: "?since=0 replays every event held", since: (url: string) => `${url}/v3/elb/events?since=0`, headers: {}, want: [1, 2, 3] },
    { name: "?since=2 replays the ones after 2", since: (url: string) => `${url}/v3/elb/events?since=2`, headers: {}, want: [3] },
    { name: "Last-Event-ID: 1 resumes after 1", since: (url: string) => `${url}/v3/elb/events`, headers: { "last-event-id": "1" }, want: [2, 3] },
    { name: "no since: only what comes next", since: (url: string) => `${url}/v3/elb/events`, headers: {}, want: [] },
  ])("resumes by seq: $name", async ({ since, headers, want }) => {
    const { url } = await start();
    for (const w of [4, 5, 6]) expect(await put(url, "/v3/elb/pools/pool-1/members/m-1", { member: { weight: w } })).toBe(200);
    const r = await EventReader.open(since(url), { "x-auth-token": TOKEN, ...headers });
    // the replay comes before the first counters
    await r.next((m) => m.event === "counters");
    const before = r.events.slice(0, r.events.findIndex((m) => m.event === "counters"));
    expect(before.filter((m) => m.event === "member_updated").map((m) => Number(m.id))).toEqual(want);
    expect(before.some((m) => m.event === "reset")).toBe(false);
  });

  it("says `reset` when the events asked for are gone (ring overflow, or a seq from before a restart)", async () => {
    const { url, h } = await start();
    for (let i = 0; i < EVENT_CAP + 5; i++) h.engine.events.push({ type: "reload", result: "ok" });
    const r = await EventReader.open(`${url}/v3/elb/events?since=1`);
    const reset = await r.next((m) => m.event === "reset");
    expect(json(reset)).toMatchObject({ since: 1, last_seq: EVENT_CAP + 5 });
    // then what is still held, oldest first
    const first = await r.next((m) => m.event === "reload");
    expect(first.id).toBe(String(6));
    const future = await EventReader.open(`${url}/v3/elb/events?since=999999`);
    expect(json(await future.next((m) => m.event === "reset"))).toMatchObject({ since: 999999 });
  });

  it.each<{ name: string; path?: string; headers: Record<string, string>; status: number; code: string }>([
    { name: "no token", headers: {}, status: 401, code: "LB4.UNAUTHORIZED" },
    { name: "a bad since", path: "?since=abc", headers: { "x-auth-token": TOKEN }, status: 400, code: "LB4.INVALID_REQUEST" },
    { name: "a bad Last-Event-ID", headers: { "x-auth-token": TOKEN, "last-event-id": "-1" }, status: 400, code: "LB4.INVALID_REQUEST" },
    { name: "an unknown parameter", path: "?token=x", headers: { "x-auth-token": TOKEN }, status: 400, code: "LB4.INVALID_REQUEST" },
  ])("refuses $name", async ({ path, headers, status, code }) => {
    const { url } = await start();
    const res = await fetch(`${url}/v3/elb/events${path ?? ""}`, { headers });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error_code: string }).error_code).toBe(code);
  });

  it("holds at most maxStreams open; a closed one frees its place", async () => {
    const { url } = await start({ live: { maxStreams: 2 } });
    const a = await EventReader.open(`${url}/v3/elb/events`);
    const b = await EventReader.open(`${url}/v3/elb/events`);
    await a.next((m) => m.event === "hello");
    await b.next((m) => m.event === "hello");
    const third = await fetch(`${url}/v3/elb/events`, { headers: { "x-auth-token": TOKEN } });
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("5");
    expect(((await third.json()) as { error_code: string }).error_code).toBe("LB4.TOO_MANY_STREAMS");
    a.close();
    let status = 0;
    await waitFor(
      async () => {
        const r = await fetch(`${url}/v3/elb/events`, { headers: { "x-auth-token": TOKEN } });
        status = r.status;
        if (status === 200) readers.push(Object.assign(Object.create(EventReader.prototype), { close: () => void r.body?.cancel() }));
        else await r.text();
        return status === 200;
      },
      5000,
      "a place to free up",
    );
    expect(status).toBe(200);
  });

  it("closing the admin server ends every stream and stops its timers", async () => {
    const { url, s } = await start();
    const r = await EventReader.open(`${url}/v3/elb/events`);
    await r.next((m) => m.event === "counters");
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    await r.untilEnded();
    expect(r.ended).toBe(true);
  });
});

describe("GET /v3/elb/dashboard", () => {
  it("has every object with the member facts the page shows: last check, share, slow start", async () => {
    const { url, port } = await start({ monitor: true });
    await waitFor(
      async () => {
        const r = await fetch(`${url}/v3/elb/dashboard`, { headers: { "x-auth-token": TOKEN } });
        const d = ((await r.json()) as { dashboard: { loadbalancers: Array<{ pools: Array<{ members: Array<{ last_check: unknown }> }> }> } }).dashboard;
        return d.loadbalancers[0]!.pools[0]!.members.every((m) => m.last_check !== null);
      },
      10_000,
      "both members checked",
    );
    const sock = await connect(port);
    sock.destroy();
    const res = await fetch(`${url}/v3/elb/dashboard`, { headers: { "x-auth-token": TOKEN } });
    expect(res.status).toBe(200);
    const d = ((await res.json()) as { dashboard: Record<string, any> }).dashboard; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(d).toMatchObject({ last_event_seq: expect.any(Number), history: { interval_s: 5, samples: 60 }, instances: null });
    const lb = d.loadbalancers[0];
    expect(lb).toMatchObject({ id: "lb-1", name: "front", vip_address: "127.0.0.1" });
    expect(lb.listeners[0]).toMatchObject({ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1", bytes_in: expect.any(Number), history: expect.any(Array) });
    const pool = lb.pools[0];
    expect(pool).toMatchObject({ id: "pool-1", lb_algorithm: "ROUND_ROBIN", healthmonitor: { type: "TCP", delay: 1 } });
    expect(pool.members.map((m: { id: string }) => m.id)).toEqual(["m-0", "m-1"]);
    for (const m of pool.members) {
      expect(m).toMatchObject({ operating_status: "ONLINE", health: "ONLINE", slow_start: null, last_check: { result: "PASS", reason: "connected", checked_at: expect.any(Number) } });
      expect(Math.abs(m.last_check.checked_at - Date.now())).toBeLessThan(60_000); // wall-clock time, not the monotonic clock
    }
    expect(pool.members[0].total_connections + pool.members[1].total_connections).toBe(1);
    // one connection in the window: the member that took it has all of the pool's share
    expect(pool.members.map((m: { share: number }) => m.share).sort()).toEqual([0, 1]);
  });

  it("shows a slow-starting member's progress", async () => {
    const port = await freePort();
    const b = await echoServer();
    backends.push(b);
    const h = await startLoadBalancer({
      loadbalancers: [
        {
          id: "lb-1",
          vip_address: "127.0.0.1",
          listeners: [{ id: "ls-1", protocol: "TCP", protocol_port: port, default_pool_id: "pool-1" }],
          pools: [{ id: "pool-1", protocol: "TCP", slow_start: { enable: true, duration: 30 }, members: [{ id: "m-0", address: "127.0.0.1", protocol_port: b.port }] }],
        },
      ],
    });
    handles.push(h);
    const s = await startAdminServer({ engine: h.engine, listen: "127.0.0.1:0", logger: silentLogger(), reload: async () => undefined });
    servers.push(s);
    await h.addMember("pool-1", { id: "m-new", address: "127.0.0.2", protocol_port: b.port, weight: 10 });
    const d = ((await (await fetch(`http://127.0.0.1:${s.address.port}/v3/elb/dashboard`)).json()) as { dashboard: Record<string, any> }).dashboard; // eslint-disable-line @typescript-eslint/no-explicit-any
    const [old, fresh] = d.loadbalancers[0].pools[0].members;
    expect(old.slow_start).toBeNull();
    expect(fresh.slow_start).toMatchObject({ duration_s: 30, progress: expect.any(Number), remaining_s: expect.any(Number) });
    expect(fresh.slow_start.progress).toBeGreaterThanOrEqual(0);
    expect(fresh.slow_start.progress).toBeLessThan(1);
    expect(fresh.effective_weight).toBeLessThan(10);
  });
});

describe("GET / (the dashboard's files)", () => {
  it("serves the page without a token, with a same-origin-only CSP, and its files with their types", async () => {
    const { url } = await start();
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toMatch(/^default-src 'self';/);
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const html = await page.text();
    expect(html).toContain('src="dashboard/app.js"');
    // nothing in the page points off the origin
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    for (const [path, type] of [
      ["/dashboard/app.js", "text/javascript; charset=utf-8"],
      ["/dashboard/app.css", "text/css; charset=utf-8"],
      ["/dashboard/favicon.svg", "image/svg+xml"],
    ] as const) {
      const r = await fetch(`${url}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get("content-type")).toBe(type);
      expect((await r.text()).length).toBeGreaterThan(50);
    }
    const js = await (await fetch(`${url}/dashboard/app.js`)).text();
    expect(js).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // no URL but the SVG namespace
  });

  it("every file the page loads is public, and nothing else under /dashboard is", async () => {
    const { PUBLIC_PATHS } = await import("../../src/admin/auth.js");
    const { loadDashboardAssets } = await import("../../src/admin/dashboard/assets.js");
    const served = [...loadDashboardAssets().files.keys()].sort();
    expect(served).toEqual(["/", "/dashboard/app.css", "/dashboard/app.js", "/dashboard/favicon.svg"]);
    expect([...PUBLIC_PATHS].filter((p) => p === "/" || p.startsWith("/dashboard/")).sort()).toEqual(served);
  });

  it("answers a matching If-None-Match with 304", async () => {
    const { url } = await start();
    const first = await fetch(`${url}/dashboard/app.js`);
    await first.text();
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${url}/dashboard/app.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
  });

  it.each([
    { name: "an unknown file needs the token like any other path", path: "/dashboard/other.js", headers: {}, status: 401 },
    { name: "an unknown file with the token is 404", path: "/dashboard/other.js", headers: { "x-auth-token": TOKEN }, status: 404 },
    { name: "the state needs the token", path: "/v3/elb/dashboard", headers: {}, status: 401 },
    { name: "the page keeps the Host rule (DNS rebinding)", path: "/", headers: { host: "evil.example" }, status: 403 },
    { name: "the page refuses a foreign Origin", path: "/", headers: { origin: "http://evil.example" }, status: 403 },
  ])("$name", async ({ path, headers, status }) => {
    const { s } = await start();
    // node's fetch will not send a custom Host; use a raw request
    const res = await new Promise<number>((resolve, reject) => {
      import("node:http").then(({ default: http }) => {
        const req = http.request({ host: "127.0.0.1", port: s.address.port, path, headers }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      }, reject);
    });
    expect(res).toBe(status);
  });
});
