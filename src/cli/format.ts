/** Plain-text tables and shared option helpers for the CLI commands that talk to the admin API. */
import { CommanderError, Option, type Command } from "commander";
import { AdminClient } from "./admin-client.js";

/** Left-aligned columns separated by two spaces; `indent` prefixes every line. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>, indent = ""): string {
  const cells = [headers.map(String), ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === "" ? "-" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      (indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).trimEnd(),
    )
    .join("\n");
}

export interface AdminOptions {
  admin?: string;
  token?: string;
  json?: boolean;
}

/** `--admin`, `--token` and (optionally) `--json` on a command that talks to a running lb4. */
export function adminOptions(cmd: Command, opts: { json?: boolean } = { json: true }): Command {
  cmd
    .addOption(new Option("--admin <url>", "admin API of the running lb4 (env LB4_ADMIN_URL; default http://127.0.0.1:9870)"))
    .addOption(new Option("--token <token>", "admin token (env LB4_ADMIN_TOKEN); needed when admin.token is set"));
  if (opts.json !== false) cmd.option("--json", "print the API's JSON instead of a table");
  return cmd;
}

export function clientFor(opts: AdminOptions): AdminClient {
  return new AdminClient({ admin: opts.admin, token: opts.token });
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + "\n");
}

export function usage(message: string): CommanderError {
  return new CommanderError(2, "lb4.usage", message);
}

/** Integer option parser (syntax only; ranges are the server's rules, checked in one place). */
export function intArg(name: string) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v.trim())) throw usage(`${name}: expected an integer, got "${v}"`);
    return Number(v);
  };
}
