/**
 * The one schema of SPEC §2: the single source of field types, ranges, enums and defaults.
 * Cross-field rules (references, uniqueness, algorithm combinations, cross-VPC) live in
 * validate.ts, which runs on the parsed result. Field names follow the ELB v3 API.
 */
import { z } from "zod";
import { EXPECTED_CODES_INVALID, validateExpectedCodes } from "../health/expected-codes.js";
import { canonicalIp, canonicalRange, ipFamily } from "../ip.js";
import { escapeProblem } from "../health/tcp-exchange.js";

/** The most worker processes `workers` may ask for. */
export const MAX_WORKERS = 64;

const int = (min: number, max: number) =>
  z
    .number({ error: `must be an integer from ${min} to ${max}` })
    .int({ error: `must be an integer from ${min} to ${max}` })
    .min(min, { error: `must be an integer from ${min} to ${max}` })
    .max(max, { error: `must be an integer from ${min} to ${max}` });

const id = z
  .string({ error: "must be a string id" })
  .min(1, { error: "must not be empty" })
  .max(64, { error: "must be at most 64 characters" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, {
    error: "may hold only letters, digits, '.', '_', ':' and '-', starting with a letter or digit",
  });

/**
 * Addresses are stored in canonical text (src/ip.ts: RFC 5952 IPv6, IPv4-mapped as IPv4),
 * so "fd00::5" and "FD00:0:0::5" are one member, one Maglev key and one lookup result.
 */
function canonical(convert: (s: string) => string | undefined, error: string) {
  return (s: string, ctx: z.RefinementCtx): string => {
    const out = convert(s);
    if (out !== undefined) return out;
    ctx.addIssue({ code: "custom", message: error });
    return z.NEVER;
  };
}

const ipAddress = z
  .string({ error: "must be an IPv4 or IPv6 address" })
  .transform(canonical(canonicalIp, "must be an IPv4 or IPv6 address (no prefix length)"));

const cidr = z
  .string({ error: "must be a CIDR such as 10.0.0.0/16" })
  .transform(canonical((s) => (s.includes("/") ? canonicalRange(s) : undefined), "must be a CIDR such as 10.0.0.0/16 or fd00::/64"));

const ipOrCidr = z
  .string({ error: "must be an address or CIDR" })
  .transform(canonical(canonicalRange, "must be an IPv4/IPv6 address or CIDR"));

const hostPort = z
  .string({ error: "must be host:port, e.g. 127.0.0.1:9870" })
  .refine((s) => splitHostPort(s) !== undefined, {
    error: "must be host:port with an IP address and a port 0-65535, e.g. 127.0.0.1:9870 or [::1]:9870",
  });

/** "127.0.0.1:9870" / "[::1]:9870" → parts; undefined when malformed. */
export function splitHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (port > 65535 || ipFamily(host) === 0) return undefined;
  return { host, port };
}

export const PROTOCOLS = ["TCP", "UDP"] as const;
export const ALGORITHMS = ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"] as const;
export const CLIENT_IP_MODES = ["auto", "off", "toa", "proxy_v1", "proxy_v2"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export const memberSchema = z.strictObject({
  id: id,
  name: z.string().max(255).optional(),
  address: ipAddress,
  protocol_port: int(1, 65535),
  weight: int(0, 100).default(1),
  instance_id: z.string().min(1).max(128).optional(),
  admin_state_up: z.boolean().default(true),
});

export const healthMonitorSchema = z.strictObject({
  id: id.optional(),
  type: z.enum(["TCP", "HTTP", "UDP_CONNECT"], { error: "must be TCP, HTTP or UDP_CONNECT" }),
  delay: int(1, 50).default(5),
  timeout: int(1, 50).default(3),
  max_retries: int(1, 10).default(3),
  max_retries_down: int(1, 10).default(3),
  monitor_port: int(1, 65535).nullable().default(null),
  url_path: z
    .string()
    .min(1)
    .max(80, { error: "must be 1-80 characters" })
    .regex(/^\/[\x21-\x7e]*$/, { error: 'must start with "/" and hold no spaces or control characters' })
    .default("/"),
  // One parser for the schema and the prober: whatever validates is what the check matches.
  expected_codes: z
    .string({ error: 'must be a string such as "200" or "200-299,302"' })
    .superRefine((text, ctx) => {
      const error = validateExpectedCodes(text);
      if (error) ctx.addIssue({ code: "custom", message: error, params: { code: EXPECTED_CODES_INVALID } });
    })
    .default("200"),
  http_method: z.enum(["GET", "HEAD", "POST"], { error: "must be GET, HEAD or POST" }).default("GET"),
  domain_name: z
    .string()
    .max(100)
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, { error: "must be a host name" })
    .nullable()
    .default(null),
  /** TCP only: bytes sent after connect (escapes decoded by health/tcp-exchange.ts). */
  tcp_send: z.string().min(1, { error: "must not be empty; use null to send nothing" }).max(1024, { error: "must be at most 1024 characters" }).superRefine((t, ctx) => { const e = escapeProblem(t); if (e) ctx.addIssue({ code: "custom", message: e }); }).nullable().default(null),
  /** TCP only: the reply must start with these bytes within `timeout`. */
  tcp_expect: z.string().min(1, { error: "must not be empty; use null for no check" }).max(1024, { error: "must be at most 1024 characters" }).superRefine((t, ctx) => { const e = escapeProblem(t); if (e) ctx.addIssue({ code: "custom", message: e }); }).nullable().default(null),
  admin_state_up: z.boolean().default(true),
});

export const poolSchema = z.strictObject({
  id: id,
  name: z.string().max(255).optional(),
  protocol: z.enum(PROTOCOLS, { error: "must be TCP or UDP" }),
  lb_algorithm: z
    .enum(ALGORITHMS, { error: "must be ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP" })
    .default("ROUND_ROBIN"),
  session_persistence: z
    .strictObject({
      type: z.enum(["SOURCE_IP"], { error: "must be SOURCE_IP (the only layer-4 persistence type)" }),
      persistence_timeout: int(1, 60).default(20),
    })
    .nullable()
    .default(null),
  slow_start: z
    .strictObject({ enable: z.boolean().default(false), duration: int(30, 1200).default(30) })
    .prefault({}),
  connection_drain: z
    .strictObject({ enable: z.boolean().default(false), timeout: int(10, 4000).default(300) })
    .prefault({}),
  pool_health: z.strictObject({ minimum_healthy_member_count: int(0, 1).default(0) }).prefault({}),
  client_ip: z
    .enum(CLIENT_IP_MODES, { error: "must be auto, off, toa, proxy_v1 or proxy_v2" })
    .default("auto"),
  healthmonitor: healthMonitorSchema.nullable().default(null),
  members: z.array(memberSchema).default([]),
});

export const listenerSchema = z.strictObject({
  id: id,
  name: z.string().max(255).optional(),
  protocol: z.enum(PROTOCOLS, { error: "must be TCP or UDP" }),
  protocol_port: int(1, 65535),
  default_pool_id: id,
  keepalive_timeout: int(10, 4000).default(300),
  connection_limit: int(0, 10_000_000).default(0),
  admin_state_up: z.boolean().default(true),
  ipgroup: z
    .strictObject({
      type: z.enum(["white", "black"], { error: "must be white or black" }),
      ip_list: z.array(ipOrCidr).max(10_000).default([]),
    })
    .nullable()
    .default(null),
});

export const loadBalancerSchema = z.strictObject({
  id: id,
  name: z.string().max(255).optional(),
  vpc_id: id.nullable().default(null),
  vip_address: ipAddress,
  elb_virsubnet_ids: z.array(id).default([]),
  ip_target_enable: z.boolean().default(false),
  listeners: z.array(listenerSchema).default([]),
  pools: z.array(poolSchema).default([]),
});

export const vpcSchema = z.strictObject({
  id: id,
  cidrs: z.array(cidr).min(1, { error: "needs at least one CIDR" }),
  subnets: z
    .array(
      z.strictObject({
        id: id,
        cidr: cidr,
        used_ips: int(0, 16_777_216).default(0),
      }),
    )
    .default([]),
});

/** An etcd endpoint: http(s)://host:port, no path (SPEC §11). */
const etcdEndpoint = z.string({ error: "must be an etcd endpoint URL, e.g. http://127.0.0.1:2379" }).refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") && u.port !== "" && (u.pathname === "/" || u.pathname === "") && !u.search && !u.hash;
    } catch {
      return false;
    }
  },
  { error: "must be http(s)://host:port with no path, e.g. http://127.0.0.1:2379" },
);

/** Several instances sharing their load balancers through etcd (SPEC §11); absent = standalone. */
export const clusterSchema = z.strictObject({
  etcd: z.array(etcdEndpoint).min(1, { error: "needs at least one etcd endpoint" }).max(16),
  prefix: z
    .string()
    .regex(/^\/[A-Za-z0-9._\-/]*\/$/, { error: 'must start and end with "/" and hold only letters, digits, ".", "_", "-" and "/", e.g. /lb4/prod/' })
    .max(200)
    .default("/lb4/"),
  /** Unique per instance; default: the host name. */
  instance_id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$/, { error: 'must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. the host name)' })
    .optional(),
  /** How other instances and operators reach this instance's admin API; default: admin.listen. */
  advertise: hostPort.optional(),
});

export const configSchema = z.strictObject({
  cluster: clusterSchema.optional(),
  admin: z
    .strictObject({
      listen: hostPort.default("127.0.0.1:9870"),
      token: z.string().min(1, { error: "must not be empty" }).optional(),
      /** Extra Host names the admin API answers to (SPEC §8). */
      allowed_hosts: z.array(z.string().min(1).max(255)).max(64).default([]),
    })
    .optional(),
  state_dir: z.string().min(1).default("./lb4-state"),
  /** Processes serving TCP (SPEC §10): auto = one per core; 1 = one process, as before. */
  workers: z.union([z.literal("auto"), int(1, MAX_WORKERS)], { error: `must be "auto" or an integer from 1 to ${MAX_WORKERS}` }).default("auto"),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
    })
    .prefault({}),
  vpcs: z.array(vpcSchema).default([]),
  loadbalancers: z.array(loadBalancerSchema).default([]),
});

/** A complete, defaulted, validated configuration. */
export type Config = z.output<typeof configSchema>;
/** What a user may write (defaults optional). */
export type ConfigInput = z.input<typeof configSchema>;
export type LoadBalancerConfig = Config["loadbalancers"][number];
export type ListenerConfig = LoadBalancerConfig["listeners"][number];
export type PoolConfig = LoadBalancerConfig["pools"][number];
export type MemberConfig = PoolConfig["members"][number];
export type MemberInput = z.input<typeof memberSchema>;
export type HealthMonitorConfig = NonNullable<PoolConfig["healthmonitor"]>;
export type VpcConfig = Config["vpcs"][number];
export type ClusterConfig = NonNullable<Config["cluster"]>;
export type Protocol = (typeof PROTOCOLS)[number];
export type ClientIpMode = (typeof CLIENT_IP_MODES)[number];
