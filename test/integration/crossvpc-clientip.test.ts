/**
 * SPEC §6/§7 end to end on loopback: headers reach a backend built on lb4/client-ip, the
 * cross-VPC rules hold at runtime and across a restart, the source address of connections
 * to cross-VPC members is one of the LB's backend-subnet addresses, and a third-party
 * PROXY parser (nginx) reads our headers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createServer, type ClientAddress } from "../../src/clientip/index.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../../src/engine.js";
import { ConfigError } from "../../src/errors.js";
import { freePort, waitFor } from "../helpers/net.js";

const handles: LoadBalancerHandle[] = [];
const closers: Array<() => Promise<void> | void> = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), "lb4-crossvpc-"));

afterEach(async () => {
  for (const h of handles.splice(0)) {
    await waitFor(() => h.activeConnections() === 0, 5000, "active connections back to 0");
    await h.close({ graceMs: 100 });
  }
  for (const c of closers.splice(0)) await c();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** VPC 127.0.0.0/16 with backend subnet 127.0.10.0/24 (40 used): source addresses 127.0.10.42-45. Members on 127.1.x are cross-VPC. */
function lbConfig(port: number, pool: Record<string, unknown>, members: Array<{ id: string; address: string; port: number }>, extra: Record<string, unknown> = {}): ConfigInput {
  return {
    log: { level: "silent" },
    state_dir: path.join(tmp, "state-default"),
    vpcs: [{ id: "vpc-a", cidrs: ["127.0.0.0/16"], subnets: [{ id: "sn", cidr: "127.0.10.0/24", used_ips: 40 }] }],
    loadbalancers: [
      {
        id: "lb-x",
        vpc_id: "vpc-a",
        vip_address: "127.0.0.1",
        elb_virsubnet_ids: ["sn"],
        ip_target_enable: true,
        listeners: [{ id: "ls", protocol: "TCP", protocol_port: port, default_pool_id: "p" }],
        pools: [{ id: "p", protocol: "TCP", ...pool, members: members.map((m) => ({ id: m.id, address: m.address, protocol_port: m.port })) }],
        ...extra,
      },
    ],
  } as ConfigInput;
}

/** A backend on lb4/client-ip that answers "<client addr>:<port>|<socket remote>". */
async function headerBackend(mode: "toa" | "proxy_v1" | "proxy_v2", host: string): Promise<{ port: number; seen: ClientAddress[] }> {
  const seen: ClientAddress[] = [];
  const server = createServer({ mode }, (socket, client) => {
    seen.push(client);
    socket.end(`${client.address}:${client.port}|${socket.remoteAddress}`);
  });
  server.on("clientError", () => undefined);
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, seen };
}

/** A plain backend that records the first bytes it gets and its peer address, and speaks first. */
async function rawBackend(host: string, greeting?: string, until?: string): Promise<{ port: number; got: Buffer[]; peers: string[] }> {
  const got: Buffer[] = [];
  const peers: string[] = [];
  const server = net.createServer((s) => {
    peers.push(s.remoteAddress ?? "");
    if (greeting) s.write(greeting);
    // Read until `until` has arrived (header and client bytes may come in separate segments).
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (until && !buf.includes(until)) return;
      got.push(buf);
      s.end();
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, got, peers };
}

function talk(port: number, send?: string, localAddress?: string): Promise<{ text: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", ...(localAddress ? { localAddress } : {}) });
    const parts: Buffer[] = [];
    let localPort = 0;
    s.on("connect", () => {
      localPort = s.localPort ?? 0;
      if (send) s.write(send);
    });
    s.on("data", (d: Buffer) => parts.push(d));
    s.on("error", reject);
    s.on("close", () => resolve({ text: Buffer.concat(parts).toString(), localPort }));
    setTimeout(() => s.destroy(new Error("talk timed out")), 5000).unref();
  });
}

describe("client address headers end to end", () => {
  it.each(["toa", "proxy_v1", "proxy_v2"] as const)("%s: the backend learns the client's real address and port", async (mode) => {
    const backend = await headerBackend(mode, "127.0.0.1");
    const port = await freePort();
    const h = await startLoadBalancer(lbConfig(port, { client_ip: mode }, [{ id: "m", address: "127.0.0.1", port: backend.port }]));
    handles.push(h);
    const { text, localPort } = await talk(port, undefined, "127.0.0.7");
    expect(text.split("|")[0]).toBe(`127.0.0.7:${localPort}`);
    expect(backend.seen).toHaveLength(1);
  });

  it("a server-speaks-first backend works with a header on: the header goes out at once, before any client byte", async () => {
    const backend = await rawBackend("127.0.0.1", "220 ready\r\n");
    const port = await freePort();
    const h = await startLoadBalancer(lbConfig(port, { client_ip: "proxy_v1" }, [{ id: "m", address: "127.0.0.1", port: backend.port }]));
    handles.push(h);
    const greeting = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ port, host: "127.0.0.1" });
      s.once("data", (d: Buffer) => {
        resolve(d.toString());
        s.destroy();
      });
      s.on("error", reject);
    });
    expect(greeting).toBe("220 ready\r\n");
    await waitFor(() => backend.got.length === 1, 3000, "the header to arrive without client bytes");
    expect(backend.got[0]!.toString()).toMatch(/^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n$/);
  });

  it("auto: a cross-VPC member gets toa from a backend-subnet source address; a same-VPC member gets nothing", async () => {
    const crossB = await rawBackend("127.1.0.1", undefined, "hello");
    const sameB = await rawBackend("127.0.5.5", undefined, "hello");
    const port = await freePort();
    const h = await startLoadBalancer(
      lbConfig(port, {}, [
        { id: "cross", address: "127.1.0.1", port: crossB.port },
        { id: "same", address: "127.0.5.5", port: sameB.port },
      ]),
    );
    handles.push(h);
    const ports: number[] = [];
    for (let i = 0; i < 8; i++) ports.push((await talk(port, "hello")).localPort);
    expect(crossB.got).toHaveLength(4);
    expect(sameB.got).toHaveLength(4);
    for (const b of crossB.got) {
      expect(b.subarray(0, 2)).toEqual(Buffer.from([0xfe, 0x08]));
      expect([...b.subarray(4, 8)]).toEqual([127, 0, 0, 1]);
      expect(ports).toContain(b.readUInt16BE(2));
      expect(b.subarray(8).toString()).toBe("hello");
    }
    for (const b of sameB.got) expect(b.toString()).toBe("hello");
    const allocated = ["127.0.10.42", "127.0.10.43", "127.0.10.44", "127.0.10.45"];
    for (const p of crossB.peers) expect(allocated).toContain(p);
    expect(new Set(crossB.peers).size).toBe(4); // used in turn
    for (const p of sameB.peers) expect(allocated).not.toContain(p);
  });
});

describe("cross-VPC rules at runtime", () => {
  it("the member API refuses what validation refuses, and changes nothing", async () => {
    const port = await freePort();
    const h = await startLoadBalancer(lbConfig(port, {}, [{ id: "m0", address: "10.0.0.1", port: 80 }]));
    handles.push(h);
    const reject = async (fn: () => Promise<unknown>, code: string) => {
      const err = await fn().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.map((p) => p.code)).toContain(code);
    };
    await reject(() => h.addMember("p", { id: "v6", address: "fd00::5", protocol_port: 80 }), "LB4.CROSSVPC_IPV4_ONLY");
    // Fill to 492, then the 493rd is refused.
    const many = Array.from({ length: 491 }, (_, i) => ({ id: `x${i}`, address: `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`, protocol_port: 80 }));
    await h.reload({ ...h.config, loadbalancers: [{ ...h.config.loadbalancers[0]!, pools: [{ ...h.config.loadbalancers[0]!.pools[0]!, members: [...h.config.loadbalancers[0]!.pools[0]!.members, ...many] }] }] });
    expect(h.config.loadbalancers[0]!.pools[0]!.members).toHaveLength(492);
    await reject(() => h.addMember("p", { id: "one-too-many", address: "10.2.0.1", protocol_port: 80 }), "LB4.CROSSVPC_TOO_MANY_MEMBERS");
    expect(h.config.loadbalancers[0]!.pools[0]!.members).toHaveLength(492);
    await reject(() => h.reload({ ...h.config, loadbalancers: [{ ...h.config.loadbalancers[0]!, ip_target_enable: false }] }), "LB4.CROSSVPC_NOT_ENABLED");
    // 15 free IPs: a /24 has 256 − 5 reserved = 251; 236 used leaves 15.
    const vpc = h.config.vpcs[0]!;
    await reject(() => h.reload({ ...h.config, vpcs: [{ ...vpc, subnets: [{ ...vpc.subnets[0]!, used_ips: 236 }] }] }), "LB4.CROSSVPC_SUBNET_CAPACITY");
    expect(h.config.vpcs[0]!.subnets[0]!.used_ips).toBe(40); // the running config stayed
  });

  it("the member API refuses a cross-VPC member in a UDP pool", async () => {
    const port = await freePort();
    const base = lbConfig(port, {}, []);
    const lb = base.loadbalancers![0]!;
    const cfg = { ...base, loadbalancers: [{ ...lb, listeners: [], pools: [...lb.pools!, { id: "pu", protocol: "UDP" as const, members: [] }] }] } as ConfigInput;
    const h = await startLoadBalancer(cfg);
    handles.push(h);
    const err = await h.addMember("pu", { id: "u1", address: "10.0.0.9", protocol_port: 53 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.code)).toContain("LB4.CROSSVPC_TCP_ONLY");
    expect(h.config.loadbalancers[0]!.pools.find((p) => p.id === "pu")!.members).toHaveLength(0);
  });

  it("once enabled, cannot be disabled — also after a restart with the same state_dir", async () => {
    const stateDir = path.join(tmp, "state-restart");
    const port = await freePort();
    const on = { ...lbConfig(port, {}, []), state_dir: stateDir };
    const h = await startLoadBalancer(on, { persistState: true });
    await h.close({ graceMs: 0 });
    const off = { ...on, loadbalancers: [{ ...(on.loadbalancers![0] as object), ip_target_enable: false }] } as ConfigInput;
    const err = await startLoadBalancer(off, { persistState: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]).toMatchObject({ code: "LB4.CROSSVPC_CANNOT_DISABLE", path: "loadbalancers[0].ip_target_enable" });
    // A UDP pool may not hold a cross-VPC member.
    const udp = { ...on, loadbalancers: [{ ...(on.loadbalancers![0] as object), listeners: [], pools: [{ id: "pu", protocol: "UDP", members: [{ id: "u", address: "10.0.0.9", protocol_port: 53 }] }] }] } as unknown as ConfigInput;
    const e2 = await startLoadBalancer(udp, { persistState: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((e2 as ConfigError).problems.map((p) => p.code)).toContain("LB4.CROSSVPC_TCP_ONLY");
  });
});

const nginx = spawnSync("nginx", ["-v"]).status === 0 ? "nginx" : undefined;

describe.skipIf(!nginx)("interop with nginx's PROXY protocol parser" + (nginx ? "" : " (skipped: nginx not installed; .ci/run installs it)"), () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill("SIGKILL");
    child = undefined;
  });

  it.each(["proxy_v1", "proxy_v2"] as const)("%s: nginx reports the same client address and port", async (mode) => {
    const nginxPort = await freePort();
    const dir = mkdtempSync(path.join(tmp, "nginx-"));
    writeFileSync(
      path.join(dir, "nginx.conf"),
      `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${nginxPort} proxy_protocol; location / { return 200 "$proxy_protocol_addr:$proxy_protocol_port"; } } }
`,
    );
    child = spawn(nginx!, ["-p", dir, "-c", path.join(dir, "nginx.conf")], { stdio: "ignore" });
    await waitFor(
      () =>
        new Promise<boolean>((r) => {
          const s = net.connect({ port: nginxPort, host: "127.0.0.1" });
          s.on("connect", () => (s.destroy(), r(true)));
          s.on("error", () => r(false));
        }),
      5000,
      "nginx to listen",
    );
    const port = await freePort();
    const h = await startLoadBalancer(lbConfig(port, { client_ip: mode }, [{ id: "ngx", address: "127.0.0.1", port: nginxPort }]));
    handles.push(h);
    const { text, localPort } = await talk(port, "GET / HTTP/1.0\r\nHost: x\r\n\r\n", "127.0.0.9");
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text.split("\r\n\r\n")[1]).toBe(`127.0.0.9:${localPort}`);
  });
});
