/**
 * The one gate every candidate configuration passes before it runs, whatever its source
 * (start, reload, a member change, `lb4 validate`): schema and cross-field rules, the
 * persisted cross-VPC facts, and what this build can serve. Pure.
 */
import { memberSchema, type Config, type MemberConfig } from "../config/schema.js";
import { unsupportedFeatures } from "../config/support.js";
import { plainDataProblems } from "../config/plain-data.js";
import { checkRules, schemaProblems, validateConfig } from "../config/validate.js";
import { ConfigError, NotSupportedError, type Problem } from "../errors.js";
import { applyOverlay, fromOverlay, type RuntimeState } from "../state/store.js";

export interface GateOptions {
  /** Apply the persisted facts (cross-VPC ever enabled) and name runtime-added members as such. */
  state?: RuntimeState;
  /** Where that state lives, for messages. */
  stateFile?: string;
}

/** Validate a candidate; throws ConfigError (every problem) or NotSupportedError. */
export function gate(candidate: unknown, opts: GateOptions = {}): Config {
  const { state } = opts;
  const r = validateConfig(candidate, state ? { everEnabled: new Set(state.cross_vpc_enabled) } : {});
  if (!r.ok) throw new ConfigError(state ? r.problems.map((p) => nameRuntimeMember(p, candidate, state, opts.stateFile)) : r.problems);
  const unsupported = unsupportedFeatures(r.config);
  if (unsupported.length) throw new NotSupportedError(new ConfigError(unsupported).message);
  return r.config;
}

/** Where a member change lands, and the pool's member list after the edit (raw at `changed`). */
export interface MemberChange {
  lbIndex: number;
  poolIndex: number;
  members: unknown[];
  /** Index of the added or edited member in `members`; -1 for a removal. */
  changed: number;
}

/**
 * The gate for one member change against a running (already valid) config: only the touched
 * member goes through the schema, then every cross-field rule runs on the whole, as
 * validateConfig would. Unchanged objects are shared with `current`, never copied.
 */
export function gateMemberChange(current: Config, change: MemberChange, opts: GateOptions = {}): Config {
  const { lbIndex, poolIndex, changed } = change;
  const members = change.members.slice() as MemberConfig[];
  if (changed >= 0) {
    const at = ["loadbalancers", lbIndex, "pools", poolIndex, "members", changed];
    const unsafe = plainDataProblems(members[changed], at);
    if (unsafe.length) throw new ConfigError(unsafe);
    const parsed = memberSchema.safeParse(members[changed], { reportInput: true });
    if (!parsed.success) throw new ConfigError(schemaProblems(parsed.error, at, memberSchema));
    members[changed] = parsed.data;
  }
  const candidate: Config = {
    ...current,
    loadbalancers: current.loadbalancers.map((lb, li) =>
      li !== lbIndex ? lb : { ...lb, pools: lb.pools.map((p, pi) => (pi !== poolIndex ? p : { ...p, members })) },
    ),
  };
  const { state } = opts;
  const problems = checkRules(candidate, state ? { everEnabled: new Set(state.cross_vpc_enabled) } : {});
  // The member being changed keeps its path: the admin API names it for the caller.
  const own = changed >= 0 ? `loadbalancers[${lbIndex}].pools[${poolIndex}].members[${changed}]` : undefined;
  const name = (p: Problem) => (own && (p.path === own || p.path.startsWith(`${own}.`)) ? p : nameRuntimeMember(p, candidate, state!, opts.stateFile));
  if (problems.length) throw new ConfigError(state ? problems.map(name) : problems);
  const unsupported = unsupportedFeatures(candidate);
  if (unsupported.length) throw new NotSupportedError(new ConfigError(unsupported).message);
  return candidate;
}

/** A base config with the runtime overlay applied, through the gate. */
export function gateWithState(base: Config, state: RuntimeState, stateFile?: string): Config {
  return gate(applyOverlay(base, state), { state, ...(stateFile ? { stateFile } : {}) });
}

const MEMBER_PATH = /^loadbalancers\[(\d+)\]\.pools\[(\d+)\]\.members\[(\d+)\](.*)$/;

/**
 * A problem in a member that came from the runtime overlay names the member by id and says
 * where it comes from: an index into the merged list means nothing to the operator.
 */
function nameRuntimeMember(p: Problem, candidate: unknown, state: RuntimeState, stateFile: string | undefined): Problem {
  const m = MEMBER_PATH.exec(p.path);
  if (!m) return p;
  const c = candidate as { loadbalancers?: Array<{ pools?: Array<{ id?: unknown; members?: Array<{ id?: unknown }> }> }> };
  const pool = c.loadbalancers?.[Number(m[1])]?.pools?.[Number(m[2])];
  const memberId = pool?.members?.[Number(m[3])]?.id;
  if (typeof pool?.id !== "string" || typeof memberId !== "string" || !fromOverlay(state, pool.id, memberId)) return p;
  const where = stateFile ?? "state_dir";
  return {
    ...p,
    path: `pool "${pool.id}" member "${memberId}"${m[4]}`,
    message: `${p.message} (this member was added or changed at runtime and is stored in ${where}; change it through the admin API or remove it there)`,
  };
}
