/** What the results were measured on: machine, kernel, tool versions, lb4 revision. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { ROOT } from "./targets.js";

function firstLine(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 5000 });
  if (r.error) return null;
  const text = `${r.stdout ?? ""}\n${r.stderr ?? ""}`.split("\n").map((l) => l.trim()).find((l) => l !== "");
  return text ?? null;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  kernel: string;
  os: string;
  memoryGiB: number;
  versions: Record<string, string | null>;
  lb4: { version: string; commit: string | null; uncommittedFiles: number | null };
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    /* keep os.cpus() */
  }
  let osName = `${os.type()} ${os.release()}`;
  try {
    const m = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(fs.readFileSync("/etc/os-release", "utf8"));
    if (m) osName = m[1]!;
  } catch {
    /* keep */
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8", timeout: 5000 });
  const status = spawnSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8", timeout: 5000 });
  return {
    cpuModel,
    cores: os.cpus().length,
    kernel: os.release(),
    os: osName,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    versions: {
      node: process.version,
      haproxy: firstLine("haproxy", ["-v"]),
      nginx: firstLine("nginx", ["-v"]),
      wrk: firstLine("wrk", ["-v"]),
      iperf3: firstLine("iperf3", ["--version"]),
    },
    lb4: {
      version: pkg.version,
      commit: commit.status === 0 ? commit.stdout.trim() : null,
      uncommittedFiles: status.status === 0 ? status.stdout.split("\n").filter((l) => l.trim() !== "").length : null,
    },
  };
}
