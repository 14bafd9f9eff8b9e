/// <reference lib="dom" />
/**
 * The lb4 dashboard (SPEC §12), in the browser: the whole state from GET /v3/elb/dashboard,
 * then the event stream — a control event (health, member change, reload) reads the state
 * again, a `counters` event updates the numbers in place. With `cluster`, the state is also
 * read every few seconds: instances join and leave without a control event here. Rows and
 * listener cards are kept by id across updates, so an operator typing a weight keeps the
 * field and its focus.
 */
import type { SseMessage } from "../../sse.js";
import type { CountersEvent, DashboardCluster, DashboardListener, DashboardLoadBalancer, DashboardMember, DashboardPool, DashboardState } from "../state.js";
import { ApiError, forgetToken, request, storedToken } from "./api.js";
import { sparkline } from "./chart.js";
import { h, replaceChildren, setAttr, setText } from "./dom.js";
import * as fmt from "./format.js";
import { openEventStream, type EventStream } from "./stream.js";

const root = document.getElementById("app")!;

let state: DashboardState | undefined;
/** Server time minus browser time, ms (ages and chart windows use the server's clock). */
let skew = 0;
let stream: EventStream | undefined;
let structure = "";
const rows = new Map<string, MemberRow>();
const cards = new Map<string, ListenerCard>();
const poolHeads = new Map<string, PoolHead>();
const log: LogEntry[] = [];
const LOG_MAX = 40;
/** With `cluster`: how often the instance list is read again (instances join and leave without a control event here). */
const INSTANCES_POLL_MS = 3000;
let instancesPoll: ReturnType<typeof setInterval> | undefined;

const serverNow = () => Date.now() + skew;

// ---------------------------------------------------------------- page frame

const liveDot = h("span", { class: "live off", id: "live" }, "connecting…");
const storeBadge = h("span", { class: "store", id: "store-state", hidden: true });
const updated = h("span", { class: "updated" });
const tokenBtn = h(
  "button",
  {
    type: "button",
    class: "ghost",
    id: "forget-token",
    hidden: true,
    onclick: () => {
      forgetToken();
      location.reload();
    },
  },
  "Forget token",
);
const summary = h("section", { class: "summary", id: "summary" });
const instancesBox = h("section", { class: "instances", id: "instances", hidden: true });
const lbsBox = h("div", { id: "loadbalancers" });
const logList = h("ol", { class: "log", id: "event-log" });
const toasts = h("div", { class: "toasts", id: "toasts", "aria-live": "polite" });

replaceChildren(
  root,
  h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("span", { class: "logo" }, "lb4"), h("span", { class: "title" }, "load balancer dashboard")),
    h("div", { class: "status" }, storeBadge, liveDot, updated, tokenBtn),
  ),
  h(
    "main",
    {},
    summary,
    instancesBox,
    lbsBox,
    h("section", { class: "events" }, h("h2", {}, "Recent events"), logList),
  ),
  toasts,
);

function toast(text: string, kind: "ok" | "error"): void {
  const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  toasts.appendChild(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 3500);
}

// ---------------------------------------------------------------- status words

interface StatusLook {
  cls: string;
  /** operating_status, in the API's words. */
  word: string;
  tag?: string;
  title: string;
}

function statusLook(m: Pick<DashboardMember, "operating_status" | "health" | "admin_state_up" | "weight">): StatusLook {
  if (!m.admin_state_up) return { cls: "maint", word: m.operating_status, tag: "ADMIN DOWN", title: "taken out by an operator (admin_state_up: false): no new connections" };
  if (m.health === "UNCHECKED") return { cls: "unchecked", word: m.operating_status, tag: "UNCHECKED", title: "not checked yet: no result, not a failure" };
  if (m.operating_status === "ONLINE") return { cls: "online", word: "ONLINE", ...(m.weight === 0 ? { tag: "WEIGHT 0" } : {}), title: "passing its health checks" };
  if (m.operating_status === "NO_MONITOR") return { cls: "nomonitor", word: "NO_MONITOR", ...(m.weight === 0 ? { tag: "WEIGHT 0" } : {}), title: "no health monitor: in service while admin up" };
  return { cls: "offline", word: m.operating_status, title: "failing its health checks: no new connections" };
}

// ---------------------------------------------------------------- member rows

class MemberRow {
  readonly tr: HTMLTableRowElement;
  private readonly pill = h("span", { class: "pill" });
  private readonly tag = h("span", { class: "tag" });
  private readonly name = h("span", { class: "sub" });
  private readonly addr = h("span", { class: "mono" });
  private readonly addrTag = h("span", { class: "tag ip", hidden: true }, "cross-VPC");
  private readonly check = h("span", { class: "check" });
  private readonly checkAge = h("span", { class: "sub" });
  private readonly effective = h("b", { class: "w-eff" });
  private readonly configured = h("span", { class: "w-of" });
  private readonly weightBar = h("i");
  private readonly ramp = h("div", { class: "ramp", hidden: true });
  private readonly active = h("td", { class: "num active" });
  private readonly shareText = h("span", { class: "share-text" });
  private readonly shareBar = h("i");
  private readonly total = h("td", { class: "num total" });
  private readonly input: HTMLInputElement;
  private readonly adminBtn: HTMLButtonElement;
  private readonly removeBtn: HTMLButtonElement;
  private dirty = false;
  private confirmTimer: ReturnType<typeof setTimeout> | undefined;
  m: DashboardMember;

  constructor(m: DashboardMember) {
    this.m = m;
    const key = `${m.pool_id}/${m.id}`;
    this.input = h("input", { type: "number", min: 0, max: 100, step: 1, class: "weight-input", "data-action": "weight", "aria-label": `new weight for ${m.id}` });
    this.input.addEventListener("input", () => (this.dirty = true));
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") void this.setWeight();
    });
    const setBtn = h("button", { type: "button", "data-action": "set-weight", onclick: () => void this.setWeight() }, "Set");
    this.adminBtn = h("button", { type: "button", "data-action": "admin", onclick: () => void this.toggleAdmin() });
    this.removeBtn = h("button", { type: "button", class: "danger", "data-action": "remove", onclick: () => void this.remove() }, "Remove");
    this.tr = h(
      "tr",
      { "data-member": key },
      h("td", { class: "st" }, this.pill, this.tag),
      h("td", { class: "who" }, h("b", { class: "mono id" }, m.id), this.name),
      h("td", {}, this.addr, this.addrTag),
      h("td", { class: "hc" }, this.check, this.checkAge),
      h("td", { class: "wt" }, h("div", { class: "w" }, this.effective, this.configured), h("div", { class: "bar" }, this.weightBar), this.ramp),
      this.active,
      h("td", { class: "share" }, h("div", { class: "bar share-bar" }, this.shareBar), this.shareText),
      this.total,
      h("td", { class: "actions" }, h("span", { class: "set" }, this.input, setBtn), this.adminBtn, this.removeBtn),
    );
    this.update(m);
  }

  update(m: DashboardMember): void {
    this.m = m;
    const look = statusLook(m);
    this.tr.className = `row-${look.cls}`;
    setAttr(this.tr, "data-status", m.operating_status);
    setAttr(this.tr, "data-health", m.health);
    setAttr(this.tr, "title", look.title);
    this.pill.className = `pill ${look.cls}`;
    setText(this.pill, look.word);
    this.tag.hidden = !look.tag;
    setText(this.tag, look.tag ?? "");
    setText(this.name, m.name);
    setText(this.addr, m.address.includes(":") ? `[${m.address}]:${m.protocol_port}` : `${m.address}:${m.protocol_port}`);
    this.addrTag.hidden = m.member_type !== "ip";
    this.renderCheck();
    setText(this.effective, fmt.weight(m.effective_weight));
    setText(this.configured, ` / ${m.weight}`);
    this.weightBar.style.width = `${m.weight > 0 && m.effective_weight !== null ? Math.min(100, (m.effective_weight / m.weight) * 100) : 0}%`;
    const ss = m.slow_start;
    this.ramp.hidden = !ss;
    if (ss) {
      setText(this.ramp, ss.progress === null ? `slow start ${ss.duration_s} s: waits for the first ONLINE` : `slow start ${fmt.percent(ss.progress)} · ${ss.remaining_s} s left`);
      this.weightBar.parentElement!.classList.add("ramping");
    } else this.weightBar.parentElement!.classList.remove("ramping");
    setText(this.active, fmt.count(m.active_connections));
    setText(this.shareText, fmt.percent(m.share));
    this.shareBar.style.width = `${(m.share ?? 0) * 100}%`;
    setText(this.total, fmt.count(m.total_connections));
    if (!this.dirty && document.activeElement !== this.input) this.input.value = String(m.weight);
    setText(this.adminBtn, m.admin_state_up ? "Disable" : "Enable");
    setAttr(this.adminBtn, "title", m.admin_state_up ? "admin down: no new connections (admin_state_up: false)" : "admin up (admin_state_up: true)");
  }

  /** The last check's result and age (ages move every second). */
  renderCheck(): void {
    const m = this.m;
    const c = m.last_check;
    if (m.health === "NO_MONITOR") {
      setText(this.check, "no health monitor");
      this.check.className = "check none";
      setText(this.checkAge, "");
      return;
    }
    if (!c) {
      setText(this.check, m.health === "UNCHECKED" ? "not checked yet" : `${m.health} (kept from before the restart)`);
      this.check.className = "check none";
      setText(this.checkAge, "");
      return;
    }
    setText(this.check, `${c.result === "PASS" ? "✓" : "✗"} ${c.reason}`);
    this.check.className = `check ${c.result === "PASS" ? "pass" : "fail"}`;
    setText(this.checkAge, fmt.ago(serverNow() - c.checked_at));
  }

  private path(): string {
    return `v3/elb/pools/${encodeURIComponent(this.m.pool_id)}/members/${encodeURIComponent(this.m.id)}`;
  }

  private async change(what: string, fn: () => Promise<unknown>): Promise<void> {
    this.tr.classList.add("busy");
    try {
      await fn();
      toast(`${this.m.id}: ${what}`, "ok");
      await refresh();
    } catch (err) {
      toast(`${this.m.id}: ${err instanceof ApiError ? `${err.message} [${err.code}]` : String(err)}`, "error");
    } finally {
      this.tr.classList.remove("busy");
    }
  }

  private async setWeight(): Promise<void> {
    const raw = this.input.value.trim();
    const weight = Number(raw);
    if (raw === "" || !Number.isInteger(weight)) {
      toast(`${this.m.id}: a weight is a whole number from 0 to 100`, "error");
      return;
    }
    await this.change(`weight ${this.m.weight} → ${weight}`, () => request("PUT", this.path(), { member: { weight } }));
    this.dirty = false;
  }

  private async toggleAdmin(): Promise<void> {
    const up = !this.m.admin_state_up;
    await this.change(up ? "admin up" : "admin down", () => request("PUT", this.path(), { member: { admin_state_up: up } }));
  }

  private async remove(): Promise<void> {
    if (!this.removeBtn.classList.contains("confirm")) {
      this.removeBtn.classList.add("confirm");
      setText(this.removeBtn, "Confirm remove");
      this.confirmTimer = setTimeout(() => {
        this.removeBtn.classList.remove("confirm");
        setText(this.removeBtn, "Remove");
      }, 4000);
      return;
    }
    clearTimeout(this.confirmTimer);
    await this.change("removed", () => request("DELETE", this.path()));
  }
}

// ---------------------------------------------------------------- listener cards

interface ChartPoint {
  t: number;
  conn: number;
  bytes: number;
}

class ListenerCard {
  readonly el: HTMLElement;
  private readonly active = h("b");
  private readonly total = h("b");
  private readonly bin = h("b");
  private readonly bout = h("b");
  private readonly connNow = h("b");
  private readonly bytesNow = h("b");
  private readonly connMax = h("span", { class: "sub" });
  private readonly bytesMax = h("span", { class: "sub" });
  private readonly connChart = h("div", { class: "chart" });
  private readonly bytesChart = h("div", { class: "chart" });
  private readonly windowLabel = h("span", { class: "sub" });
  private points: ChartPoint[] = [];
  /** UDP counts flows (a client address:port), TCP connections. */
  private readonly unit: string;
  l: DashboardListener;

  constructor(l: DashboardListener) {
    this.l = l;
    this.unit = l.protocol === "UDP" ? "new flows" : "new connections";
    this.el = h(
      "div",
      { class: "listener", "data-listener": l.id },
      h(
        "div",
        { class: "l-head" },
        h("span", { class: `proto ${l.protocol.toLowerCase()}` }, l.protocol),
        h("b", { class: "mono" }, `${l.vip_address.includes(":") ? `[${l.vip_address}]` : l.vip_address}:${l.protocol_port}`),
        h("span", { class: "mono id" }, l.id),
        l.name ? h("span", { class: "sub" }, l.name) : null,
        h("span", { class: "to" }, "→ ", h("span", { class: "mono" }, l.default_pool_id)),
      ),
      h(
        "div",
        { class: "l-stats" },
        h("span", {}, "active ", this.active),
        h("span", {}, "total ", this.total),
        h("span", {}, "in ", this.bin),
        h("span", {}, "out ", this.bout),
        l.connection_limit > 0 ? h("span", {}, "limit ", h("b", {}, fmt.count(l.connection_limit))) : null,
      ),
      h(
        "div",
        { class: "charts" },
        h("figure", { class: "conn" }, h("figcaption", {}, h("span", {}, `${this.unit}/s `), this.connNow, this.connMax), this.connChart),
        h("figure", { class: "bytes" }, h("figcaption", {}, h("span", {}, "bytes/s "), this.bytesNow, this.bytesMax), this.bytesChart),
      ),
      h("div", { class: "l-foot" }, this.windowLabel),
    );
    this.update(l);
  }

  update(l: DashboardListener): void {
    this.l = l;
    this.points = l.history.map((p) => ({ t: p.t, conn: p.conn_rate, bytes: p.bytes_rate }));
    this.numbers(l.active_connections, l.total_connections, l.bytes_in, l.bytes_out);
    const last = this.points[this.points.length - 1];
    setText(this.connNow, fmt.rate(last?.conn ?? null));
    setText(this.bytesNow, fmt.bytesRate(last?.bytes ?? null));
    this.draw();
  }

  counters(c: CountersEvent["listeners"][string]): void {
    this.numbers(c.active, c.total, c.bytes_in, c.bytes_out);
    setText(this.connNow, fmt.rate(c.conn_rate));
    setText(this.bytesNow, fmt.bytesRate(c.bytes_rate));
    const last = this.points[this.points.length - 1];
    if (c.point && (!last || c.point.t > last.t)) {
      this.points.push({ t: c.point.t, conn: c.point.conn_rate, bytes: c.point.bytes_rate });
      const cap = state?.history.samples ?? 60;
      if (this.points.length > cap) this.points.shift();
    }
    this.draw();
  }

  private numbers(active: number | null, total: number | null, bin: number | null, bout: number | null): void {
    setText(this.active, fmt.count(active));
    setText(this.total, fmt.count(total));
    setText(this.bin, fmt.bytes(bin));
    setText(this.bout, fmt.bytes(bout));
  }

  private draw(): void {
    const h0 = state?.history ?? { interval_s: 5, samples: 60 };
    const windowMs = h0.interval_s * h0.samples * 1000;
    const end = serverNow();
    const inWindow = this.points.filter((p) => p.t >= end - windowMs);
    const maxConn = Math.max(0, ...inWindow.map((p) => p.conn));
    const maxBytes = Math.max(0, ...inWindow.map((p) => p.bytes));
    setText(this.connMax, inWindow.length ? ` peak ${fmt.rate(maxConn)}` : "");
    setText(this.bytesMax, inWindow.length ? ` peak ${fmt.bytesRate(maxBytes)}` : "");
    replaceChildren(this.connChart, sparkline(inWindow.map((p) => ({ t: p.t, v: p.conn })), { windowMs, end, cls: "conn", label: `${this.unit} per second, last ${windowMs / 60000} minutes` }));
    replaceChildren(this.bytesChart, sparkline(inWindow.map((p) => ({ t: p.t, v: p.bytes })), { windowMs, end, cls: "bytes", label: `bytes per second, last ${windowMs / 60000} minutes` }));
    setText(this.windowLabel, inWindow.length < 2 ? `charts: last ${windowMs / 60000} min, a point every ${h0.interval_s} s (collecting…)` : `last ${windowMs / 60000} min, a point every ${h0.interval_s} s`);
  }
}

// ---------------------------------------------------------------- pools

class PoolHead {
  readonly el: HTMLElement;
  private readonly counts = h("span", { class: "counts" });

  constructor(p: DashboardPool) {
    const hm = p.healthmonitor;
    const facts = [
      p.protocol,
      p.lb_algorithm,
      hm && hm.admin_state_up
        ? `health ${hm.type} every ${hm.delay} s (timeout ${hm.timeout} s, up after ${hm.max_retries}, down after ${hm.max_retries_down})`
        : hm
          ? `health ${hm.type} (admin down)`
          : "no health monitor",
      ...(p.slow_start.enable ? [`slow start ${p.slow_start.duration} s`] : []),
      ...(p.connection_drain.enable ? [`drain ${p.connection_drain.timeout} s`] : []),
      ...(p.session_persistence ? [`sticky ${p.session_persistence.type}`] : []),
      ...(p.client_ip !== "auto" && p.client_ip !== "off" ? [`client ip ${p.client_ip}`] : []),
    ];
    this.el = h(
      "div",
      { class: "pool-head" },
      h("h3", {}, h("span", { class: "kind" }, "Pool "), h("span", { class: "mono" }, p.id), p.name ? h("span", { class: "sub" }, ` ${p.name}`) : null),
      h("span", { class: "facts" }, facts.join(" · ")),
      p.listeners.length ? h("span", { class: "sub" }, `← ${p.listeners.map((l) => l.id).join(", ")}`) : null,
      this.counts,
    );
    this.update(p);
  }

  update(p: DashboardPool): void {
    const n = p.members.length;
    const up = p.members.filter((m) => m.effective_weight !== null && m.effective_weight > 0).length;
    replaceChildren(this.counts, h("b", {}, `${up}/${n}`), " in service");
  }
}

function memberTable(p: DashboardPool): HTMLElement {
  const body = h("tbody");
  for (const m of p.members) body.appendChild(rowFor(m).tr);
  if (p.members.length === 0) body.appendChild(h("tr", {}, h("td", { colspan: 9, class: "empty" }, "no members")));
  // Fixed columns: every pool's table lines up with the others.
  const cols = ["st", "who", "addr", "hc", "wt", "active", "share", "total", "actions"].map((c) => h("col", { class: `c-${c}` }));
  return h(
    "table",
    { class: "members", "data-pool": p.id },
    h("colgroup", {}, ...cols),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Status"),
        h("th", {}, "Member"),
        h("th", {}, "Address"),
        h("th", {}, "Last health check"),
        h("th", { title: "effective weight (slow start, health, drain and admin state applied) / configured weight" }, "Weight eff / conf"),
        h("th", { class: "num" }, "Active"),
        h("th", { title: "share of the pool's new connections over the chart window" }, "Share"),
        h("th", { class: "num" }, "Total"),
        h("th", {}, "Actions"),
      ),
    ),
    body,
  );
}

function rowFor(m: DashboardMember): MemberRow {
  const key = `${m.pool_id}/${m.id}`;
  let r = rows.get(key);
  if (r) r.update(m);
  else rows.set(key, (r = new MemberRow(m)));
  return r;
}

function cardFor(l: DashboardListener): ListenerCard {
  let c = cards.get(l.id);
  if (c) c.update(l);
  else cards.set(l.id, (c = new ListenerCard(l)));
  return c;
}

function headFor(p: DashboardPool): PoolHead {
  let hd = poolHeads.get(p.id);
  if (hd) hd.update(p);
  else poolHeads.set(p.id, (hd = new PoolHead(p)));
  return hd;
}

function lbSection(lb: DashboardLoadBalancer): HTMLElement {
  const meta = [
    `VIP ${lb.vip_address}`,
    ...(lb.vpc_id ? [`VPC ${lb.vpc_id}`] : []),
    ...(lb.ip_target_enable ? [`cross-VPC on · allow ${(lb.backend_subnet_cidrs ?? []).join(", ")} · source ${(lb.source_addresses ?? []).join(", ")}`] : []),
  ];
  return h(
    "section",
    { class: "lb", "data-lb": lb.id },
    h("h2", {}, h("span", { class: "kind" }, "Load balancer "), h("span", { class: "mono" }, lb.id), lb.name ? h("span", { class: "sub" }, ` ${lb.name}`) : null, h("span", { class: "meta" }, meta.join(" · "))),
    h("div", { class: "listeners" }, ...lb.listeners.map((l) => cardFor(l).el), lb.listeners.length ? null : h("p", { class: "empty" }, "no listeners")),
    ...lb.pools.map((p) => h("div", { class: "pool", "data-pool": p.id }, headFor(p).el, memberTable(p))),
  );
}

// ---------------------------------------------------------------- cluster instances

const STARTED_FROM: Record<string, string> = {
  snapshot: "started from its snapshot (etcd was down at start)",
  file: "started from its config file (etcd was down at start, no snapshot yet)",
};

/** One instance as shown; compared as a whole so the table is rebuilt only when something shown changed. */
interface InstanceLine {
  id: string;
  self: boolean;
  advertise: string;
  version: string;
  versionDiffers: boolean;
  revision: number;
  /** Against this instance's revision: >0 behind by that many, <0 ahead. */
  lag: number;
  started: string;
}

function instanceLines(c: DashboardCluster): InstanceLine[] {
  if (c.store !== "ok") return [];
  const selfVersion = c.instances.find((i) => i.self)?.version;
  return c.instances.map((i) => {
    // This instance's record in etcd trails what it runs by up to a write: show what it runs.
    const revision = i.self ? c.revision : i.revision;
    const t = Date.parse(i.started_at);
    return {
      id: i.instance_id,
      self: i.self,
      advertise: i.advertise,
      version: i.version,
      versionDiffers: selfVersion !== undefined && i.version !== selfVersion,
      revision,
      lag: c.revision - revision,
      started: Number.isFinite(t) ? fmt.ago(serverNow() - t) : "–",
    };
  });
}

let clusterShown = "";

function renderCluster(c: DashboardCluster | undefined): void {
  instancesBox.hidden = storeBadge.hidden = !c;
  if (!c) {
    clearInterval(instancesPoll);
    instancesPoll = undefined;
    return;
  }
  instancesPoll ??= setInterval(() => void refresh().catch(() => undefined /* the live dot shows the API being away; the next poll retries */), INSTANCES_POLL_MS);
  const up = c.store === "ok";
  storeBadge.className = `store ${up ? "ok" : "down"}`;
  setText(storeBadge, up ? "etcd ok" : "etcd unreachable");
  setAttr(storeBadge, "title", up ? "the cluster store (etcd) answers" : "etcd does not answer: this instance serves what it last applied; admin writes are refused");
  setAttr(instancesBox, "data-store", c.store);
  const lines = instanceLines(c);
  const shown = JSON.stringify([c.store, c.revision, c.instance_id, c.started_from, lines]);
  if (shown === clusterShown) return;
  clusterShown = shown;

  const rowsOut: HTMLElement[] = lines.map((i) => {
    const revCell =
      i.lag > 0
        ? h("td", { class: "num rev behind", title: `runs revision ${i.revision}, ${i.lag} behind this instance's ${c.revision}` }, String(i.revision), h("span", { class: "tag behind" }, `BEHIND ${i.lag}`))
        : i.lag < 0
          ? h("td", { class: "num rev ahead", title: `runs revision ${i.revision}, ahead of this instance's ${c.revision}` }, String(i.revision), h("span", { class: "tag" }, `AHEAD ${-i.lag}`))
          : h("td", { class: "num rev", title: i.self ? "the store revision this instance runs" : "the same revision as this instance" }, String(i.revision), i.self ? null : h("span", { class: "tag same" }, "IN SYNC"));
    return h(
      "tr",
      { "data-instance": i.id, "data-self": i.self ? "true" : "false", class: `${i.self ? "self" : ""}${i.lag > 0 ? " behind" : ""}`.trim() },
      h("td", { class: "who" }, h("b", { class: "mono id" }, i.id), i.self ? h("span", { class: "tag self" }, "this instance") : null),
      h("td", {}, i.advertise ? h("span", { class: "mono" }, i.advertise) : h("span", { class: "sub" }, "not advertised")),
      h("td", { class: i.versionDiffers ? "version differs" : "version", title: i.versionDiffers ? "another version than this instance" : "" }, i.version || "–"),
      revCell,
      h("td", { class: "sub" }, `started ${i.started}`),
    );
  });
  const note = !up
    ? h("tr", { class: "store-down" }, h("td", { colspan: 5 }, `etcd does not answer: the instance list cannot be read. This instance keeps serving revision ${c.revision}, what it last applied; admin writes are refused until etcd answers.`))
    : !lines.some((i) => i.self)
      ? h("tr", { class: "not-listed" }, h("td", { colspan: 5 }, `this instance (${c.instance_id}) is not in the store's list yet: its registration is pending`))
      : null;
  const from = STARTED_FROM[c.started_from];
  replaceChildren(
    instancesBox,
    h(
      "h2",
      {},
      h("span", { class: "kind" }, "Cluster "),
      // Down: how many there are is not known, so no count.
      up ? `instances (${lines.length})` : "instances",
      h("span", { class: `pill ${up ? "online" : "offline"}`, id: "store-pill" }, up ? "etcd ok" : "etcd unreachable"),
      h("span", { class: "meta" }, `this instance `, h("b", { class: "mono" }, c.instance_id), ` runs revision `, h("b", {}, String(c.revision)), from ? ` · ${from}` : ""),
    ),
    h(
      "table",
      { class: "instances-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Instance"), h("th", {}, "Admin API (advertise)"), h("th", {}, "Version"), h("th", { class: "num", title: "the store revision each instance runs, against this one's" }, "Revision"), h("th", {}, "Started"))),
      h("tbody", {}, ...rowsOut, note),
    ),
  );
}

function renderSummary(s: DashboardState): void {
  const members = s.loadbalancers.flatMap((lb) => lb.pools.flatMap((p) => p.members));
  const listeners = s.loadbalancers.flatMap((lb) => lb.listeners);
  const by = (f: (m: DashboardMember) => boolean) => members.filter(f).length;
  const online = by((m) => m.admin_state_up && m.operating_status === "ONLINE");
  const nomon = by((m) => m.admin_state_up && m.operating_status === "NO_MONITOR");
  const unchecked = by((m) => m.admin_state_up && m.health === "UNCHECKED");
  const offline = by((m) => m.admin_state_up && m.operating_status === "OFFLINE" && m.health !== "UNCHECKED");
  const down = by((m) => !m.admin_state_up);
  const active = listeners.reduce((n, l) => n + (l.active_connections ?? 0), 0);
  const card = (label: string, value: string, cls = "", title = "") => h("div", { class: `card ${cls}`, title }, h("div", { class: "v" }, value), h("div", { class: "k" }, label));
  replaceChildren(
    summary,
    card("load balancers", String(s.loadbalancers.length)),
    card("listeners", String(listeners.length)),
    card("active connections", fmt.count(active)),
    card("online", String(online), "online"),
    ...(nomon ? [card("no monitor", String(nomon), "nomonitor")] : []),
    card("offline", String(offline), offline ? "offline" : ""),
    card("unchecked", String(unchecked), unchecked ? "unchecked" : "", "members whose first health check has not run yet"),
    card("admin down", String(down), down ? "maint" : ""),
  );
}

/** Ids of everything shown: when they change, the sections are laid out again. */
function structureOf(s: DashboardState): string {
  return JSON.stringify(s.loadbalancers.map((lb) => [lb.id, lb.listeners.map((l) => l.id), lb.pools.map((p) => [p.id, p.members.map((m) => m.id)])]));
}

function render(s: DashboardState): void {
  const focused = document.activeElement;
  const next = structureOf(s);
  if (next !== structure) {
    structure = next;
    const keepRows = new Set(s.loadbalancers.flatMap((lb) => lb.pools.flatMap((p) => p.members.map((m) => `${p.id}/${m.id}`))));
    for (const k of [...rows.keys()]) if (!keepRows.has(k)) rows.delete(k);
    const keepCards = new Set(s.loadbalancers.flatMap((lb) => lb.listeners.map((l) => l.id)));
    for (const k of [...cards.keys()]) if (!keepCards.has(k)) cards.delete(k);
    poolHeads.clear();
    replaceChildren(lbsBox, ...(s.loadbalancers.length ? s.loadbalancers.map(lbSection) : [h("p", { class: "empty" }, "no load balancers configured")]));
    if (focused instanceof HTMLElement && focused.isConnected) focused.focus();
  } else {
    for (const lb of s.loadbalancers) {
      for (const l of lb.listeners) cardFor(l);
      for (const p of lb.pools) {
        headFor(p);
        for (const m of p.members) rowFor(m);
      }
    }
  }
  renderSummary(s);
  renderCluster(s.cluster);
  setText(updated, `updated ${fmt.clock(serverNow())}`);
  tokenBtn.hidden = storedToken() === null;
}

// ---------------------------------------------------------------- live updates

function applyCounters(c: CountersEvent): void {
  if (!state) return;
  skew = c.time - Date.now();
  for (const lb of state.loadbalancers) {
    for (const l of lb.listeners) {
      const lc = c.listeners[l.id];
      if (!lc) continue;
      Object.assign(l, { active_connections: lc.active, total_connections: lc.total, bytes_in: lc.bytes_in, bytes_out: lc.bytes_out });
      cards.get(l.id)?.counters(lc);
    }
    for (const p of lb.pools) {
      const mc = c.members[p.id];
      if (!mc) continue;
      for (const m of p.members) {
        const x = mc[m.id];
        if (!x) continue;
        Object.assign(m, {
          active_connections: x.active,
          total_connections: x.total,
          effective_weight: x.effective_weight,
          operating_status: x.operating_status,
          health: x.health,
          share: x.share,
          slow_start: x.slow_start,
          last_check: x.last_check,
        });
        rows.get(`${p.id}/${m.id}`)?.update(m);
      }
      poolHeads.get(p.id)?.update(p);
    }
  }
  if (c.cluster && state.cluster) {
    const back = state.cluster.store !== "ok" && c.cluster.store === "ok";
    Object.assign(state.cluster, c.cluster);
    renderCluster(state.cluster);
    // etcd answers again: the list read while it was down is empty, read it now.
    if (back) void refresh().catch(report);
  }
  renderSummary(state);
  setText(updated, `updated ${fmt.clock(serverNow())}`);
}

interface LogEntry {
  time: number;
  cls: string;
  text: string;
}

function describeEvent(type: string, e: Record<string, unknown>): LogEntry {
  const time = typeof e.time === "number" ? e.time : serverNow();
  switch (type) {
    case "health":
      return { time, cls: String(e.to).toLowerCase(), text: `${e.pool_id}/${e.member_id} (${e.address}) ${e.from} → ${e.to}${e.reason ? `: ${e.reason}` : ""}` };
    case "member_added":
      return { time, cls: "info", text: `member ${e.member_id} added to ${e.pool_id}` };
    case "member_updated":
      return { time, cls: "info", text: `member ${e.member_id} of ${e.pool_id} updated` };
    case "member_removed":
      return { time, cls: "info", text: `member ${e.member_id} removed from ${e.pool_id}` };
    case "reload":
      return e.result === "ok" ? { time, cls: "info", text: "configuration reloaded" } : { time, cls: "offline", text: `reload refused: ${e.error}` };
    default:
      return { time, cls: "info", text: type };
  }
}

function addLog(entry: LogEntry): void {
  log.unshift(entry);
  if (log.length > LOG_MAX) log.pop();
  replaceChildren(
    logList,
    ...(log.length ? log.map((l) => h("li", { class: l.cls }, h("time", {}, fmt.clock(l.time)), " ", l.text)) : [h("li", { class: "empty" }, "no events since the page opened")]),
  );
}

let refreshing: Promise<void> | undefined;
let again = false;

/** Read the whole state again; calls while one is running coalesce into one more. */
function refresh(): Promise<void> {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const r = await request<{ dashboard: DashboardState }>("GET", "v3/elb/dashboard");
      state = r.body.dashboard;
      skew = state.time - Date.now();
      render(state);
    } while (again);
  })().finally(() => (refreshing = undefined));
  return refreshing;
}

function onMessage(m: SseMessage): void {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(m.data) as Record<string, unknown>;
  } catch {
    return;
  }
  switch (m.event) {
    case "counters":
      applyCounters(data as unknown as CountersEvent);
      return;
    case "hello":
      return; // the stream resumes after the last seq seen: what was missed is replayed
    case "reset":
      void refresh().catch(report);
      return;
    default:
      addLog(describeEvent(m.event, data));
      void refresh().catch(report);
  }
}

function setLive(up: boolean): void {
  liveDot.className = `live ${up ? "on" : "off"}`;
  setText(liveDot, up ? "live" : "reconnecting…");
}

function report(err: unknown): void {
  toast(err instanceof ApiError ? `${err.message} [${err.code}]` : `cannot read the admin API: ${String(err)}`, "error");
}

async function main(): Promise<void> {
  addLog({ time: Date.now(), cls: "info", text: "dashboard opened" });
  for (;;) {
    try {
      await refresh();
      break;
    } catch (err) {
      report(err);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  // Start a little back: the recent events fill the log (and only read the state again).
  stream = openEventStream(Math.max(0, state!.last_event_seq - LOG_MAX), { message: onMessage, connected: setLive });
  // Ages of the last checks move on even when nothing else does.
  setInterval(() => {
    for (const r of rows.values()) r.renderCheck();
  }, 1000);
}

void main();
