/**
 * Source-IP session persistence table (SPEC §4), pure: time comes in as `now`.
 * A Map kept in last-use order (delete + set on every touch), so the oldest entries are
 * always first: expiry walks from the front and stops at the first live entry, and the
 * cap evicts from the front — no scan of the whole table per connection.
 */

export interface StickyEntry<M> {
  member: M;
  lastSeen: number;
}

export class PersistenceTable<M> {
  private readonly entries = new Map<string, StickyEntry<M>>();

  constructor(
    public timeoutMs: number,
    public readonly cap = 100_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The member this client is stuck to, if the entry is still live. */
  get(ip: string, now: number): M | undefined {
    const e = this.entries.get(ip);
    if (!e) return undefined;
    if (now - e.lastSeen >= this.timeoutMs) {
      this.entries.delete(ip);
      return undefined;
    }
    return e.member;
  }

  /** Stick (or re-stick) a client to a member and mark it used now. */
  set(ip: string, member: M, now: number): void {
    const e = this.entries.get(ip);
    if (e) this.entries.delete(ip);
    this.entries.set(ip, e ? ((e.member = member), (e.lastSeen = now), e) : { member, lastSeen: now });
    if (this.entries.size > this.cap) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Drop expired entries from the front; cost is the number dropped, plus one. */
  expire(now: number): number {
    let n = 0;
    for (const [ip, e] of this.entries) {
      if (now - e.lastSeen < this.timeoutMs) break;
      this.entries.delete(ip);
      n++;
    }
    return n;
  }

  /** Forget every client stuck to `member` (it was removed). */
  forgetMember(member: M): void {
    for (const [ip, e] of this.entries) if (e.member === member) this.entries.delete(ip);
  }

  clear(): void {
    this.entries.clear();
  }
}
