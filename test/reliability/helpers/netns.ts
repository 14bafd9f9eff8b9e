/**
 * Network namespaces the test creates and removes. lb4 runs in its own namespace, each
 * backend in another, joined by veth pairs with /30 addresses that exist only inside these
 * namespaces:
 *
 *   root ns  10.200.S.1/30 ──veth── 10.200.S.2/30  lb ns  10.201.K.1/30 ──veth── 10.201.K.2/30  backend K ns
 *
 * The lb and backend namespaces have no default route, so nothing lb4 or a backend sends can
 * leave them; the root namespace reaches only 10.200.S.0/30 (the test's client and admin
 * calls), and a blackhole route catches that prefix should the veth be gone.
 * Names carry the test process's pid, so stale ones from a crashed run are recognisable
 * (the global setup removes those whose pid is gone).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { backendScript } from "./env.js";
import { waitFor } from "../../helpers/net.js";

export const NS_PREFIX = "lb4rel-";

export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 15_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Delete the namespaces in `created` (newest first) and empty it; then the blackhole guard route, if added. */
export function removeNamespaces(created: string[], guard: { route: string; metric: string } | undefined): void {
  for (const ns of created.reverse()) {
    try {
      sh("ip", ["netns", "del", ns]);
    } catch {
      // already gone
    }
  }
  created.length = 0;
  if (guard) {
    try {
      sh("ip", ["route", "del", "blackhole", guard.route, "metric", guard.metric]);
    } catch {
      // already gone
    }
  }
}

export interface BackendNs {
  ns: string;
  /** The backend's address (inside its namespace). */
  addr: string;
}

export interface Topology {
  lbNs: string;
  /** lb4's address as seen from the root namespace (listener and admin bind here). */
  vip: string;
  backends: BackendNs[];
  /** In the namespace `ns`: iptables ARGS. */
  iptables(ns: string, args: string[]): void;
  remove(): void;
}

export function createTopology(n: number): Topology {
  const pid = process.pid;
  const s = 1 + (pid % 250); // removeStaleNamespaces derives the same number
  const prefix = `${NS_PREFIX}${pid}-`;
  const lbNs = `${prefix}lb`;
  const rootIf = `lr${pid}r`;
  const created: string[] = [];
  const guard = `10.200.${s}.0/30`;
  let guardAdded = false;
  const topo: Topology = {
    lbNs,
    vip: `10.200.${s}.2`,
    backends: [],
    iptables(ns, args) {
      sh("ip", ["netns", "exec", ns, "iptables", "-w", "5", ...args]);
    },
    remove() {
      removeNamespaces(created, guardAdded ? { route: guard, metric: "4000" } : undefined);
      guardAdded = false;
    },
  };
  try {
    sh("ip", ["netns", "add", lbNs]);
    created.push(lbNs);
    sh("ip", ["-n", lbNs, "link", "set", "lo", "up"]);
    sh("ip", ["link", "add", rootIf, "type", "veth", "peer", "name", `lr${pid}l`, "netns", lbNs]);
    sh("ip", ["addr", "add", `10.200.${s}.1/30`, "dev", rootIf]);
    sh("ip", ["link", "set", rootIf, "up"]);
    sh("ip", ["-n", lbNs, "addr", "add", `10.200.${s}.2/30`, "dev", `lr${pid}l`]);
    sh("ip", ["-n", lbNs, "link", "set", `lr${pid}l`, "up"]);
    sh("ip", ["route", "add", "blackhole", guard, "metric", "4000"]);
    guardAdded = true;
    for (let k = 1; k <= n; k++) {
      const ns = `${prefix}b${k}`;
      sh("ip", ["netns", "add", ns]);
      created.push(ns);
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", lbNs, "link", "add", `lr${pid}a${k}`, "type", "veth", "peer", "name", `lr${pid}b${k}`, "netns", ns]);
      sh("ip", ["-n", lbNs, "addr", "add", `10.201.${k}.1/30`, "dev", `lr${pid}a${k}`]);
      sh("ip", ["-n", lbNs, "link", "set", `lr${pid}a${k}`, "up"]);
      sh("ip", ["-n", ns, "addr", "add", `10.201.${k}.2/30`, "dev", `lr${pid}b${k}`]);
      sh("ip", ["-n", ns, "link", "set", `lr${pid}b${k}`, "up"]);
      topo.backends.push({ ns, addr: `10.201.${k}.2` });
    }
  } catch (err) {
    topo.remove();
    throw err;
  }
  return topo;
}

/** Remove namespaces of earlier runs whose test process is gone (a crash skipped cleanup). */
export function removeStaleNamespaces(): string[] {
  let list: string;
  try {
    list = sh("ip", ["netns", "list"]);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    try {
      sh("ip", ["netns", "del", name]);
      removed.push(name);
    } catch {
      // someone else removed it
    }
    try {
      sh("ip", ["route", "del", "blackhole", `10.200.${1 + (Number(m[1]) % 250)}.0/30`, "metric", "4000"]);
    } catch {
      // removed with the first namespace of that run, or never added
    }
  }
  return removed;
}

const backends = new Set<BackendProc>();

/** fixtures/backend.mjs as its own process inside a namespace. */
export class BackendProc {
  exit: number | string | undefined;
  readonly exited: Promise<void>;
  private out = "";

  private constructor(
    readonly proc: ChildProcess,
    readonly name: string,
  ) {
    proc.stdout!.on("data", (c: Buffer) => (this.out += c));
    proc.stderr!.on("data", (c: Buffer) => (this.out += c));
    this.exited = new Promise((r) =>
      proc.on("close", (code, sig) => {
        this.exit = code ?? sig ?? "unknown";
        backends.delete(this);
        r();
      }),
    );
  }

  static async start(ns: string, host: string, port: number, name: string): Promise<BackendProc> {
    const proc = spawn("ip", ["netns", "exec", ns, process.execPath, backendScript, host, String(port), name], { stdio: ["ignore", "pipe", "pipe"] });
    const b = new BackendProc(proc, name);
    backends.add(b);
    await waitFor(() => b.out.includes("ready") || b.exit !== undefined, 15_000, `backend ${name} to listen`);
    if (b.exit !== undefined) throw new Error(`backend ${name} exited (${b.exit}): ${b.out}`);
    return b;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit === undefined) this.proc.kill(sig);
  }

  async kill9(): Promise<void> {
    this.signal("SIGCONT");
    this.signal("SIGKILL");
    await this.exited;
  }
}

export async function killAllBackends(): Promise<void> {
  await Promise.all([...backends].map((b) => b.kill9()));
}
