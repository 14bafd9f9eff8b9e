/**
 * `lb4 state reset`: forget the runtime state under a config's state_dir (member changes made
 * through the admin API, the cross-VPC "ever enabled" facts, last known health), so the next
 * `lb4 start` runs the config file alone. Refuses while an lb4 uses that state: the running
 * process would write its state back, and the reset would be undone or torn.
 */
import { rm } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { splitHostPort } from "../config/schema.js";
import { Lb4Error } from "../errors.js";
import { isLoopback } from "../ip.js";
import { memberKey } from "../model/member.js";
import { StateStore, emptyState, memberChangeCount, type RuntimeState } from "../state/store.js";
import { AdminClient } from "./admin-client.js";
import { CONFIG_ENV, DEFAULT_CONFIG_FILE, configSource, rawDocument, stateDirOf, type ConfigSource } from "./config-source.js";
import { pidFileOf, runningPid } from "./pidfile.js";

/** Why the state looks in use, or undefined: the pid file first, then the config's admin API. */
async function inUse(src: ConfigSource, dir: string): Promise<string | undefined> {
  const pid = await runningPid(dir);
  if (pid !== undefined) return `lb4 (pid ${pid}) is running with this state (${pidFileOf(dir)})`;
  const admin = (await rawDocument(src))?.admin;
  if (admin === undefined || admin === null || typeof admin !== "object") return undefined;
  const listen = (admin as { listen?: unknown }).listen ?? "127.0.0.1:9870";
  const hp = typeof listen === "string" ? splitHostPort(listen) : undefined;
  if (!hp) return undefined;
  // A wildcard listener answers on loopback too; a loopback or specific address as written.
  const host = hp.host === "0.0.0.0" ? "127.0.0.1" : hp.host === "::" ? "::1" : hp.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${hp.port}`;
  try {
    const r = await new AdminClient({ admin: url, timeoutMs: isLoopback(host) ? 1000 : 2000, env: {} }).get<{ status?: unknown }>("/healthz");
    if (r?.status === "ok") return `an lb4 answers on this config's admin API (${url})`;
  } catch {
    // nothing answers: not running (or not reachable from here; the pid file covers this host)
  }
  return undefined;
}

/** What a reset forgets, one line each. */
function describeState(state: RuntimeState, file: string, healthMembers: number): string[] {
  const lines: string[] = [];
  for (const [pool, o] of Object.entries(state.members)) {
    const upserts = Object.values(o.upsert).map((m) => `${m.id} (${memberKey(m.address, m.protocol_port)})`);
    if (upserts.length) lines.push(`pool ${pool}: ${upserts.length} member(s) added or changed at runtime: ${upserts.join(", ")}`);
    if (o.deleted.length) lines.push(`pool ${pool}: ${o.deleted.length} member(s) removed at runtime (they come back from the file): ${o.deleted.join(", ")}`);
  }
  if (state.cross_vpc_enabled.length) {
    lines.push(
      `cross-VPC ever enabled on ${state.cross_vpc_enabled.join(", ")}: WARNING, once forgotten a later config may turn ip_target_enable off ` +
        "(SPEC §6 rule 6 forbids that), cutting off its cross-VPC members",
    );
  }
  if (healthMembers > 0) lines.push(`last known health of ${healthMembers} member(s): at the next start they are checked again from UNCHECKED`);
  if (!lines.length) return [];
  const pools = Object.keys(state.members).filter((p) => memberChangeCount({ ...state, members: { [p]: state.members[p]! } }) > 0);
  return [`${memberChangeCount(state)} runtime member change(s)${pools.length ? ` in pool(s) ${pools.join(", ")}` : ""} (${file})`, ...lines];
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerState(program: Command): void {
  const state = program
    .command("state")
    .description("The runtime state under a config's state_dir: member changes made at runtime, cross-VPC facts, last known health.");

  state
    .command("reset")
    .description(
      "Forget the runtime state of a config: delete state_dir/state.json (member changes made through the admin API and CLI, " +
        "the cross-VPC \"ever enabled\" facts) and state_dir/health.json (last known health). The next lb4 start runs the file alone. " +
        "Refuses while an lb4 uses that state (its pid file, or its admin API answers). Says what it forgets first.",
    )
    .option("-c, --config <file>", `config file whose state_dir to reset; default: what lb4 start reads ($${CONFIG_ENV} if set, else ${DEFAULT_CONFIG_FILE})`)
    .option("-y, --yes", "do not ask (required when stdin is not a terminal, e.g. in CI)")
    .addHelpText(
      "after",
      `
Examples:
  lb4 state reset --config lb4.yaml          (asks before deleting)
  lb4 state reset --config lb4.yaml --yes

Stop lb4 first: while lb4 start runs, state_dir/lb4.pid holds its pid and the reset refuses
(exit 1). A pid file whose process is gone does not count. The config file need not be valid:
reset works on its state_dir (and admin.listen, to see whether lb4 answers) alone.`,
    )
    .action(async (opts: { config?: string; yes?: boolean }) => {
      const src = await configSource(opts.config);
      const dir = await stateDirOf(src);
      const busy = await inUse(src, dir);
      if (busy) throw new Lb4Error("LB4.STATE_IN_USE", `${busy}; stop it first (SIGTERM, systemctl stop lb4, docker stop), then run lb4 state reset again. Nothing was deleted`);

      const store = new StateStore(dir);
      let st: RuntimeState;
      let corrupt: string | undefined;
      try {
        st = await store.load();
      } catch (err) {
        if (!(err instanceof Lb4Error) || err.code !== "LB4.STATE_CORRUPT") throw err;
        st = emptyState();
        corrupt = err.message;
      }
      const health = Object.keys((await store.loadHealth()).members).length;
      const forgets = describeState(st, store.file, health);
      if (corrupt) forgets.push(`${store.file} is not readable as lb4 state; it is deleted as it is`);
      if (!forgets.length) {
        await store.removeStaleTemps();
        console.log(`nothing to reset in ${dir}: no runtime state; lb4 start runs the file alone`);
        return;
      }
      process.stdout.write(`lb4 state reset forgets, in ${dir}:\n${forgets.map((l) => `  - ${l}`).join("\n")}\n`);
      if (!opts.yes) {
        if (!process.stdin.isTTY) throw new Lb4Error("LB4.CONFIRM_NEEDED", "stdin is not a terminal, so nothing can be confirmed: pass --yes to reset. Nothing was deleted");
        if (!(await confirm(`Delete ${store.file} and ${store.healthFile}? [y/N] `))) {
          console.log("nothing deleted");
          return;
        }
      }
      // Checked again just before deleting: an lb4 started while we were asking would rewrite the state.
      const late = await inUse(src, dir);
      if (late) throw new Lb4Error("LB4.STATE_IN_USE", `${late}; stop it first. Nothing was deleted`);
      await Promise.all([rm(store.file, { force: true }), rm(store.healthFile, { force: true })]);
      await store.removeStaleTemps();
      console.log(`reset ${dir}: the next lb4 start uses the config file alone`);
    });
}
