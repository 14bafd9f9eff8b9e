/**
 * `lb4` command line (commander). Every subcommand has complete --help; every error says
 * what was wrong and what to do. Exit codes: 0 ok, 1 failure (invalid config, cannot
 * start, request refused), 2 usage error.
 */
import { Command, CommanderError, Option } from "commander";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { interpolateEnv, loadConfigFile, parseDocument } from "../config/load.js";
import { configSchema, type Config } from "../config/schema.js";
import { gateWithState } from "../control/gate.js";
import { StateStore } from "../state/store.js";
import { memberKey } from "../model/member.js";
import { unsupportedFeatures } from "../config/support.js";
import { ConfigError, Lb4Error, formatProblem } from "../errors.js";
import { startLoadBalancer, type LoadBalancerHandle } from "../engine.js";
import { createLogger, flushAndExit } from "../log.js";
import { startAdminServer, type AdminServer } from "../admin/server.js";
import { createMetrics } from "../metrics/registry.js";
import { runDemo } from "./demo.js";
import { registerMembers } from "./members.js";
import { registerReload, registerStatus } from "./status.js";

const program = new Command();

program
  .name("lb4")
  .description("Layer-4 TCP/UDP load balancer: weighted scheduling, health checks, slow start, drain, cross-VPC backends.")
  .version(process.env.npm_package_version ?? "0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

program
  .command("start")
  .description("Run the load balancer in the foreground from a config file. Logs JSON lines to stdout (pretty on a terminal).")
  .requiredOption("-c, --config <file>", "config file (.yaml, .yml or .json)")
  .addOption(new Option("--grace <seconds>", "on SIGTERM/SIGINT, how long open connections may finish before they are closed").default("10").argParser(parsePositive))
  .addHelpText(
    "after",
    `
Signals:
  SIGTERM, SIGINT   stop accepting, let connections finish for --grace seconds, exit 0
  SIGHUP            reload the config file; an invalid file is refused and the running config stays

Example:
  lb4 start --config lb4.yaml`,
  )
  .action(async (opts: { config: string; grace: number }) => {
    const { config, file } = await loadConfigFile(opts.config);
    const logger = createLogger(config.log.level);
    let handle: LoadBalancerHandle;
    try {
      handle = await startLoadBalancer(config, { logger, persistState: true, tuning: { shutdownGraceMs: opts.grace * 1000 } });
    } catch (err) {
      logger.flush();
      throw err;
    }

    // One reload for SIGHUP, `lb4 reload` and POST /v3/elb/reload: re-read the file, apply it as a
    // diff. The engine logs and counts its own refusals; a file that does not load is logged and
    // counted here, so lb4_reloads_total{result="failed"} sees every refused reload.
    const reload = async (source: "SIGHUP" | "admin API"): Promise<void> => {
      let next: typeof config;
      try {
        next = (await loadConfigFile(file)).config;
      } catch (err) {
        handle.engine.reloads.failed++;
        logger.warn(
          { ev: "reload_failed", source, err: (err as Error).message, ...(err instanceof ConfigError ? { problems: err.problems } : {}) },
          "reload refused; the running configuration stays",
        );
        throw err;
      }
      await handle.reload(next);
      if (JSON.stringify(next.admin ?? null) !== JSON.stringify(config.admin ?? null)) {
        logger.warn({ ev: "admin_config_changed" }, "admin settings changed in the config file; restart lb4 to apply them (the admin API keeps its current address and token)");
      }
    };

    let admin: AdminServer | undefined;
    if (config.admin) {
      try {
        admin = await startAdminServer({
          engine: handle.engine,
          listen: config.admin.listen,
          token: config.admin.token,
          allowedHosts: config.admin.allowed_hosts,
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
    const adminUrl = admin ? `http://${admin.address.host.includes(":") ? `[${admin.address.host}]` : admin.address.host}:${admin.address.port}` : undefined;
    const listeners = config.loadbalancers.flatMap((lb) => lb.listeners.map((l) => `${l.protocol} ${memberKey(lb.vip_address, l.protocol_port)} (${lb.id}/${l.id})`));
    logger.info(
      { ev: "start", config: file, listeners, ...(adminUrl ? { admin: adminUrl, admin_auth: config.admin?.token ? "token" : "none (loopback only)" } : {}) },
      `lb4 started: ${listeners.length} listener(s)${adminUrl ? `; admin API on ${adminUrl}` : ""}`,
    );

    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
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
  .requiredOption("-c, --config <file>", "config file (.yaml, .yml or .json)")
  .option("--no-state", "check the file alone, without the runtime state under state_dir")
  .addHelpText("after", "\nExamples:\n  lb4 validate --config lb4.yaml\n  lb4 validate --config lb4.yaml --no-state")
  .action(async (opts: { config: string; state: boolean }) => {
    const { config, file, stateNote } = await validateFile(opts.config, opts.state);
    const lbs = config.loadbalancers;
    const count = (f: (lb: (typeof lbs)[number]) => number) => lbs.reduce((n, lb) => n + f(lb), 0);
    console.log(
      `${file}: valid (${lbs.length} load balancer(s), ${count((lb) => lb.listeners.length)} listener(s), ` +
        `${count((lb) => lb.pools.length)} pool(s), ${count((lb) => lb.pools.reduce((n, p) => n + p.members.length, 0))} member(s))`,
    );
    console.log(stateNote);
    for (const p of unsupportedFeatures(config)) console.log(`note: ${formatProblem(p)}`);
  });

/**
 * The file through the same gate as `lb4 start`: the persisted cross-VPC facts apply to the
 * file itself, then the runtime member overlay goes on top.
 */
async function validateFile(file: string, withState: boolean): Promise<{ config: Config; file: string; stateNote: string }> {
  if (!withState) {
    const loaded = await loadConfigFile(file);
    return { ...loaded, stateNote: "checked the file alone (--no-state); lb4 start also applies the runtime state under state_dir" };
  }
  const store = new StateStore(await stateDirOf(file));
  const state = await store.load();
  const loaded = await loadConfigFile(file, { ctx: { everEnabled: new Set(state.cross_vpc_enabled) } });
  const config = gateWithState(loaded.config, state, store.file);
  const changes = Object.values(state.members).reduce((n, o) => n + Object.keys(o.upsert).length + o.deleted.length, 0);
  const facts = state.cross_vpc_enabled.length ? `; cross-VPC ever enabled on ${state.cross_vpc_enabled.join(", ")}` : "";
  const stateNote =
    changes === 0 && facts === ""
      ? `no runtime state in ${store.dir}: the file alone decides`
      : `checked with the runtime state in ${store.file}: ${changes} member change(s)${facts}`;
  return { config, file: loaded.file, stateNote };
}

/** state_dir of a config file before it is validated (state decides some of its rules). */
async function stateDirOf(file: string): Promise<string> {
  const abs = path.resolve(file);
  let doc: unknown;
  try {
    doc = interpolateEnv(parseDocument(await readFile(abs, "utf8"), abs), process.env, []);
  } catch {
    doc = undefined; // loadConfigFile reports why the file does not load
  }
  const dir = (doc as { state_dir?: unknown } | undefined)?.state_dir;
  return path.resolve(path.dirname(abs), typeof dir === "string" && dir !== "" ? dir : configSchema.shape.state_dir.parse(undefined));
}

program
  .command("demo")
  .description("Start local demo backends and a load balancer in front of them on loopback, and print what to type to watch traffic being balanced.")
  .addOption(new Option("--port <port>", "TCP and UDP port of the demo load balancer (0 = any free port)").default(8080).argParser(parsePort))
  .addOption(new Option("--log-level <level>", "log level").default("info").choices(["fatal", "error", "warn", "info", "debug", "silent"]))
  .addHelpText("after", "\nExample:\n  npm start          (same as: lb4 demo)\n  lb4 demo --port 0  (any free port)")
  .action(async (opts: { port: number; logLevel: "info" }) => {
    await runDemo({ port: opts.port, logLevel: opts.logLevel });
  });

registerStatus(program);
registerMembers(program);
registerReload(program);

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
