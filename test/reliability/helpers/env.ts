/**
 * What the machine offers the reliability suite. A case that needs root or a program the
 * machine lacks is skipped with the reason in its name (`.ci/run` installs them, so CI
 * never skips).
 */
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const lb4Main = path.join(root, "bin/lb4");
export const backendScript = path.join(root, "test/reliability/fixtures/backend.mjs");

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function have(program: string, args: string[]): boolean {
  const r = spawnSync(program, args, { stdio: "ignore", timeout: 10_000 });
  return r.status === 0;
}

const programs: Record<string, string[]> = {
  ip: ["-V"],
  iptables: ["--version"],
  prlimit: ["--version"],
  mount: ["--version"],
  umount: ["--version"],
};

/** Undefined when everything is there, else why not (for the skip message). */
export function missing(...needs: Array<"root" | keyof typeof programs>): string | undefined {
  if (os.platform() !== "linux") return "needs Linux";
  const lacking: string[] = [];
  for (const n of needs) {
    if (n === "root") {
      if (!isRoot) lacking.push("root");
    } else if (!have(n, programs[n]!)) lacking.push(n);
  }
  return lacking.length === 0 ? undefined : `needs ${lacking.join(", ")}; .ci/run installs them and runs as root`;
}

/** A describe title that says when and why it is skipped. */
export function title(name: string, reason: string | undefined): string {
  return reason === undefined ? name : `${name} (SKIPPED: ${reason})`;
}

/** An integer from the environment (longer runs by hand), else the default. */
export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${v}: expected a positive integer`);
  return n;
}
