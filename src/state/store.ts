/**
 * Runtime state under state_dir (SPEC §6 rule 6, §8): member changes acknowledged at
 * runtime and the load balancers whose cross-VPC switch was ever on. Written atomically
 * (temp file, fsync, rename, fsync dir), so a crash — kill -9 included — leaves either the
 * old or the new file, never a torn one.
 */
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { MemberConfig } from "../config/schema.js";
import { Lb4Error } from "../errors.js";

export const STATE_FILE = "state.json";

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

export function emptyState(): RuntimeState {
  return { version: 1, cross_vpc_enabled: [], members: {} };
}

export class StateStore {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = path.join(dir, STATE_FILE);
  }

  async load(): Promise<RuntimeState> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
      throw new Lb4Error("LB4.STATE_UNREADABLE", `cannot read ${this.file}: ${(err as Error).message}; fix its permissions`);
    }
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

  async save(state: RuntimeState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(state, null, 2) + "\n");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const dh = await open(this.dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  async reset(): Promise<void> {
    await rm(this.file, { force: true });
  }
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
