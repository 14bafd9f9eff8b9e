/**
 * The admin API's live side: the dashboard's state, its files, and the event stream
 * (`GET /v3/elb/events`, Server-Sent Events) that the dashboard and `lb4 status --watch` read.
 *
 * The stream carries the control plane's events (health transitions, member changes, reloads;
 * `id:` = their seq, so a reader resumes with Last-Event-ID or `?since=`), a `counters` event
 * every COUNTERS_MS, and a heartbeat comment. One timer serves every open stream and runs only
 * while one is open; streams are few (MAX_STREAMS), and one that cannot keep up is cut instead
 * of buffering without bound. Everything is stopped by close().
 */
import type { Engine } from "../engine.js";
import type { NumberedEvent } from "../control/events.js";
import { loadDashboardAssets, type DashboardAssets } from "./dashboard/assets.js";
import { countersView, dashboardView, engineFacts, trafficReading, type DashboardFacts, type DashboardState, type InstanceInfo } from "./dashboard/state.js";
import { HISTORY_INTERVAL_MS, HISTORY_SAMPLES, TrafficHistory, startSampler, type Sampler, type TrafficReading } from "./history.js";
import { engineRuntime } from "./routes.js";
import { formatComment, formatEvent, formatRetry } from "./sse.js";

export const COUNTERS_MS = 1000;
export const HEARTBEAT_MS = 15_000;
export const MAX_STREAMS = 16;
/** A stream whose unsent output passes this is cut (a reader that stopped reading). */
export const MAX_STREAM_BUFFER = 1 << 20;
/** How long a reader waits before reconnecting (`retry:`). */
export const RETRY_MS = 1000;

/** Where a stream writes: the HTTP response, as server.ts wraps it. */
export interface StreamSink {
  /** Queue text; returns the bytes still waiting to be sent. */
  write(text: string): number;
  end(): void;
  /** The reader went away (or the stream was ended). */
  onClose(fn: () => void): void;
}

export interface LiveOptions {
  engine: Engine;
  /** The cluster's live instances (SPEC §11), when there is a cluster. */
  instances?: (() => Promise<InstanceInfo[]> | InstanceInfo[]) | undefined;
  countersMs?: number;
  heartbeatMs?: number;
  maxStreams?: number;
  historyIntervalMs?: number;
  historySamples?: number;
}

/** Where a reader asked to resume: the events after `since` that the log still holds, or a gap. */
export function replayFrom(events: { since(seq: number): NumberedEvent[]; readonly last: number }, since: number): { events: NumberedEvent[]; gap: boolean } {
  if (since >= events.last) return { events: [], gap: since > events.last };
  const held = events.since(since);
  // Events since+1 … first-1 have left the ring: the reader must read the whole state again.
  const gap = held.length === 0 || held[0]!.seq > since + 1;
  return { events: held, gap };
}

export class Live {
  readonly assets: DashboardAssets;
  private readonly engine: Engine;
  private readonly facts: DashboardFacts;
  private readonly sampler: Sampler;
  private readonly rates: TrafficHistory;
  private readonly streams = new Set<Stream>();
  private ticker: ReturnType<typeof setInterval> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastCounters: string | undefined;
  private closed = false;
  readonly countersMs: number;
  readonly maxStreams: number;
  private readonly heartbeatMs: number;
  private readonly historyIntervalMs: number;

  constructor(private readonly opts: LiveOptions) {
    this.engine = opts.engine;
    this.facts = engineFacts(opts.engine, engineRuntime(opts.engine));
    this.countersMs = opts.countersMs ?? COUNTERS_MS;
    this.heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
    this.maxStreams = opts.maxStreams ?? MAX_STREAMS;
    this.historyIntervalMs = opts.historyIntervalMs ?? HISTORY_INTERVAL_MS;
    this.assets = loadDashboardAssets();
    const read = () => this.reading();
    this.sampler = startSampler(read, { intervalMs: this.historyIntervalMs, capacity: opts.historySamples ?? HISTORY_SAMPLES });
    this.rates = new TrafficHistory(1);
    this.rates.record(Date.now(), read());
  }

  private reading(): TrafficReading {
    return trafficReading(this.engine);
  }

  async state(): Promise<DashboardState> {
    const instances = this.opts.instances ? await this.opts.instances() : null;
    return dashboardView(this.engine.config, this.facts, this.sampler.history, {
      time: Date.now(),
      lastEventSeq: this.engine.events.last,
      intervalMs: this.historyIntervalMs,
      instances,
    });
  }

  get full(): boolean {
    return this.streams.size >= this.maxStreams;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * Start a stream: `retry:`, a `hello` with the last seq, the events after `since` (or a
   * `reset` when some are gone), the latest counters, then live events until the reader leaves.
   */
  open(sink: StreamSink, since: number | undefined): void {
    if (this.closed) {
      sink.end();
      return;
    }
    const s = new Stream(sink, () => this.streams.delete(s) && this.idle());
    this.streams.add(s);
    s.send(formatRetry(RETRY_MS));
    s.send(formatEvent({ event: "hello", data: JSON.stringify({ last_seq: this.engine.events.last, counters_ms: this.countersMs }) }));
    if (since !== undefined) {
      const r = replayFrom(this.engine.events, since);
      if (r.gap) s.send(formatEvent({ event: "reset", data: JSON.stringify({ since, last_seq: this.engine.events.last, reason: "events after the given seq are no longer held; read the state again" }) }));
      for (const e of r.events) s.send(eventText(e));
    }
    s.unsubscribe = this.engine.events.subscribe((e) => s.send(eventText(e)));
    this.running();
    s.send(this.lastCounters ?? this.counters());
  }

  private counters(): string {
    this.rates.record(Date.now(), this.reading());
    const c = countersView(this.engine.config, this.facts, this.sampler.history, this.rates, Date.now());
    return (this.lastCounters = formatEvent({ event: "counters", data: JSON.stringify(c) }));
  }

  private running(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      const text = this.counters();
      for (const s of this.streams) s.send(text);
    }, this.countersMs);
    this.ticker.unref();
    this.heartbeat = setInterval(() => {
      const text = formatComment("heartbeat");
      for (const s of this.streams) s.send(text);
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private idle(): void {
    if (this.streams.size > 0) return;
    clearInterval(this.ticker);
    clearInterval(this.heartbeat);
    this.ticker = this.heartbeat = undefined;
    this.lastCounters = undefined;
  }

  /** End every stream, stop every timer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams]) s.end();
    this.streams.clear();
    this.idle();
    this.sampler.stop();
  }
}

function eventText(e: NumberedEvent): string {
  return formatEvent({ id: e.seq, event: e.type, data: JSON.stringify(e) });
}

class Stream {
  unsubscribe: (() => void) | undefined;
  private done = false;

  constructor(
    private readonly sink: StreamSink,
    private readonly onDone: () => void,
  ) {
    sink.onClose(() => this.finish());
  }

  send(text: string): void {
    if (this.done) return;
    if (this.sink.write(text) > MAX_STREAM_BUFFER) this.end();
  }

  end(): void {
    if (this.done) return;
    this.sink.end();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.unsubscribe?.();
    this.onDone();
  }
}
