/**
 * `state_dir/lb4.pid`: written by `lb4 start` once it serves, removed when it exits, so
 * `lb4 state reset` can tell that an lb4 is using that state. A file left by a process that
 * is gone (kill -9, a crash, a container restart where the pid is ours again) is stale and
 * does not count.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { readFileSync, unlinkSync } from "node:fs";
import path from "node:path";

export const PID_FILE = "lb4.pid";

export function pidFileOf(stateDir: string): string {
  return path.join(stateDir, PID_FILE);
}

/** Whether `pid` is a live process other than this one that looks like lb4. */
export function isLiveLb4(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false; // ESRCH: gone
  }
  // A reused pid belongs to some other program: where /proc tells, require lb4's CLI on its command line.
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return true; // no /proc (not Linux) or not readable: trust the signal check
  }
  return cmdline.includes("lb4") || cmdline.includes("cli/main.js");
}

/** The pid of a running lb4 recorded in the state dir, if any (a stale or garbled file gives undefined). */
export async function runningPid(stateDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(pidFileOf(stateDir), "utf8");
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return isLiveLb4(pid) ? pid : undefined;
}

/**
 * Record this process as the lb4 using `stateDir`; returns the pid of another live lb4 that
 * had recorded itself there (the caller warns: two instances on one state_dir overwrite each
 * other's runtime changes). Removed at exit, whichever way the process exits normally.
 */
export async function claimPidFile(stateDir: string): Promise<{ file: string; other: number | undefined }> {
  const other = await runningPid(stateDir);
  const file = pidFileOf(stateDir);
  await mkdir(stateDir, { recursive: true });
  await writeFile(file, `${process.pid}\n`, { mode: 0o644 });
  process.once("exit", () => releasePidFile(file));
  return { file, other };
}

/** Remove the pid file if it still names this process (another lb4 may have claimed it since). */
export function releasePidFile(file: string): void {
  try {
    if (Number(readFileSync(file, "utf8").trim()) === process.pid) unlinkSync(file);
  } catch {
    // already gone or unreadable: nothing to release
  }
}
