/**
 * Bounded request load through lb4: `concurrency` loops, each opening a connection, sending
 * one line and waiting for the backend's answer ("NAME line"), then closing. Bounded in
 * requests and in time; a request that gets no answer within `timeoutMs` is reset (RST) and
 * counted as an error. Outcomes carry the client's local port, so an error can be matched
 * to lb4's access-log line (which names the member).
 */
import net from "node:net";

export interface Outcome {
  seq: number;
  start: number;
  end: number;
  /** The client's local port, 0 when the connect to lb4 itself failed. */
  port: number;
  ok: boolean;
  /** Who answered (ok), or who an error is attributed to (filled in by the test). */
  member?: string;
  error?: string;
}

export interface LoadOptions {
  host: string;
  port: number;
  concurrency: number;
  maxRequests: number;
  maxMs: number;
  timeoutMs: number;
  /** Keep every outcome (fault tests) or only errors and counts (soak). */
  keepAll?: boolean;
}

/** One request: connect, send `r<seq>\n`, read one line, end. */
export function oneRequest(host: string, port: number, seq: number, timeoutMs: number): Promise<Outcome> {
  const start = Date.now();
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let localPort = 0;
    let buf = "";
    let done = false;
    const finish = (ok: boolean, member?: string, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) s.end();
      else s.resetAndDestroy();
      const o: Outcome = { seq, start, end: Date.now(), port: localPort, ok };
      if (member !== undefined) o.member = member;
      if (error !== undefined) o.error = error;
      resolve(o);
    };
    const timer = setTimeout(() => finish(false, undefined, "timeout"), timeoutMs);
    s.setNoDelay(true);
    s.on("connect", () => {
      localPort = s.localPort ?? 0;
      s.write(`r${seq}\n`);
    });
    s.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      const i = buf.indexOf("\n");
      if (i < 0) return;
      const [name, echoed] = buf.slice(0, i).split(" ");
      if (echoed === `r${seq}` && name) finish(true, name);
      else finish(false, undefined, `bad answer ${JSON.stringify(buf.slice(0, 80))}`);
    });
    s.on("error", (err: NodeJS.ErrnoException) => finish(false, undefined, err.code ?? err.message));
    s.on("close", () => finish(false, undefined, "closed before the answer"));
  });
}

export class Load {
  readonly outcomes: Outcome[] = [];
  readonly errors: Outcome[] = [];
  ok = 0;
  count = 0;
  /** Successful answers per member. */
  readonly perMember = new Map<string, number>();
  private stopped = false;
  private seq = 0;
  private loops: Promise<void>[] = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly opts: LoadOptions) {}

  start(): this {
    const deadline = Date.now() + this.opts.maxMs;
    for (let i = 0; i < this.opts.concurrency; i++) {
      this.loops.push(
        (async () => {
          while (!this.stopped && this.seq < this.opts.maxRequests && Date.now() < deadline) {
            const o = await oneRequest(this.opts.host, this.opts.port, this.seq++, this.opts.timeoutMs);
            this.count++;
            if (o.ok) {
              this.ok++;
              this.perMember.set(o.member!, (this.perMember.get(o.member!) ?? 0) + 1);
            } else this.errors.push(o);
            if (this.opts.keepAll) this.outcomes.push(o);
            for (const w of this.waiters.splice(0)) w();
          }
        })(),
      );
    }
    void Promise.all(this.loops).then(() => {
      this.finished = true;
      for (const w of this.waiters.splice(0)) w();
    });
    return this;
  }

  /** Resolve when `cond` holds after some request finished; reject after `timeoutMs` or if the load ended first. */
  until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) return resolve();
        if (Date.now() > deadline) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.count} requests, ${this.errors.length} errors)`));
        if (this.finished) return reject(new Error(`the load ended before ${what} (${this.count} requests, ${this.errors.length} errors)`));
        const t = setTimeout(check, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          check();
        });
      };
      check();
    });
  }

  private finished = false;

  /** Stop issuing requests and wait for those in flight (each bounded by timeoutMs). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.finished = true;
  }

  /** Resolves when the load has ended by its own bounds. */
  async done(): Promise<void> {
    await Promise.all(this.loops);
    this.finished = true;
  }
}
