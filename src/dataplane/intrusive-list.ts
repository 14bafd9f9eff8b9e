/**
 * The one intrusive doubly linked list of the data plane: a listener's open TCP sessions and
 * a UDP listener's flows in activity order. Add, remove and move are a few pointer writes,
 * with no hashing and no table to grow or rehash (a Set here cost ~2% of new connections/s,
 * bench/RESULTS.md). The entries carry the links.
 */
export interface Linked<T> {
  prev: T | null | undefined;
  next: T | null | undefined;
}

export class IntrusiveList<T extends Linked<T>> {
  private head: T | undefined = undefined;
  private tail: T | undefined = undefined;
  size = 0;

  /** Add at the head (order does not matter to the caller). */
  add(x: T): void {
    x.prev = undefined;
    x.next = this.head;
    if (this.head) this.head.prev = x;
    else this.tail = x;
    this.head = x;
    this.size++;
  }

  /** Add at the tail (the caller keeps an order: oldest at the head). */
  push(x: T): void {
    x.next = undefined;
    x.prev = this.tail;
    if (this.tail) this.tail.next = x;
    else this.head = x;
    this.tail = x;
    this.size++;
  }

  /** Remove x; a no-op when x is not in the list. */
  delete(x: T): void {
    if (x.prev) x.prev.next = x.next;
    else if (this.head === x) this.head = x.next ?? undefined;
    else return;
    if (x.next) x.next.prev = x.prev;
    else this.tail = x.prev ?? undefined;
    x.prev = undefined;
    x.next = undefined;
    this.size--;
  }

  /** Move x (in the list) to the tail. */
  moveToTail(x: T): void {
    if (this.tail === x) return;
    this.delete(x);
    this.push(x);
  }

  /** The entry at the head, or undefined when empty. */
  first(): T | undefined {
    return this.head;
  }

  /** Visit every entry from the head; `fn` may remove the entry it is given. */
  forEach(fn: (x: T) => void): void {
    for (let x = this.head; x; ) {
      const next = x.next ?? undefined;
      fn(x);
      x = next;
    }
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let x = this.head; x; ) {
      const next = x.next ?? undefined;
      yield x;
      x = next;
    }
  }
}
