/**
 * A stand-in for several hosts (SPEC §11 tests): a hub namespace holding a 3-member etcd
 * cluster and the backends, and N lb namespaces, each joined to the hub by its own veth pair
 * and to the root namespace (the test's admin calls) by another. Every lb namespace holds
 * the same VIP and the same client addresses on its loopback, as hosts behind ECMP would;
 * the test's traffic comes from a client process run inside each lb namespace
 * (cluster-client.mjs), since the test process cannot enter one.
 *
 *   root 10.202.S.(4K+1)/30 ──veth── 10.202.S.(4K+2)/30 lb K  (admin API, advertise)
 *   root 10.202.S.17/30     ──veth── 10.202.S.18/30     hub   (the test reads etcd)
 *   hub  10.203.K.1/30      ──veth── 10.203.K.2/30      lb K  (etcd, backends)
 *   hub lo: etcd 10.202.S.33-35, backends 10.202.S.41-43; lb K lo: VIP 10.250.0.1, clients 10.250.1.1-N
 *
 * No namespace has a default route, so nothing leaves them; the root namespace reaches only
 * 10.202.S.0/24 (a blackhole route catches it should a veth be gone). Names carry the test
 * process's pid (NS_PREFIX, so the global setup removes namespaces of a crashed run;
 * removeStaleClusterRoutes removes that run's blackhole).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { NS_PREFIX, removeNamespaces, sh } from "./netns.js";
import { ETCD_BIN, etcdMemberArgs, healthy, readLog } from "../../helpers/etcd.js";
import { waitFor } from "../../helpers/net.js";

const clientScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "cluster-client.mjs");
const GUARD_METRIC = "4000";

export const VIP = "10.250.0.1";

export interface LbHost {
  ns: string;
  /** Its address toward the root namespace: the admin API listens here (and advertises it). */
  adminAddr: string;
}

export interface ClusterTopology {
  hubNs: string;
  lbs: LbHost[];
  /** Client addresses on every lb namespace's loopback (SOURCE_IP). */
  clientAddrs: string[];
  /** etcd client URLs (in the hub, reachable from the root and every lb namespace). */
  etcdUrls: string[];
  /** etcd peer URLs, in the same order. */
  etcdPeers: string[];
  /** Backend addresses in the hub (one per backend). */
  backendAddrs: string[];
  remove(): void;
}

function subnetOf(pid: number): number {
  return 1 + (pid % 250);
}

function guardOf(s: number): string {
  return `10.202.${s}.0/24`;
}

export function createClusterTopology(lbCount: number, backendCount: number, clientCount: number): ClusterTopology {
  const pid = process.pid;
  const s = subnetOf(pid);
  const prefix = `${NS_PREFIX}${pid}-c`;
  const hubNs = `${prefix}hub`;
  const created: string[] = [];
  let guardAdded = false;
  const topo: ClusterTopology = {
    hubNs,
    lbs: [],
    clientAddrs: Array.from({ length: clientCount }, (_, i) => `10.250.1.${i + 1}`),
    etcdUrls: [0, 1, 2].map((i) => `http://10.202.${s}.${33 + i}:2379`),
    etcdPeers: [0, 1, 2].map((i) => `http://10.202.${s}.${33 + i}:2380`),
    backendAddrs: Array.from({ length: backendCount }, (_, i) => `10.202.${s}.${41 + i}`),
    remove() {
      removeNamespaces(created, guardAdded ? { route: guardOf(s), metric: GUARD_METRIC } : undefined);
      guardAdded = false;
    },
  };
  const addNs = (ns: string) => {
    sh("ip", ["netns", "add", ns]);
    created.push(ns);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
  };
  try {
    sh("ip", ["route", "add", "blackhole", guardOf(s), "metric", GUARD_METRIC]);
    guardAdded = true;
    addNs(hubNs);
    for (const a of [...topo.etcdUrls.map((u) => new URL(u).hostname), ...topo.backendAddrs]) sh("ip", ["-n", hubNs, "addr", "add", `${a}/32`, "dev", "lo"]);
    // root ↔ hub: the test reads etcd directly (leader, what was committed).
    const rootHub = `lc${pid}h`;
    sh("ip", ["link", "add", rootHub, "type", "veth", "peer", "name", `lc${pid}H`, "netns", hubNs]);
    sh("ip", ["addr", "add", `10.202.${s}.17/30`, "dev", rootHub]);
    sh("ip", ["link", "set", rootHub, "up"]);
    sh("ip", ["-n", hubNs, "addr", "add", `10.202.${s}.18/30`, "dev", `lc${pid}H`]);
    sh("ip", ["-n", hubNs, "link", "set", `lc${pid}H`, "up"]);
    sh("ip", ["route", "add", `10.202.${s}.32/27`, "via", `10.202.${s}.18`, "dev", rootHub]);
    for (let k = 1; k <= lbCount; k++) {
      const ns = `${prefix}lb${k}`;
      addNs(ns);
      for (const a of [VIP, ...topo.clientAddrs]) sh("ip", ["-n", ns, "addr", "add", `${a}/32`, "dev", "lo"]);
      // root ↔ lb K: the admin API.
      const rootIf = `lc${pid}r${k}`;
      sh("ip", ["link", "add", rootIf, "type", "veth", "peer", "name", `lc${pid}l${k}`, "netns", ns]);
      sh("ip", ["addr", "add", `10.202.${s}.${4 * k + 1}/30`, "dev", rootIf]);
      sh("ip", ["link", "set", rootIf, "up"]);
      sh("ip", ["-n", ns, "addr", "add", `10.202.${s}.${4 * k + 2}/30`, "dev", `lc${pid}l${k}`]);
      sh("ip", ["-n", ns, "link", "set", `lc${pid}l${k}`, "up"]);
      // hub ↔ lb K: etcd and the backends.
      sh("ip", ["-n", hubNs, "link", "add", `lc${pid}a${k}`, "type", "veth", "peer", "name", `lc${pid}b${k}`, "netns", ns]);
      sh("ip", ["-n", hubNs, "addr", "add", `10.203.${k}.1/30`, "dev", `lc${pid}a${k}`]);
      sh("ip", ["-n", hubNs, "link", "set", `lc${pid}a${k}`, "up"]);
      sh("ip", ["-n", ns, "addr", "add", `10.203.${k}.2/30`, "dev", `lc${pid}b${k}`]);
      sh("ip", ["-n", ns, "link", "set", `lc${pid}b${k}`, "up"]);
      sh("ip", ["-n", ns, "route", "add", `10.202.${s}.32/27`, "via", `10.203.${k}.1`]);
      topo.lbs.push({ ns, adminAddr: `10.202.${s}.${4 * k + 2}` });
    }
  } catch (err) {
    topo.remove();
    throw err;
  }
  return topo;
}

/** In the namespace `ns`: iptables ARGS. */
export function iptables(ns: string, args: string[]): void {
  sh("ip", ["netns", "exec", ns, "iptables", "-w", "5", ...args]);
}

/** The blackhole guards of earlier runs whose test process is gone (their namespaces went with the global setup). */
export function removeStaleClusterRoutes(): string[] {
  let live: Set<number>;
  let routes: string;
  try {
    live = new Set(
      sh("ip", ["netns", "list"])
        .split("\n")
        .map((l) => new RegExp(`^${NS_PREFIX}(\\d+)-c`).exec(l.split(" ")[0] ?? ""))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => subnetOf(Number(m[1]))),
    );
    routes = sh("ip", ["route", "show", "type", "blackhole"]);
  } catch {
    return [];
  }
  live.add(subnetOf(process.pid));
  const removed: string[] = [];
  for (const line of routes.split("\n")) {
    const m = /^blackhole (10\.202\.(\d+)\.0\/24) .*metric 4000/.exec(line.trim());
    if (!m || live.has(Number(m[2]))) continue;
    try {
      sh("ip", ["route", "del", "blackhole", m[1]!, "metric", GUARD_METRIC]);
      removed.push(m[1]!);
    } catch {
      // someone else removed it
    }
  }
  return removed;
}

/** A child process inside a namespace (ip netns exec execs, so its pid is the program's own). */
class NsProc {
  exit: number | string | undefined;
  readonly exited: Promise<void>;
  protected out = "";

  constructor(readonly proc: ChildProcess) {
    proc.stderr?.on("data", (c: Buffer) => this.keep(c.toString()));
    this.exited = new Promise((r) =>
      proc.on("close", (code, sig) => {
        this.exit = code ?? sig ?? "unknown";
        r();
      }),
    );
  }

  protected keep(text: string): void {
    this.out = (this.out + text).slice(-8000);
  }

  async kill9(): Promise<void> {
    if (this.exit === undefined) this.proc.kill("SIGKILL");
    await this.exited;
  }
}

export interface ProbeResult {
  member: string | null;
  error?: string;
  start: number;
  end: number;
}

/** cluster-client.mjs in one lb namespace: connections through that namespace's lb4. */
export class ClientProc extends NsProc {
  private next = 1;
  private readonly waiting = new Map<number, (r: ProbeResult[]) => void>();

  private constructor(proc: ChildProcess) {
    super(proc);
    readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
      if (line === "ready") {
        this.keep("ready\n");
        return;
      }
      try {
        const msg = JSON.parse(line) as { id: number; results: ProbeResult[] };
        this.waiting.get(msg.id)?.(msg.results);
        this.waiting.delete(msg.id);
      } catch {
        this.keep(line + "\n");
      }
    });
    void this.exited.then(() => {
      for (const [id, w] of this.waiting) {
        this.waiting.delete(id);
        w([{ member: null, error: `client exited (${this.exit})`, start: Date.now(), end: Date.now() }]);
      }
    });
  }

  static async start(ns: string): Promise<ClientProc> {
    const proc = spawn("ip", ["netns", "exec", ns, process.execPath, clientScript], { stdio: ["pipe", "pipe", "pipe"] });
    const c = new ClientProc(proc);
    await waitFor(() => c.out.includes("ready") || c.exit !== undefined, 15_000, `the client in ${ns} to start`);
    if (c.exit !== undefined) throw new Error(`the client in ${ns} exited (${c.exit}): ${c.out}`);
    return c;
  }

  /** `count` connections one after the other to host:port, from `bind` when given. */
  probe(host: string, port: number, count: number, bind?: string, timeoutMs = 2000): Promise<ProbeResult[]> {
    const id = this.next++;
    return new Promise((resolve) => {
      if (this.exit !== undefined) return resolve([{ member: null, error: `client exited (${this.exit})`, start: Date.now(), end: Date.now() }]);
      this.waiting.set(id, resolve);
      this.proc.stdin!.write(JSON.stringify({ id, host, port, count, timeoutMs, ...(bind ? { bind } : {}) }) + "\n");
    });
  }

  async stop(): Promise<void> {
    this.proc.stdin?.end();
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

export interface HubEtcdMember {
  name: string;
  clientUrl: string;
  running(): boolean;
  start(): Promise<void>;
  kill9(): Promise<void>;
  log(): string;
}

export interface HubEtcd {
  members: HubEtcdMember[];
  /** Start every member that is not running (together: a member waits for a quorum to be healthy). */
  startAll(): Promise<void>;
  stop(): Promise<void>;
}

/** A 3-member etcd cluster in the hub namespace, data on tmpfs when there is one. */
export async function startHubEtcd(topo: ClusterTopology): Promise<HubEtcd> {
  const dir = mkdtempSync(path.join(existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "lb4-rel-etcd-"));
  const initialCluster = topo.etcdPeers.map((p, i) => `m${i}=${p}`).join(",");
  const members: HubEtcdMember[] = topo.etcdUrls.map((clientUrl, i) => {
    const name = `m${i}`;
    const peerUrl = topo.etcdPeers[i]!;
    const logFile = path.join(dir, `${name}.log`);
    let proc: NsProc | undefined;
    const m: HubEtcdMember = {
      name,
      clientUrl,
      running: () => proc !== undefined && proc.exit === undefined,
      async start() {
        if (m.running()) return;
        const fd = openSync(logFile, "a");
        const args = ["netns", "exec", topo.hubNs, ETCD_BIN, ...etcdMemberArgs({ name, dir, clientUrl, peerUrl, initialCluster })];
        const p = new NsProc(spawn("ip", args, { stdio: ["ignore", fd, fd] }));
        closeSync(fd);
        proc = p;
        await waitFor(
          async () => {
            if (p.exit !== undefined) throw new Error(`etcd ${name} exited (${p.exit}):\n${m.log().slice(-2000)}`);
            return healthy(clientUrl);
          },
          20_000,
          `etcd ${name} healthy at ${clientUrl}`,
        );
      },
      async kill9() {
        await proc?.kill9();
      },
      log: () => readLog(logFile),
    };
    return m;
  });
  const etcd: HubEtcd = {
    members,
    startAll: async () => {
      await Promise.all(members.map((m) => m.start()));
    },
    async stop() {
      await Promise.all(members.map((m) => m.kill9()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await etcd.startAll();
  } catch (err) {
    await etcd.stop();
    throw err;
  }
  return etcd;
}
