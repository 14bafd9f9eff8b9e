/**
 * Health-check types. `HealthMonitorSettings` mirrors the config's `healthmonitor` object
 * field for field (snake_case, ELB v3 names), so the schema's output is passed in as is.
 */

export type HealthMonitorType = "TCP" | "HTTP" | "UDP_CONNECT";
export type HealthCheckHttpMethod = "GET" | "HEAD" | "POST";

export interface HealthMonitorSettings {
  type: HealthMonitorType;
  /** Interval between checks, seconds. */
  delay: number;
  /** Per-check timeout, seconds. */
  timeout: number;
  /** Healthy threshold: consecutive passes that bring an offline member online. */
  max_retries: number;
  /** Unhealthy threshold: consecutive failures that take an online member offline. */
  max_retries_down: number;
  /** null = the member's own port. */
  monitor_port: number | null;
  url_path: string;
  expected_codes: string;
  http_method: HealthCheckHttpMethod;
  /** Host header; null = the member address. */
  domain_name: string | null;
  /** TCP only: sent after connect (text with \r \n \xNN escapes); null = nothing. */
  tcp_send: string | null;
  /** TCP only: the reply must start with this within `timeout`; null = connect alone passes. */
  tcp_expect: string | null;
  /** false = no checks: members report NO_MONITOR. */
  admin_state_up: boolean;
}

export type OperatingStatus = "ONLINE" | "OFFLINE" | "NO_MONITOR";

/** Where a probe goes. `port` is the port actually probed (monitor_port already applied). */
export interface ProbeTarget {
  address: string;
  port: number;
  /** Source address for the probe (cross-VPC members use the LB's backend-subnet addresses). */
  localAddress?: string;
}

export interface ProbeOptions {
  /** Bytes sent first on the probe (a PROXY v2 LOCAL header when the pool sends headers). */
  prefix?: Buffer;
  /** Abort ends the probe at once: socket destroyed, result { ok: false, detail: "aborted" }. */
  signal?: AbortSignal;
}

export interface ProbeResult {
  ok: boolean;
  /** Short human text: "connected", "HTTP 404 not in 200-299", "connect ECONNREFUSED". */
  detail: string;
}

/** A prober never rejects, settles within `timeout` (+ small slack), and settles promptly on abort. */
export type Prober = (
  target: ProbeTarget,
  settings: HealthMonitorSettings,
  opts?: ProbeOptions,
) => Promise<ProbeResult>;
