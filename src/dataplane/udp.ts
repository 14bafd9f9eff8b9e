/**
 * UDP listener and flows (SPEC §3 UDP listener, §7 proxy_v2 for UDP, §9 access log).
 *
 * Each client address:port is a flow with its own *connected* upstream socket to the member
 * it picked, so the kernel filters replies by peer and an ICMP port unreachable shows up as
 * an 'error' on that socket alone. Replies go back out of the listener socket, so their
 * source is the listener's address:port.
 *
 * Per datagram the path is a flow-table lookup and a send: no closure, no string building,
 * no clock read (activity is stamped with the time of the last engine tick), counters on
 * the flow, added to the listener stats when the flow ends. No timer per flow: the engine
 * tick sweeps idle flows (oldest first, stopping at the first live one) and drain deadlines.
 */
import dgram from "node:dgram";
import type { Logger } from "pino";
import type { AccessList } from "../acl/ipgroup.js";
import type { ListenerConfig } from "../config/schema.js";
import type { MemberRuntime } from "../model/member.js";
import type { PoolRuntime } from "../model/pool.js";
import { normaliseIp } from "../ip.js";
import { FlowTable, type Flow } from "./flow-table.js";
import type { Listener } from "./listener.js";
import type { RateLimitedLog } from "./ratelimit.js";
import { ListenerStats, type EndReason, type Traffic } from "./stats.js";
import { sharedFdBudget, type FdBudget } from "./fd-budget.js";
import type { AccessLog } from "./access-log.js";
import { admit, countHandover, pickMember } from "./admission.js";


/** Datagrams held per flow while its upstream socket connects; more are dropped. */
export const MAX_CONNECT_QUEUE = 64;

export interface UdpListenerDeps {
  lbId: string;
  vip: string;
  logger: Logger;
  /** Where finished flows go: the same record and line format as TCP connections. */
  accessLog: AccessLog;
  refusalLog: RateLimitedLog;
  clock: () => number;
  /** PROXY v2 header (UDP4/UDP6) to prefix every datagram of a flow with, or undefined. */
  headerFor?: (client: { ip: string; port: number }, member: MemberRuntime) => Buffer | undefined;
  /** Called when a flow ends (persistence touch). */
  onFlowEnd?: (client: { ip: string; port: number }, member: MemberRuntime) => void;
  /** Built-in flow cap used when connection_limit is 0 (default: from the open-file limit, fd-budget.ts). */
  maxFlows?: number;
  /** Descriptor budget; default: the process-wide one (fd-budget.ts). */
  fdBudget?: FdBudget;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * dgram resolves every destination through `lookup`, and dns.lookup answers even an IP
 * literal on the next tick (a closure and a tick per reply). Every address here is a
 * literal (validated config, rinfo), so answer synchronously.
 */
function literalLookup(address: string, family: unknown, cb: LookupCallback): void {
  cb(null, address, typeof family === "number" ? family : 0);
}

const kFlow = Symbol("lb4.flow");
type Tagged = dgram.Socket & { [kFlow]?: UdpFlow };

// Shared upstream handlers (one function object for all flows; `this` is the socket).
function onUpstreamMessage(this: Tagged, msg: Buffer): void {
  const f = this[kFlow];
  if (f !== undefined) f.listener.reply(f, msg);
}
function onUpstreamConnect(this: Tagged): void {
  const f = this[kFlow];
  if (f !== undefined) f.listener.connected(f);
}
function onUpstreamError(this: Tagged, err: Error): void {
  const f = this[kFlow];
  if (f !== undefined) f.listener.endFlow(f, "member_unreachable", err);
}

export class UdpFlow implements Flow {
  prev: Flow | null = null;
  next: Flow | null = null;
  inTable = false;
  state = CONNECTING;
  /** Datagrams waiting for the upstream socket to connect (null once open). */
  queue: Buffer[] | null = null;
  sock: Tagged | undefined;
  /** proxy_v2 prefix for every upstream datagram (SPEC §7), computed once. */
  header: Buffer | undefined;
  datagramsIn = 0;
  datagramsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Dropped because the connect queue was full. */
  dropped = 0;
  error: Error | undefined;

  constructor(
    readonly listener: UdpListener,
    /** rinfo.address as received (the reply goes there), and the port. */
    readonly address: string,
    readonly port: number,
    /** Normalised client address for ACL, scheduling, logs. */
    readonly client: { ip: string; port: number },
    readonly member: MemberRuntime,
    readonly startedAt: number,
    public lastSeen: number,
  ) {}
}

export class UdpListener implements Listener {
  readonly stats = new ListenerStats();
  readonly flows: FlowTable<UdpFlow>;
  readonly budget: FdBudget;
  /** The flow cap when connection_limit is 0. */
  private readonly builtInCap: number;
  accessLog: boolean;
  /** The constant head of this listener's access-log lines. */
  readonly logPrefix: string;
  /** The listener socket; undefined before listen() and after close. */
  socket: dgram.Socket | undefined;
  /** Flows per member, for drain deadlines (O(members) per tick, not O(flows)). */
  private readonly byMember = new Map<MemberRuntime, Set<UdpFlow>>();
  private closing = false;
  /** Time of the last tick: the activity stamp (coarse on purpose, see sweep()). */
  private now: number;

  constructor(
    public config: ListenerConfig,
    public pool: PoolRuntime,
    public acl: AccessList,
    readonly deps: UdpListenerDeps,
  ) {
    this.accessLog = deps.logger.isLevelEnabled("info");
    this.logPrefix = `"ev":"udp_flow","lb":"${deps.lbId}","listener":"${config.id}"`;
    this.now = deps.clock();
    this.budget = deps.fdBudget ?? sharedFdBudget();
    this.builtInCap = deps.maxFlows ?? this.budget.defaultMaxFlows();
    this.flows = new FlowTable<UdpFlow>(this.builtInCap);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: this.deps.vip.includes(":") ? "udp6" : "udp4", lookup: literalLookup });
      const onError = (err: Error) => {
        sock.close();
        reject(err);
      };
      sock.once("error", onError);
      sock.bind({ address: this.deps.vip, port: this.config.protocol_port, exclusive: true }, () => {
        sock.off("error", onError);
        sock.on("error", (err) => this.internalError(err, "listener socket error"));
        sock.on("message", this.onMessage);
        this.socket = sock;
        this.now = this.deps.clock();
        resolve();
      });
    });
  }

  get address(): { address: string; port: number; family: string } | undefined {
    return this.socket?.address();
  }

  /** Listener socket 'message': the hot path. */
  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    try {
      const f = this.flows.get(rinfo.address, rinfo.port);
      if (f !== undefined) this.forward(f, msg);
      else this.newFlow(msg, rinfo);
    } catch (err) {
      this.internalError(err as Error, "datagram dropped");
    }
  };

  private forward(f: UdpFlow, msg: Buffer): void {
    this.flows.touch(f, this.now);
    if (f.state === OPEN) {
      f.datagramsIn++;
      f.bytesIn += msg.length;
      if (f.header === undefined) f.sock!.send(msg);
      else f.sock!.send([f.header, msg]);
    } else if (f.queue !== null && f.queue.length < MAX_CONNECT_QUEUE) {
      f.queue.push(msg);
    } else {
      f.dropped++;
    }
  }

  /** First datagram of a client address:port: access list → flow cap → pick → connect. */
  private newFlow(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closing) return;
    const ip = normaliseIp(rinfo.address);
    const st = this.stats;
    const limit = this.config.connection_limit;
    this.flows.cap = limit > 0 ? limit : this.builtInCap;
    if (!admit(this, ip, this.flows.size, this.flows.cap, 1)) return;
    const client = { ip, port: rinfo.port };
    const member = pickMember(this, client, undefined, true);
    if (!member) {
      this.budget.give(1);
      return;
    }
    const header = this.deps.headerFor?.(client, member);
    const f = new UdpFlow(this, rinfo.address, rinfo.port, client, member, this.deps.clock(), this.now);
    if (header !== undefined && header.length > 0) f.header = header;
    this.flows.add(f);
    let set = this.byMember.get(member);
    if (!set) this.byMember.set(member, (set = new Set()));
    set.add(f);
    countHandover(this, member, true);
    st.active++;
    f.queue = [msg];

    const addr = member.config.address;
    const sock = dgram.createSocket({ type: member.v6 ? "udp6" : "udp4", lookup: literalLookup }) as Tagged;
    f.sock = sock;
    sock[kFlow] = f;
    sock.on("message", onUpstreamMessage);
    sock.on("error", onUpstreamError);
    sock.on("connect", onUpstreamConnect);
    try {
      // Binds an ephemeral port and connects; 'connect' follows on the next tick.
      sock.connect(member.config.protocol_port, addr);
    } catch (err) {
      this.endFlow(f, "member_unreachable", err as Error);
    }
  }

  /** Upstream socket connected: send what waited, in order. */
  connected(f: UdpFlow): void {
    if (f.state !== CONNECTING) return;
    f.state = OPEN;
    const q = f.queue!;
    f.queue = null;
    try {
      for (const msg of q) {
        f.datagramsIn++;
        f.bytesIn += msg.length;
        if (f.header === undefined) f.sock!.send(msg);
        else f.sock!.send([f.header, msg]);
      }
    } catch (err) {
      this.endFlow(f, "member_unreachable", err as Error);
    }
  }

  /** A member's reply: back to the client from the listener socket. */
  reply(f: UdpFlow, msg: Buffer): void {
    const sock = this.socket;
    if (sock === undefined || f.state === CLOSED) return;
    this.flows.touch(f, this.now);
    f.datagramsOut++;
    f.bytesOut += msg.length;
    try {
      sock.send(msg, f.port, f.address);
    } catch (err) {
      this.internalError(err as Error, "reply dropped");
    }
  }

  /** End a flow: close its upstream socket, add its counts, log it. Safe to call twice. */
  endFlow(f: UdpFlow, reason: EndReason, err?: Error): void {
    if (f.state === CLOSED) return;
    f.state = CLOSED;
    f.queue = null;
    if (err) f.error = err;
    this.flows.delete(f);
    const set = this.byMember.get(f.member);
    if (set) {
      set.delete(f);
      if (set.size === 0) this.byMember.delete(f.member);
    }
    const sock = f.sock;
    if (sock) {
      sock[kFlow] = undefined;
      try {
        sock.close();
      } catch {
        // already closed
      }
    }
    const m = f.member;
    const st = this.stats;
    m.active--;
    st.active--;
    this.budget.give(1);
    // Moved from the open flows into stats in one turn: traffic() never counts a flow twice.
    st.bytesIn += f.bytesIn;
    st.bytesOut += f.bytesOut;
    st.datagramsIn += f.datagramsIn;
    st.datagramsOut += f.datagramsOut;
    if (reason === "member_unreachable") {
      st.connectErrors++;
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      if (code === "EMFILE" || code === "ENFILE") {
        this.deps.refusalLog.warn("fd_limit", {
          listener: this.config.id,
          client: f.client.ip,
          msg: `cannot open an upstream UDP socket (${code}); datagram dropped: raise the open-file limit (ulimit -n) or lower connection_limit`,
        });
      }
    }
    try {
      this.deps.onFlowEnd?.(f.client, m);
    } catch (e) {
      this.internalError(e as Error, "flow-end hook failed");
    }
    if (this.accessLog) {
      const log = this.deps.accessLog;
      const r = log.next();
      r.udp = true;
      r.prefix = this.logPrefix;
      r.ip = f.client.ip;
      r.port = f.port;
      r.member = m.logField;
      r.datagramsIn = f.datagramsIn;
      r.datagramsOut = f.datagramsOut;
      r.bytesIn = f.bytesIn;
      r.bytesOut = f.bytesOut;
      const end = this.deps.clock();
      r.endedAt = end;
      r.durationMs = Math.round(end - f.startedAt);
      r.end = reason;
      r.dropped = f.dropped;
      r.error = f.error ? ((f.error as NodeJS.ErrnoException).code ?? f.error.message) : "";
      log.commit();
    }
  }

  /**
   * Engine tick: drain deadlines (as TCP, SPEC §4) and idle expiry (§3). A flow's stamp is
   * the time of the tick before its last datagram, so that datagram came less than one tick
   * interval after the stamp: the flow is idle for sure once stamp + interval +
   * keepalive_timeout <= now, i.e. stamp <= previous tick - keepalive_timeout. Expiry is
   * up to two ticks late, never early (ticks are regular).
   */
  sweep(now: number): void {
    for (const [m, set] of this.byMember) {
      if (m.drainDeadline > now) continue;
      for (const f of [...set]) {
        this.stats.drainClosed++;
        this.endFlow(f, "drained");
      }
    }
    for (const f of this.flows.idleSince(this.now - this.config.keepalive_timeout * 1000)) {
      this.stats.idleClosed++;
      this.endFlow(f, "idle_timeout");
    }
    if (now > this.now) this.now = now;
  }

  /**
   * For UDP, stopping accepting ends every flow: the listener socket is also the reply path,
   * so once it is closed no flow can be served (and a listener removed by reload is no
   * longer swept). Flows end as "shutdown", then the socket closes.
   */
  stopAccepting(): Promise<void> {
    this.closing = true;
    this.destroyAll();
    const sock = this.socket;
    this.socket = undefined;
    if (!sock) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        sock.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** Bytes and datagrams so far, open flows included (a walk of the flow table, at scrape time). */
  traffic(): Traffic {
    const st = this.stats;
    const t: Traffic = { bytesIn: st.bytesIn, bytesOut: st.bytesOut, datagramsIn: st.datagramsIn, datagramsOut: st.datagramsOut };
    this.flows.forEach((f) => {
      t.bytesIn += f.bytesIn;
      t.bytesOut += f.bytesOut;
      t.datagramsIn += f.datagramsIn;
      t.datagramsOut += f.datagramsOut;
    });
    return t;
  }

  /** End every flow now ("shutdown"). */
  destroyAll(): void {
    for (const f of this.flows.all()) this.endFlow(f, "shutdown");
  }

  /** Unexpected errors: logged at most once a second, never thrown out of a handler. */
  private internalError(err: Error, msg: string): void {
    this.deps.refusalLog.event("udp_error", `udp_error:${this.config.id}`, { listener: this.config.id, err: (err as NodeJS.ErrnoException).code ?? err.message, msg });
  }
}
