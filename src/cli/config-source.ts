/**
 * Where `lb4 start` and `lb4 validate` read their config (SPEC §13): `--config FILE` when
 * given; else the YAML text in `LB4_CONFIG` when it is set (the container way of passing a
 * config without a volume); else `/etc/lb4/lb4.yaml`. A reload (SIGHUP, `lb4 reload`) reads
 * the same source again.
 */
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { CommanderError } from "commander";
import { StateStore } from "../state/store.js";
import { interpolateEnv, loadConfigFile, parseDocument, resolveDocument, type LoadedConfig } from "../config/load.js";
import { configSchema } from "../config/schema.js";
import type { ValidationContext } from "../config/validate.js";
import { ConfigError } from "../errors.js";

export const CONFIG_ENV = "LB4_CONFIG";
export const DEFAULT_CONFIG_FILE = "/etc/lb4/lb4.yaml";

export type ConfigSource =
  | { kind: "file"; file: string }
  /** YAML (or JSON) text; relative paths resolve against `baseDir` (the working directory). */
  | { kind: "env"; text: string; baseDir: string };

/** How a source is named in messages and the start log line. */
export function sourceLabel(src: ConfigSource): string {
  return src.kind === "file" ? path.resolve(src.file) : `$${CONFIG_ENV}`;
}

/**
 * The source for a command: `--config` wins, then a non-empty LB4_CONFIG, then the default
 * file if it exists. Nothing at all is a usage error (exit 2) that says the three ways.
 */
export async function configSource(flag: string | undefined, env: Record<string, string | undefined> = process.env): Promise<ConfigSource> {
  if (flag !== undefined) return { kind: "file", file: flag };
  const text = env[CONFIG_ENV];
  if (text !== undefined && text.trim() !== "") return { kind: "env", text, baseDir: process.cwd() };
  try {
    await access(DEFAULT_CONFIG_FILE);
  } catch {
    throw new CommanderError(
      2,
      "lb4.usage",
      `no config: pass --config FILE, set ${CONFIG_ENV} to the YAML text, or put the file at ${DEFAULT_CONFIG_FILE} (lb4 init --out FILE writes a starter)`,
    );
  }
  return { kind: "file", file: DEFAULT_CONFIG_FILE };
}

/** The LB4_CONFIG text parsed as YAML (JSON is YAML too); a syntax error names the variable, not a file. */
function parseEnvText(text: string): unknown {
  const virtual = `${CONFIG_ENV}.yaml`;
  try {
    return parseDocument(text, virtual);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(
      err.problems.map((p) => ({ ...p, message: p.message.replace(virtual, `the ${CONFIG_ENV} environment variable`) })),
      "configuration",
    );
  }
}

/** Read, interpolate and validate a source: the same rules as a file (`${ENV}` placeholders included). */
export async function loadSource(src: ConfigSource, opts: { env?: Record<string, string | undefined>; ctx?: ValidationContext } = {}): Promise<LoadedConfig> {
  if (src.kind === "file") return loadConfigFile(src.file, opts);
  return { config: resolveDocument(parseEnvText(src.text), src.baseDir, opts), file: sourceLabel(src) };
}

/**
 * The source's document with `${ENV}` replaced, not validated; undefined when it does not
 * parse (loadSource says why). For what must work on an invalid file: finding its state_dir
 * and admin address.
 */
export async function rawDocument(src: ConfigSource): Promise<Record<string, unknown> | undefined> {
  try {
    const doc = src.kind === "file" ? parseDocument(await readFile(path.resolve(src.file), "utf8"), path.resolve(src.file)) : parseEnvText(src.text);
    const out = interpolateEnv(doc, process.env, []);
    return out !== null && typeof out === "object" && !Array.isArray(out) ? (out as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** state_dir of a source before it is validated (state decides some of its rules). */
export async function stateDirOf(src: ConfigSource): Promise<string> {
  const base = src.kind === "file" ? path.dirname(path.resolve(src.file)) : src.baseDir;
  const dir = (await rawDocument(src))?.state_dir;
  return path.resolve(base, typeof dir === "string" && dir !== "" ? dir : configSchema.shape.state_dir.parse(undefined));
}

/** The persisted facts that apply to the file itself (cross-VPC ever enabled), as lb4 validate applies them. */
export async function stateContext(src: ConfigSource): Promise<ValidationContext> {
  const state = await new StateStore(await stateDirOf(src)).load();
  return { everEnabled: new Set(state.cross_vpc_enabled) };
}
