/**
 * SOURCE_IP: Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016, §3.4 "Populate the lookup table"), table
 * size 65537 as Envoy's default. The table is built off the hot path in update() and
 * swapped whole; pick is one string hash and one array read. Members are ordered by key
 * and hashed with fixed seeds, so every process with the same members builds the same
 * table and sends a client IP to the same member. A key is memberKey() of the member's
 * canonical address (the config schema canonicalises it), so configs that spell one
 * address differently still build one table.
 */
import { murmur3 } from "./hash.js";
import { isAvoided } from "./round-robin.js";
import type { Algorithm, ClientInfo, Schedulable, Scheduler } from "./types.js";
import { isEligible } from "./weights.js";

/** Lookup table size M: prime, so every skip in [1, M-1] walks all M slots. */
export const MAGLEV_TABLE_SIZE = 65537;

// Fixed forever: changing any of them moves every client to another member.
const OFFSET_SEED = 0x4d41474c; // h1 of the paper
const SKIP_SEED = 0x45563136; // h2 of the paper
const CLIENT_SEED = 0;

export type MaglevTable = Uint16Array | Uint32Array;

/**
 * The paper's population loop (§3.4, Pseudocode 1): members take turns claiming the next
 * free slot of their permutation (offset + j * skip) mod size, until every slot is taken.
 * Returns entry[slot] = member index. `size` must be prime and ≥ 1.
 */
export function populateMaglevTable(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  size: number,
): MaglevTable {
  const n = offsets.length;
  // Uint16Array halves the table's cache footprint; 0xFFFF marks a free slot.
  const empty = n < 0xffff ? 0xffff : 0xffffffff;
  const entry: MaglevTable = n < 0xffff ? new Uint16Array(size) : new Uint32Array(size);
  if (n === 0) return entry;
  entry.fill(empty);
  // next[i] of the paper, kept as the slot itself: pos += skip (mod size) avoids j * skip.
  const pos = new Float64Array(n);
  for (let i = 0; i < n; i++) pos[i] = offsets[i]!;
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const skip = skips[i]!;
      let c = pos[i]!;
      while (entry[c] !== empty) {
        c += skip;
        if (c >= size) c -= size;
      }
      entry[c] = i;
      c += skip;
      if (c >= size) c -= size;
      pos[i] = c;
      if (++filled === size) return entry;
    }
  }
}

/**
 * The lookup table for `keys`, in the order given (index i = keys[i]): offset = h1(key)
 * mod M, skip = h2(key) mod (M − 1) + 1, with h1/h2 MurmurHash3 under two fixed seeds.
 */
export function buildMaglevTable(keys: readonly string[], size = MAGLEV_TABLE_SIZE): MaglevTable {
  const n = keys.length;
  const offsets = new Float64Array(n);
  const skips = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    offsets[i] = murmur3(key, OFFSET_SEED) % size;
    skips[i] = size === 1 ? 1 : (murmur3(key, SKIP_SEED) % (size - 1)) + 1;
  }
  return populateMaglevTable(offsets, skips, size);
}

/** Code-unit order, not localeCompare: the same in every process whatever its locale. */
function byKey(a: Schedulable, b: Schedulable): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export class MaglevScheduler<M extends Schedulable = Schedulable> implements Scheduler<M> {
  readonly algorithm: Algorithm = "SOURCE_IP";
  /** Sorted by key; table entries index into it. */
  private members: readonly M[] = [];
  private table: MaglevTable = new Uint16Array(0);

  update(members: readonly M[]): void {
    // Weight counts only as zero / non-zero (SPEC §4). Array#sort is stable (ES2019).
    const sorted = members.filter(isEligible).sort(byKey);
    if (!sameKeys(sorted, this.members)) {
      this.table = buildMaglevTable(sorted.map((m) => m.key));
    }
    // Same keys → same table; only the member objects (and weights) may have changed.
    this.members = sorted;
  }

  pick(client: ClientInfo, avoid?: readonly M[]): M | undefined {
    const members = this.members;
    const n = members.length;
    if (n === 0) return undefined;
    const table = this.table;
    let slot = murmur3(client.ip, CLIENT_SEED) % MAGLEV_TABLE_SIZE;
    if (avoid === undefined || avoid.length === 0) return members[table[slot]!];
    // Keys are unique, so fewer avoided entries than members leaves someone to find;
    // otherwise check first, rather than walk all 65537 slots for nothing.
    if (avoid.length >= n && !hasUnavoided(members, avoid)) return undefined;
    // Every member owns at least one slot (round one of population), so this ends.
    for (let probes = 0; probes < MAGLEV_TABLE_SIZE; probes++) {
      const m = members[table[slot]!]!;
      if (!isAvoided(m, avoid)) return m;
      if (++slot === MAGLEV_TABLE_SIZE) slot = 0;
    }
    return undefined;
  }
}

function sameKeys(a: readonly Schedulable[], b: readonly Schedulable[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.key !== b[i]!.key) return false;
  return true;
}

function hasUnavoided(members: readonly Schedulable[], avoid: readonly Schedulable[]): boolean {
  for (let i = 0; i < members.length; i++) if (!isAvoided(members[i]!, avoid)) return true;
  return false;
}

export function createMaglev<M extends Schedulable>(): Scheduler<M> {
  return new MaglevScheduler<M>();
}
