/**
 * Runtime state under state_dir (SPEC §4, §6 rule 6, §8):
 * - `state.json`: member changes acknowledged at runtime and the load balancers whose
 *   cross-VPC switch was ever on. Durable before an acknowledgement (fsync file and dir).
 * - `health.json`: each monitored member's last known health, so a restart is not a new
 *   member. Best effort: written after transitions, coalesced, without fsync.
 * Both are written atomically (temp file, rename), so a crash — kill -9 included — leaves
 * either the old or the new file, never a torn one. Temp files a crash or a failed write
 * left behind are removed at start and after the failure.
 */
import { mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import path from "node:path";
import type { Config, MemberConfig } from "../config/schema.js";
import { Lb4Error } from "../errors.js";

export const STATE_FILE = "state.json";
export const HEALTH_FILE = "health.json";
/** What a cluster instance last applied from etcd (cluster/etcd-membership.ts). */
export const CLUSTER_SNAPSHOT_FILE = "cluster.json";

/** Member changes of one pool, overlaid on the base config's members. */
export interface PoolOverlay {
  /** Added or changed members, by id (full member objects). */
  upsert: Record<string, MemberConfig>;
  /** Ids removed at runtime. */
  deleted: string[];
}

export interface RuntimeState {
  version: 1;
  cross_vpc_enabled: string[];
  members: Record<string, PoolOverlay>;
}

/** A member's last known health, keyed by `pool/member`; `endpoint` guards against a changed address. */
export interface SavedHealth {
  endpoint: string;
  state: "ONLINE" | "OFFLINE";
}

export interface HealthSnapshot {
  version: 1;
  members: Record<string, SavedHealth>;
}

export function emptyState(): RuntimeState {
  return { version: 1, cross_vpc_enabled: [], members: {} };
}

/** `name.<pid>.tmp`: one writer per process, so concurrent writers never share a temp file. */
function tempName(file: string): string {
  return `${file}.${process.pid}.tmp`;
}

/** Write `text` to `file` atomically; `durable` adds fsync of the file and its folder. Removes its temp file on failure. */
export async function writeAtomic(file: string, text: string, durable: boolean): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = tempName(file);
  try {
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(text);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (!durable) return;
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Remove `<file>.<pid>.tmp` files that crashed writers left (any pid but ours); returns how many. */
export async function removeStaleTemps(dir: string, files: readonly string[]): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const mine = new Set(files.map((f) => path.basename(tempName(path.join(dir, f)))));
  const stale = names.filter((n) => !mine.has(n) && files.some((f) => n.startsWith(`${f}.`) && /\.\d+\.tmp$/.test(n)));
  await Promise.all(stale.map((n) => rm(path.join(dir, n), { force: true })));
  return stale.length;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Lb4Error("LB4.STATE_UNREADABLE", `cannot read ${file}: ${(err as Error).message}; fix its permissions`);
  }
}

export class StateStore {
  readonly file: string;
  readonly healthFile: string;
  constructor(readonly dir: string) {
    this.file = path.join(dir, STATE_FILE);
    this.healthFile = path.join(dir, HEALTH_FILE);
  }

  /** Start-up housekeeping: temp files of crashed or failed writes. */
  removeStaleTemps(): Promise<number> {
    return removeStaleTemps(this.dir, [STATE_FILE, HEALTH_FILE, CLUSTER_SNAPSHOT_FILE]);
  }

  async load(): Promise<RuntimeState> {
    const text = await readText(this.file);
    if (text === undefined) return emptyState();
    try {
      const s = JSON.parse(text) as RuntimeState;
      if (s.version !== 1 || !Array.isArray(s.cross_vpc_enabled) || typeof s.members !== "object" || s.members === null) throw new Error("unexpected shape");
      return s;
    } catch (err) {
      throw new Lb4Error(
        "LB4.STATE_CORRUPT",
        `${this.file} is not a valid lb4 state file (${(err as Error).message}); it is only written by lb4 — move it away to start from the config file alone`,
      );
    }
  }

  /** Durable write; a failure (full disk, permissions) is LB4.STATE_WRITE_FAILED and leaves the old file. */
  async save(state: RuntimeState): Promise<void> {
    try {
      await writeAtomic(this.file, JSON.stringify(state, null, 2) + "\n", true);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const why = code === "ENOSPC" || code === "EDQUOT" ? "the disk is full: free space there" : "check that lb4 may write there";
      throw new Lb4Error("LB4.STATE_WRITE_FAILED", `cannot write ${this.file} (${code}); ${why}. Nothing was changed`, { cause: err });
    }
  }

  /** Last known health; a missing or unreadable file means nothing is known (members start unchecked). */
  async loadHealth(): Promise<HealthSnapshot> {
    const empty: HealthSnapshot = { version: 1, members: {} };
    let text: string | undefined;
    try {
      text = await readText(this.healthFile);
    } catch {
      return empty;
    }
    if (text === undefined) return empty;
    try {
      const h = JSON.parse(text) as HealthSnapshot;
      if (h.version !== 1 || typeof h.members !== "object" || h.members === null) return empty;
      return h;
    } catch {
      return empty;
    }
  }

  saveHealth(h: HealthSnapshot): Promise<void> {
    return writeAtomic(this.healthFile, JSON.stringify(h) + "\n", false);
  }

  async reset(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/** How many member changes (added or changed, removed) the overlay holds, all pools together. */
export function memberChangeCount(state: RuntimeState): number {
  return Object.values(state.members).reduce((n, o) => n + Object.keys(o.upsert).length + o.deleted.length, 0);
}

/** Base members of a pool with the runtime overlay applied (pure). */
export function overlayMembers(base: readonly MemberConfig[], overlay: PoolOverlay | undefined): MemberConfig[] {
  if (!overlay) return [...base];
  const deleted = new Set(overlay.deleted);
  const out: MemberConfig[] = [];
  const seen = new Set<string>();
  for (const m of base) {
    if (deleted.has(m.id)) continue;
    const u = overlay.upsert[m.id];
    out.push(u ?? m);
    seen.add(m.id);
  }
  for (const [id, m] of Object.entries(overlay.upsert)) if (!seen.has(id) && !deleted.has(id)) out.push(m);
  return out;
}

/** The base config with the runtime member overlay applied (pools that no longer exist are skipped). Pure. */
export function applyOverlay(base: Config, state: RuntimeState): Config {
  const out = structuredClone(base);
  for (const lb of out.loadbalancers) for (const p of lb.pools) p.members = overlayMembers(p.members, state.members[p.id]);
  return out;
}

/** Whether a member of the running config came from the runtime overlay (added or changed through the API). */
export function fromOverlay(state: RuntimeState, poolId: string, memberId: string): boolean {
  return state.members[poolId]?.upsert[memberId] !== undefined;
}
