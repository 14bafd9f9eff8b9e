/**
 * Before the reliability suite: remove network namespaces a crashed earlier run left behind,
 * start a fresh figures file. After it: print the figures as the table RELIABILITY.md holds.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import type { Figure } from "./helpers/figures.js";
import { removeStaleNamespaces } from "./helpers/netns.js";

export default function setup(): () => void {
  const file = process.env.LB4_RELIABILITY_FIGURES!;
  writeFileSync(file, "");
  if (os.platform() === "linux" && process.getuid?.() === 0) {
    const stale = removeStaleNamespaces();
    if (stale.length > 0) console.log(`reliability: removed ${stale.length} stale namespace(s) of an earlier run: ${stale.join(", ")}`);
  }
  return () => {
    if (!existsSync(file)) return;
    const rows = readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Figure)
      .sort((a, b) => a.test.localeCompare(b.test));
    rmSync(file, { force: true });
    if (rows.length === 0) return;
    const cell = (s: string) => s.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
    const table = ["| test | figure | guarantee |", "| --- | --- | --- |", ...rows.map((r) => `| ${cell(r.test)} | ${cell(r.figure)} | ${cell(r.guarantee)} |`)];
    console.log(`\nreliability figures (${os.availableParallelism()} cores, node ${process.version}):\n${table.join("\n")}\n`);
    if (process.env.LB4_RELIABILITY_TABLE) writeFileSync(process.env.LB4_RELIABILITY_TABLE, table.join("\n") + "\n");
  };
}
