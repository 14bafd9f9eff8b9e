/**
 * The open connections of a listener, as an intrusive doubly linked list: add and remove
 * are a few pointer writes, with no hashing and no table to grow or rehash. A Set here
 * cost ~2% of new connections/s (bench/RESULTS.md). Only the engine tick and shutdown
 * walk it.
 */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
}

export class SessionList<T extends Linked<T>> {
  private head: T | undefined = undefined;
  size = 0;

  add(x: T): void {
    x.prev = undefined;
    x.next = this.head;
    if (this.head) this.head.prev = x;
    this.head = x;
    this.size++;
  }

  /** Remove x; a no-op when x is not in the list. */
  delete(x: T): void {
    if (x.prev) x.prev.next = x.next;
    else if (this.head === x) this.head = x.next;
    else return;
    if (x.next) x.next.prev = x.prev;
    x.prev = undefined;
    x.next = undefined;
    this.size--;
  }

  /** Visit every entry; `fn` may remove the entry it is given. */
  forEach(fn: (x: T) => void): void {
    for (let x = this.head; x; ) {
      const next = x.next;
      fn(x);
      x = next;
    }
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let x = this.head; x; ) {
      const next = x.next;
      yield x;
      x = next;
    }
  }
}
