/**
 * `lb4` command line (commander). Every subcommand has complete --help; every error says
 * what was wrong and what to do. Exit codes: 0 ok, 1 failure (invalid config, cannot
 * start, request refused), 2 usage error.
 */
import { Command, CommanderError, Option } from "commander";
import { MAX_WORKERS, type Config } from "../config/schema.js";
import { gateWithState } from "../control/gate.js";
import { StateStore, memberChangeCount, type RuntimeState } from "../state/store.js";
import { memberKey } from "../model/member.js";
import { unsupportedFeatures } from "../config/support.js";
import { CONFIG_INVALID, ConfigError, Lb4Error, formatProblem, type Problem } from "../errors.js";
import { startLoadBalancer, type LoadBalancerHandle, type ReloadChanges } from "../engine.js";
import { createLogger, flushAndExit } from "../log.js";
import { startAdminServer, type AdminServer } from "../admin/server.js";
import { createMetrics } from "../metrics/registry.js";
import { CONFIG_ENV, DEFAULT_CONFIG_FILE, configSource, loadSource, sourceLabel, stateContext, stateDirOf, type ConfigSource } from "./config-source.js";
import { printJson } from "./format.js";
import { runDemo } from "./demo.js";
import { registerInit } from "./init.js";
import { registerState } from "./state.js";
import { claimPidFile, pidFileOf } from "./pidfile.js";
import { registerMembers } from "./members.js";
import { registerReload, registerStatus } from "./status.js";
import { describeDataplane } from "../platform/dataplane-path.js";
import { workerCount, type WorkersSetting } from "../workers/count.js";
import { VERSION } from "../version.js";
import { registerCluster } from "./cluster.js";

const program = new Command();

program
  .name("lb4")
  .description("Layer-4 TCP/UDP load balancer: weighted scheduling, health checks, slow start, drain, cross-VPC backends.")
  .version(VERSION)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

program
  .command("start")
  .description(
    "Run the load balancer in the foreground. Logs JSON lines to stdout (pretty on a terminal). " +
      `The config is --config FILE; without it, the YAML text in ${CONFIG_ENV} when that is set, else ${DEFAULT_CONFIG_FILE}.`,
  )
  .option("-c, --config <file>", `config file (.yaml, .yml or .json); default: $${CONFIG_ENV} (YAML text) if set, else ${DEFAULT_CONFIG_FILE}`)
  .addOption(new Option("--grace <seconds>", "on SIGTERM/SIGINT, how long open connections may finish before they are closed").default(10).argParser(parsePositive))
  .addOption(new Option("--workers <auto|N>", `worker processes serving TCP, 1-${MAX_WORKERS} or auto (one per core); overrides the config's workers (default auto)`).argParser(parseWorkers))
  .addHelpText(
    "after",
    `
Workers (SPEC §10): with 2 or more, this process is the primary (config, admin API, health
checks, UDP) and the workers accept TCP connections; limits, persistence, metrics and status
hold for the whole instance. --workers 1 runs everything in one process.

Signals:
  SIGTERM, SIGINT   stop accepting, let connections finish for --grace seconds, exit 0
  SIGHUP            reload the config (the same file, or ${CONFIG_ENV} again); an invalid one is refused and the running config stays

While it runs, state_dir/lb4.pid holds its pid (lb4 state reset refuses to run then).
With ${CONFIG_ENV}, relative paths (state_dir) resolve against the working directory.

Examples:
  lb4 start --config lb4.yaml
  LB4_CONFIG="$(cat lb4.yaml)" lb4 start      (the container way: no file needed)`,
  )
  .action(async (opts: { config?: string; grace: number; workers?: WorkersSetting }) => {
    const src = await configSource(opts.config);
    const { config, file } = await loadSource(src, { ctx: await stateContext(src) });
    const workers = workerCount(opts.workers ?? config.workers);
    // Workers write to the same stdout: every write is whole lines of at most PIPE_BUF bytes.
    const logger = createLogger(config.log.level, { atomic: workers >= 2 });
    let handle: LoadBalancerHandle;
    try {
      handle = await startLoadBalancer(config, { logger, persistState: true, workers, tuning: { shutdownGraceMs: opts.grace * 1000 } });
    } catch (err) {
      logger.flush();
      throw err;
    }

    // One reload for SIGHUP, `lb4 reload` and POST /v3/elb/reload: re-read the file, apply it as a
    // diff. The engine logs and counts its own refusals; a file that does not load is logged and
    // counted here, so lb4_reloads_total{result="failed"} sees every refused reload.
    const reload = async (source: "SIGHUP" | "admin API"): Promise<ReloadChanges> => {
      let next: typeof config;
      try {
        next = (await loadSource(src, { ctx: await stateContext(src) })).config;
      } catch (err) {
        handle.engine.reloads.failed++;
        logger.warn(
          { ev: "reload_failed", source, err: (err as Error).message, ...(err instanceof ConfigError ? { problems: err.problems } : {}) },
          "reload refused; the running configuration stays",
        );
        throw err;
      }
      const changes = await handle.reload(next);
      if (JSON.stringify(next.admin ?? null) !== JSON.stringify(config.admin ?? null)) {
        logger.warn({ ev: "admin_config_changed" }, "admin settings changed in the config file; restart lb4 to apply them (the admin API keeps its current address and token)");
      }
      return changes;
    };

    let admin: AdminServer | undefined;
    if (config.admin) {
      try {
        admin = await startAdminServer({
          engine: handle.engine,
          listen: config.admin.listen,
          token: config.admin.token,
          allowedHosts: config.admin.allowed_hosts,
          advertise: config.cluster?.advertise,
          logger,
          reload: () => reload("admin API"),
          metrics: createMetrics(handle.engine).scrape,
        });
      } catch (err) {
        await handle.close({ graceMs: 0 });
        logger.flush();
        throw err;
      }
    }
    // After everything is bound: a start that fails leaves no pid file behind.
    try {
      const pid = await claimPidFile(config.state_dir);
      if (pid.other !== undefined) {
        logger.warn({ ev: "state_dir_shared", pid: pid.other, state_dir: config.state_dir }, `another lb4 (pid ${pid.other}) uses ${config.state_dir}; two instances on one state_dir overwrite each other's runtime changes`);
      }
    } catch (err) {
      logger.warn({ ev: "pid_file_failed", err: (err as Error).message }, `cannot write ${pidFileOf(config.state_dir)}; lb4 state reset will not see that lb4 runs`);
    }
    const adminUrl = admin ? `http://${admin.address.host.includes(":") ? `[${admin.address.host}]` : admin.address.host}:${admin.address.port}` : undefined;
    const listeners = config.loadbalancers.flatMap((lb) => lb.listeners.map((l) => `${l.protocol} ${memberKey(lb.vip_address, l.protocol_port)} (${lb.id}/${l.id})`));
    logger.info(
      { ev: "start", config: file, listeners, dataplane: describeDataplane(), workers, ...(adminUrl ? { admin: adminUrl, admin_auth: config.admin?.token ? "token" : "none (loopback only)" } : {}) },
      `lb4 started: ${listeners.length} listener(s)${adminUrl ? `; admin API on ${adminUrl}` : ""}`,
    );

    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      // Workers report now and then: ask them, so the line says what is open (bounded wait).
      await handle.engine.refreshCounters().catch(() => undefined);
      logger.info({ ev: "stop", signal, active: handle.activeConnections(), grace_s: opts.grace }, "stopping: no new connections, letting open ones finish");
      // Exit 0 within grace + 2 s whatever the clients, the admin API or the log reader do (SPEC §5).
      setTimeout(() => flushAndExit(logger, 0, 500), opts.grace * 1000 + 1200).unref();
      await Promise.all([admin?.close(), handle.close({ graceMs: opts.grace * 1000 })]);
      logger.info({ ev: "stopped" }, "lb4 stopped");
      flushAndExit(logger, 0, 1500);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGHUP", () => {
      reload("SIGHUP").catch(() => undefined); // refusals are logged where they happen
    });
  });

program
  .command("validate")
  .description(
    "Check a config file as `lb4 start` would: with the runtime state under its state_dir (members changed through the admin API, " +
      "load balancers whose cross-VPC switch was ever on). Print every problem with its field path and code. Exit 0 when valid, 1 otherwise.",
  )
  .option("-c, --config <file>", `config file (.yaml, .yml or .json); default: what lb4 start reads ($${CONFIG_ENV} if set, else ${DEFAULT_CONFIG_FILE})`)
  .option("--no-state", "check the file alone, without the runtime state under state_dir")
  .option("--json", "print the result as JSON: {valid, file, problems: [{path, message, code}], summary, state, notes}; exit codes unchanged")
  .addHelpText(
    "after",
    "\nExamples:\n  lb4 validate --config lb4.yaml\n  lb4 validate --config lb4.yaml --no-state\n  lb4 validate --config lb4.yaml --json   (for scripts and CI)\n" +
      "  lb4 validate                 (in the container: checks what lb4 start would run)",
  )
  .action(async (opts: { config?: string; state: boolean; json?: boolean }) => {
    const src = await configSource(opts.config);
    if (opts.json) return validateJson(src, opts.state);
    const { config, file, stateNote } = await validateFile(src, opts.state);
    const n = summarize(config);
    console.log(`${file}: valid (${n.loadbalancers} load balancer(s), ${n.listeners} listener(s), ${n.pools} pool(s), ${n.members} member(s))`);
    console.log(stateNote);
    for (const p of validateNotes(config)) console.log(`note: ${formatProblem(p)}`);
  });

/** What `lb4 validate` adds to a valid file: features this build does not serve, and where a cluster's load balancers really live. */
function validateNotes(config: Config): Problem[] {
  const notes = unsupportedFeatures(config);
  if (config.cluster) {
    notes.push({
      path: "loadbalancers",
      code: "LB4.CLUSTER_STORE",
      message: `with cluster:, etcd holds the load balancers (${config.cluster.etcd.join(",")} under ${config.cluster.prefix}); this file's seed an empty store, lb4 cluster push writes them, and lb4 start ignores them otherwise`,
    });
  }
  return notes;
}

/** What a valid config holds, counted (the text line and the JSON summary). */
function summarize(config: Config): { loadbalancers: number; listeners: number; pools: number; members: number } {
  const lbs = config.loadbalancers;
  const count = (f: (lb: (typeof lbs)[number]) => number) => lbs.reduce((n, lb) => n + f(lb), 0);
  return {
    loadbalancers: lbs.length,
    listeners: count((lb) => lb.listeners.length),
    pools: count((lb) => lb.pools.length),
    members: count((lb) => lb.pools.reduce((n, p) => n + p.members.length, 0)),
  };
}

/** The runtime state `lb4 validate` applies, and the sentence saying which. */
interface StateUsed {
  note: string;
  state?: RuntimeState;
  file?: string;
}

async function stateUsed(src: ConfigSource, withState: boolean): Promise<StateUsed> {
  if (!withState) return { note: "checked the file alone (--no-state); lb4 start also applies the runtime state under state_dir" };
  const store = new StateStore(await stateDirOf(src));
  const state = await store.load();
  const changes = memberChangeCount(state);
  const facts = state.cross_vpc_enabled.length ? `; cross-VPC ever enabled on ${state.cross_vpc_enabled.join(", ")}` : "";
  const note =
    changes === 0 && facts === ""
      ? `no runtime state in ${store.dir}: the file alone decides`
      : `checked with the runtime state in ${store.file}: ${changes} member change(s)${facts}`;
  return { note, state, file: store.file };
}

/**
 * The file through the same gate as `lb4 start`: the persisted cross-VPC facts apply to the
 * file itself, then the runtime member overlay goes on top.
 */
async function validateFile(src: ConfigSource, withState: boolean, used?: StateUsed): Promise<{ config: Config; file: string; stateNote: string }> {
  const st = used ?? (await stateUsed(src, withState));
  if (!st.state) return { ...(await loadSource(src)), stateNote: st.note };
  const loaded = await loadSource(src, { ctx: { everEnabled: new Set(st.state.cross_vpc_enabled) } });
  const config = gateWithState(loaded.config, st.state, st.file!);
  return { config, file: loaded.file, stateNote: st.note };
}

/** `lb4 validate --json`: one JSON document on stdout whatever the outcome; exit 1 when invalid. */
async function validateJson(src: ConfigSource, withState: boolean): Promise<void> {
  let st: StateUsed | undefined;
  try {
    st = await stateUsed(src, withState);
    const { config, file, stateNote } = await validateFile(src, withState, st);
    printJson({ valid: true, file, problems: [], summary: summarize(config), state: stateNote, notes: validateNotes(config) });
  } catch (err) {
    if (!(err instanceof Lb4Error)) throw err;
    const problems: readonly Problem[] = err instanceof ConfigError ? err.problems : [{ path: "", message: err.message, code: err.code }];
    printJson({
      valid: false,
      file: sourceLabel(src),
      problems: problems.map((p) => ({ path: p.path, message: p.message, code: p.code ?? CONFIG_INVALID })),
      summary: null,
      state: st?.note ?? null,
      notes: [],
    });
    process.exitCode = 1;
  }
}

program
  .command("demo")
  .description("Start local demo backends and a load balancer in front of them on loopback, with its admin API, and print what to type to watch traffic being balanced and change it.")
  .addOption(new Option("--port <port>", "TCP and UDP port of the demo load balancer (0 = any free port)").default(8080).argParser(parsePort))
  .addOption(new Option("--admin-port <port>", "port of the demo's admin API on 127.0.0.1, no token (default 9870, or any free port when that is taken; 0 = any free port)").argParser(parsePort))
  .addOption(new Option("--log-level <level>", "log level").default("info").choices(["fatal", "error", "warn", "info", "debug", "silent"]))
  .addHelpText(
    "after",
    "\nExamples:\n  npm start          (same as: lb4 demo)\n  lb4 demo --port 0  (any free port)\n\n" +
      "The demo also serves the admin API (status, members, reload, /metrics) on loopback without a token, so\n" +
      "  lb4 status\n  lb4 members list --pool pool-web\nwork against it in another terminal. A reload applies the demo's built-in config again.",
  )
  .action(async (opts: { port: number; adminPort?: number; logLevel: "info" }) => {
    await runDemo({ port: opts.port, adminPort: opts.adminPort, logLevel: opts.logLevel });
  });

registerInit(program);
registerStatus(program);
registerMembers(program);
registerReload(program);
registerState(program);
registerCluster(program);

function parseWorkers(v: string): WorkersSetting {
  if (v === "auto") return "auto";
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new CommanderError(2, "lb4.usage", `--workers: expected auto or an integer from 1 to ${MAX_WORKERS}, got "${v}"`);
  return n;
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CommanderError(2, "lb4.usage", `expected a number of seconds ≥ 0, got "${v}"`);
  return n;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CommanderError(2, "lb4.usage", `expected a port 0-65535, got "${v}"`);
  return n;
}

/** Print an error the way an operator can act on, and pick the exit code. */
function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
    // "commander.help" with a non-zero exit code: help shown because a subcommand is missing
    // (`lb4`, `lb4 members`), a usage error; with 0 it was asked for (`lb4 help members`).
    if (err.code === "commander.help") return err.exitCode === 0 ? 0 : 2;
    if (err.code === "lb4.usage") console.error(`lb4: ${err.message}`);
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof ConfigError) {
    console.error(`lb4: ${err.message}`);
    return 1;
  }
  if (err instanceof Lb4Error) {
    console.error(`lb4: ${err.message} [${err.code}]`);
    return 1;
  }
  console.error(`lb4: ${(err as Error)?.stack ?? String(err)}`);
  return 1;
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.exitCode = reportError(err);
});
