/**
 * A real etcd for tests: one member or a 3-member cluster on loopback, free ports, data in a
 * temp dir (on tmpfs when there is one, so fsync costs little), each member a child process
 * the test can kill -9 and start again. `etcdSkip` says why the tests cannot run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, waitFor } from "./net.js";

export const ETCD_BIN = "/usr/bin/etcd";
export const etcdSkip: string | undefined = existsSync(ETCD_BIN) ? undefined : `${ETCD_BIN} not installed (apt-get install etcd-server)`;

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly proc: ChildProcess | undefined;
  /** Start (again) on the same ports and data; resolves when the member answers /health. */
  start(): Promise<void>;
  /** Send `signal` and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** The member's log so far (for failure messages). */
  log(): string;
}

export interface EtcdCluster {
  readonly dir: string;
  readonly members: EtcdMember[];
  readonly endpoints: string[];
  /** Index of the member the running members agree is leader. */
  leader(): Promise<number>;
  stop(): Promise<void>;
}

const running = new Set<EtcdCluster>();

/** Members ready within this bound, or the start fails with their logs. */
const START_TIMEOUT_MS = 15_000;

/** Whether the etcd member at `url` answers /health with health "true" (within 1 s). */
export async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === "true";
  } catch {
    return false;
  }
}

/** Start `size` members (1 or 3) and wait until every one is healthy (has a leader). */
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  const base = existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const dir = await mkdtemp(path.join(base, "lb4-etcd-"));
  const specs: { name: string; client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(",");

  const members: EtcdMember[] = specs.map((s) => {
    const clientUrl = `http://127.0.0.1:${s.client}`;
    const peerUrl = `http://127.0.0.1:${s.peer}`;
    const logFile = path.join(dir, `${s.name}.log`);
    let proc: ChildProcess | undefined;
    const m: EtcdMember = {
      name: s.name,
      clientUrl,
      peerUrl,
      get proc() {
        return proc;
      },
      async start() {
        if (proc && proc.exitCode === null && proc.signalCode === null) throw new Error(`${s.name} is already running`);
        const fd = openSync(logFile, "a");
        proc = spawn(
          ETCD_BIN,
          etcdMemberArgs({ name: s.name, dir, clientUrl, peerUrl, initialCluster }),
          { stdio: ["ignore", fd, fd] },
        );
        closeSync(fd);
        const p = proc;
        await waitFor(
          async () => {
            if (p.exitCode !== null) throw new Error(`etcd ${s.name} exited with ${p.exitCode}:\n${m.log().slice(-2000)}`);
            return healthy(clientUrl);
          },
          START_TIMEOUT_MS,
          `etcd ${s.name} healthy at ${clientUrl}`,
        );
      },
      async kill(signal = "SIGKILL") {
        const p = proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        await new Promise<void>((resolve) => {
          p.once("exit", () => resolve());
          p.kill(signal);
        });
      },
      log: () => readLog(logFile),
    };
    return m;
  });

  const cluster: EtcdCluster = {
    dir,
    members,
    endpoints: members.map((m) => m.clientUrl),
    async leader() {
      let found = -1;
      await waitFor(
        async () => {
          const ids: string[] = [];
          const leaders = new Set<string>();
          for (const m of members) {
            if (!m.proc || m.proc.exitCode !== null || m.proc.signalCode !== null) {
              ids.push("");
              continue;
            }
            try {
              const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: "POST", body: "{}", signal: AbortSignal.timeout(1000) });
              const st = (await res.json()) as { header?: { member_id?: string }; leader?: string };
              ids.push(st.header?.member_id ?? "");
              if (st.leader && st.leader !== "0") leaders.add(st.leader);
            } catch {
              ids.push("");
            }
          }
          if (leaders.size !== 1) return false;
          found = ids.indexOf([...leaders][0]!);
          return found >= 0;
        },
        START_TIMEOUT_MS,
        "the etcd members to agree on a leader",
      );
      return found;
    },
    async stop() {
      running.delete(cluster);
      await Promise.all(members.map((m) => m.kill("SIGKILL")));
      await rm(dir, { recursive: true, force: true });
    },
  };
  running.add(cluster);
  try {
    // A new cluster needs every member up before any of them has a leader.
    await Promise.all(members.map((m) => m.start()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Stop every cluster still running (for afterAll). */
export async function stopAllEtcd(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

/** A log file's text so far; "" before it exists. */
export function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** The command line of one member of a new etcd cluster whose data lives under `dir`. */
export function etcdMemberArgs(m: { name: string; dir: string; clientUrl: string; peerUrl: string; initialCluster: string }): string[] {
  // prettier-ignore
  return [
    "--name", m.name,
    "--data-dir", path.join(m.dir, m.name),
    "--listen-client-urls", m.clientUrl,
    "--advertise-client-urls", m.clientUrl,
    "--listen-peer-urls", m.peerUrl,
    "--initial-advertise-peer-urls", m.peerUrl,
    "--initial-cluster", m.initialCluster,
    "--initial-cluster-state", "new",
    "--initial-cluster-token", path.basename(m.dir),
    "--logger", "zap",
    "--log-level", "warn",
  ];
}
