/**
 * Reading a config file: YAML or JSON by extension, `${ENV}` interpolation, relative paths
 * resolved against the file's folder. I/O at the edge; validation is validate.ts.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, type Problem } from "../errors.js";
import { formatPath, MAX_NESTING, plainDataProblems, TOO_DEEP } from "./plain-data.js";
import { validateConfig, type ValidationContext } from "./validate.js";
import type { Config } from "./schema.js";

/**
 * Replace `${NAME}` in every string of a parsed document; unset variables are problems.
 * The document must be plain data first (config/plain-data.ts; else its problems, and
 * undefined); the copy is built from objects without a prototype.
 */
export function interpolateEnv(
  value: unknown,
  env: Record<string, string | undefined>,
  problems: Problem[],
  at: PropertyKey[] = [],
): unknown {
  const unsafe = plainDataProblems(value, at);
  if (unsafe.length) {
    problems.push(...unsafe);
    return undefined;
  }
  return interpolate(value, env, problems, at);
}

function interpolate(value: unknown, env: Record<string, string | undefined>, problems: Problem[], at: PropertyKey[]): unknown {
  if (typeof value === "string") {
    // A value that is exactly one placeholder takes the variable's YAML scalar type, so
    // `protocol_port: ${PORT}` gives a number; inside longer text it stays text.
    const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value);
    if (whole) {
      const v = env[whole[1]!];
      if (v !== undefined) {
        const scalar: unknown = parseYaml(v);
        return typeof scalar === "number" || typeof scalar === "boolean" ? scalar : v;
      }
    }
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push({ path: formatPath(at), message: `environment variable ${name} is not set; export it or remove \${${name}}`, code: "LB4.ENV_UNSET" });
        return "";
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, [...at, i]));
  if (value && typeof value === "object") {
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, problems, [...at, k]);
    return out;
  }
  return value;
}

/** Parse file text into a plain document (not validated). */
export function parseDocument(text: string, file: string): unknown {
  const ext = path.extname(file).toLowerCase();
  try {
    if (ext === ".json") return JSON.parse(text);
    if (ext === ".yaml" || ext === ".yml") return parseYaml(text, { prettyErrors: true });
  } catch (err) {
    // The YAML parser recurses: a document nested some hundreds deep exhausts its stack.
    if (err instanceof RangeError || /Maximum call stack size exceeded/.test((err as Error).message)) {
      throw new ConfigError([{ path: "", message: `${file} nests too deep to read; lb4 accepts ${MAX_NESTING} levels of objects and lists`, code: TOO_DEEP }], "config file");
    }
    throw new ConfigError([{ path: "", message: `${file} is not valid ${ext === ".json" ? "JSON" : "YAML"}: ${(err as Error).message}`, code: "LB4.CONFIG_SYNTAX" }], "config file");
  }
  throw new ConfigError([{ path: "", message: `${file}: use a .yaml, .yml or .json file`, code: "LB4.CONFIG_FILE_TYPE" }], "config file");
}

export interface LoadedConfig {
  config: Config;
  file: string;
}

/** Read, interpolate, validate; throws ConfigError naming every problem. */
export async function loadConfigFile(
  file: string,
  opts: { env?: Record<string, string | undefined>; ctx?: ValidationContext } = {},
): Promise<LoadedConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (err) {
    throw new ConfigError([{ path: "", message: `cannot read ${abs}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, code: "LB4.CONFIG_UNREADABLE" }], "config file");
  }
  const config = resolveDocument(parseDocument(text, abs), path.dirname(abs), opts);
  return { config, file: abs };
}

/** Interpolate and validate a document; `baseDir` anchors relative paths. */
export function resolveDocument(
  doc: unknown,
  baseDir: string,
  opts: { env?: Record<string, string | undefined>; ctx?: ValidationContext } = {},
): Config {
  const problems: Problem[] = [];
  const interpolated = interpolateEnv(doc ?? {}, opts.env ?? process.env, problems);
  if (problems.length) throw new ConfigError(problems);
  const r = validateConfig(interpolated, opts.ctx);
  if (!r.ok) throw new ConfigError(r.problems);
  r.config.state_dir = path.resolve(baseDir, r.config.state_dir);
  return r.config;
}
