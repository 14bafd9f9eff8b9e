/**
 * validateConfig(): the single gate every configuration passes, whether it comes from a
 * file, a reload or a member change through the API (which builds a candidate config and
 * validates it whole). Returns every problem at once, each with its field path.
 */
import type { z } from "zod";
import { CONFIG_INVALID, ConfigError, UNKNOWN_FIELD, type Problem } from "../errors.js";
import { checkCrossVpc, type CrossVpcContext } from "../crossvpc/rules.js";
import { isLoopback } from "../ip.js";
import { memberKey } from "../model/member.js";
import { formatPath, plainDataProblems } from "./plain-data.js";
import { configSchema, splitHostPort, type Config } from "./schema.js";
import { knownFields, nearestField } from "./suggest.js";

export type ValidationContext = CrossVpcContext;

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: Problem[] };

export { formatPath };

/** Where unknown-field messages send the reader (SPEC is not shipped; the README is). */
const FIELD_DOCS = "README.md lists the fields";

function unknownField(root: z.ZodType | undefined, at: readonly PropertyKey[], key: string): string {
  const known = root ? knownFields(root, at) : undefined;
  if (!known) return `unknown field; ${FIELD_DOCS}`;
  const near = nearestField(key, known);
  if (near) return `unknown field; did you mean \`${near}\`? (${FIELD_DOCS})`;
  return `unknown field; this object takes ${known.join(", ")} (${FIELD_DOCS})`;
}

/**
 * zod issues as Problems, each with a code: LB4.UNKNOWN_FIELD, a rule's own code carried in
 * a custom issue's params (e.g. LB4.HEALTH_EXPECTED_CODES_INVALID), else LB4.CONFIG_INVALID.
 * `root` is the schema that was parsed, for "did you mean" (none without it).
 */
function zodProblems(error: z.ZodError, root?: z.ZodType): Problem[] {
  const out: Problem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...issue.path, key]), message: unknownField(root, issue.path, key), code: UNKNOWN_FIELD });
      }
      continue;
    }
    if (issue.code === "invalid_type" && issue.input === undefined) {
      out.push({ path: formatPath(issue.path), message: "is required", code: CONFIG_INVALID });
      continue;
    }
    const own = issue.code === "custom" ? (issue.params as { code?: unknown } | undefined)?.code : undefined;
    out.push({ path: formatPath(issue.path), message: issue.message, code: typeof own === "string" ? own : CONFIG_INVALID });
  }
  return out;
}

export function validateConfig(input: unknown, ctx: ValidationContext = {}): ValidationResult {
  // Before zod reads it: an inherited field would read as set (an object from anywhere:
  // a file, startLoadBalancer, an admin change).
  const unsafe = plainDataProblems(input);
  if (unsafe.length) return { ok: false, problems: unsafe };
  // reportInput: tell a missing field ("is required") from one of the wrong type.
  const parsed = configSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) return { ok: false, problems: zodProblems(parsed.error, configSchema) };
  const problems = checkRules(parsed.data, ctx);
  return problems.length ? { ok: false, problems } : { ok: true, config: parsed.data };
}

/**
 * The rules that span fields, on a config whose every object already passed the schema. A
 * member change re-parses only the member it touches and then runs these on the whole.
 */
export function checkRules(config: Config, ctx: ValidationContext = {}): Problem[] {
  const problems = checkReferences(config);
  problems.push(...checkCrossVpc(config, ctx));
  return problems;
}

/** Schema problems of a value parsed with a sub-schema, with paths below `at`; pass that `schema` for "did you mean". */
export function schemaProblems(error: z.ZodError, at: readonly PropertyKey[], schema?: z.ZodType): Problem[] {
  return zodProblems(error, schema).map((p) => ({ ...p, path: formatPath(at) + (p.path ? (p.path.startsWith("[") ? p.path : `.${p.path}`) : "") }));
}

/** validateConfig() that throws ConfigError listing every problem. */
export function parseConfig(input: unknown, ctx: ValidationContext = {}): Config {
  const r = validateConfig(input, ctx);
  if (!r.ok) throw new ConfigError(r.problems);
  return r.config;
}

/** An id that names nothing (VPC, subnet, pool). */
const UNKNOWN_REFERENCE = "LB4.UNKNOWN_REFERENCE";
/** Two settings that do not go together (persistence with SOURCE_IP, UDP_CONNECT on TCP, …). */
const INVALID_COMBINATION = "LB4.INVALID_COMBINATION";

/** Rules that span fields: references, uniqueness and combinations of SPEC §2–§4. */
function checkReferences(config: Config): Problem[] {
  const problems: Problem[] = [];
  const add = (path: string, message: string, code: string = CONFIG_INVALID) => problems.push({ path, message, code });

  if (config.admin && !config.admin.token) {
    const hp = splitHostPort(config.admin.listen);
    if (hp && !isLoopback(hp.host)) {
      add("admin.token", `is required when admin.listen (${config.admin.listen}) is not a loopback address`, "LB4.ADMIN_TOKEN_REQUIRED");
    }
  }

  // Paths are built only for a problem: a member change re-runs these rules over every member.
  type Path = string | (() => string);
  const text = (p: Path) => (typeof p === "string" ? p : p());
  const seen = new Map<string, Map<string, Path>>();
  const unique = (kind: string, id: string, path: Path) => {
    let ids = seen.get(kind);
    if (!ids) seen.set(kind, (ids = new Map()));
    const first = ids.get(id);
    if (first) add(`${text(path)}.id`, `duplicate ${kind} id "${id}" (first used at ${text(first)}); ids are unique per kind`, "LB4.DUPLICATE_ID");
    else ids.set(id, path);
  };

  config.vpcs.forEach((vpc, vi) => {
    unique("vpc", vpc.id, `vpcs[${vi}]`);
    vpc.subnets.forEach((s, si) => unique("subnet", s.id, `vpcs[${vi}].subnets[${si}]`));
  });

  const bound = new Map<string, string>();
  config.loadbalancers.forEach((lb, li) => {
    const at = `loadbalancers[${li}]`;
    unique("loadbalancer", lb.id, at);
    const vpc = lb.vpc_id === null ? undefined : config.vpcs.find((v) => v.id === lb.vpc_id);
    if (lb.vpc_id !== null && !vpc) add(`${at}.vpc_id`, `names VPC "${lb.vpc_id}", which is not in vpcs`, UNKNOWN_REFERENCE);
    lb.elb_virsubnet_ids.forEach((sid, si) => {
      if (!vpc) {
        add(`${at}.elb_virsubnet_ids[${si}]`, "backend subnets need the load balancer's vpc_id", UNKNOWN_REFERENCE);
      } else if (!vpc.subnets.some((s) => s.id === sid)) {
        add(`${at}.elb_virsubnet_ids[${si}]`, `subnet "${sid}" is not a subnet of VPC "${vpc.id}"`, UNKNOWN_REFERENCE);
      }
    });

    const pools = new Map(lb.pools.map((p) => [p.id, p]));
    lb.listeners.forEach((ls, i) => {
      const lp = `${at}.listeners[${i}]`;
      unique("listener", ls.id, lp);
      const where = `${ls.protocol} ${lb.vip_address}:${ls.protocol_port}`;
      const other = bound.get(where);
      if (other) add(`${lp}.protocol_port`, `${where} is already used by ${other}; a TCP and a UDP listener may share a number, two of one protocol may not`, "LB4.DUPLICATE_LISTENER");
      else bound.set(where, lp);
      const pool = pools.get(ls.default_pool_id);
      if (!pool) {
        add(`${lp}.default_pool_id`, `pool "${ls.default_pool_id}" is not a pool of load balancer "${lb.id}"`, UNKNOWN_REFERENCE);
      } else if (pool.protocol !== ls.protocol) {
        add(`${lp}.default_pool_id`, `pool "${pool.id}" is ${pool.protocol} but the listener is ${ls.protocol}; they must match`, "LB4.PROTOCOL_MISMATCH");
      }
    });

    lb.pools.forEach((pool, pi) => {
      const pp = `${at}.pools[${pi}]`;
      unique("pool", pool.id, pp);
      if (pool.session_persistence && pool.lb_algorithm === "SOURCE_IP") {
        add(`${pp}.session_persistence`, "is not allowed with SOURCE_IP, which is sticky already; use ROUND_ROBIN or LEAST_CONNECTIONS, or remove it", INVALID_COMBINATION);
      }
      if (pool.slow_start.enable && pool.lb_algorithm !== "ROUND_ROBIN") {
        add(`${pp}.slow_start.enable`, `slow start works with ROUND_ROBIN only; the pool uses ${pool.lb_algorithm}`, INVALID_COMBINATION);
      }
      const hm = pool.healthmonitor;
      if (hm) {
        if (pool.protocol === "UDP" && hm.type !== "UDP_CONNECT") {
          add(`${pp}.healthmonitor.type`, "UDP pools are checked with UDP_CONNECT only", INVALID_COMBINATION);
        }
        if (pool.protocol === "TCP" && hm.type === "UDP_CONNECT") {
          add(`${pp}.healthmonitor.type`, "UDP_CONNECT is for UDP pools; use TCP or HTTP", INVALID_COMBINATION);
        }
        // tcp_expect alone is fine (the server speaks first: SMTP, SSH); tcp_send alone just sends.
        for (const f of ["tcp_send", "tcp_expect"] as const) {
          if (hm[f] !== null && hm.type !== "TCP") add(`${pp}.healthmonitor.${f}`, `is for TCP health checks only; this monitor is ${hm.type} (remove it or use type: TCP)`);
        }
      }
      if (pool.protocol === "UDP" && (pool.client_ip === "toa" || pool.client_ip === "proxy_v1")) {
        add(`${pp}.client_ip`, `${pool.client_ip} is a stream header; UDP pools take off, auto or proxy_v2`, INVALID_COMBINATION);
      }
      // Addresses are canonical (the schema's one spelling), so address + port is the endpoint.
      const endpoints = new Map<string, Map<number, number>>();
      pool.members.forEach((m, mi) => {
        const mp = () => `${pp}.members[${mi}]`;
        unique("member", m.id, mp);
        let ports = endpoints.get(m.address);
        if (!ports) endpoints.set(m.address, (ports = new Map()));
        const first = ports.get(m.protocol_port);
        if (first !== undefined) {
          add(`${mp()}.address`, `${memberKey(m.address, m.protocol_port)} is already member ${pp}.members[${first}]; a backend joins a pool once`, "LB4.DUPLICATE_MEMBER");
        } else ports.set(m.protocol_port, mi);
      });
    });
  });
  return problems;
}
