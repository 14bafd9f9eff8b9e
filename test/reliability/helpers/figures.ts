/**
 * Figures the suite measures (test | figure | guarantee), appended as JSON lines to the file
 * the config names (LB4_RELIABILITY_FIGURES); the global teardown prints them as the
 * markdown table that RELIABILITY.md holds.
 */
import { appendFileSync } from "node:fs";

export interface Figure {
  test: string;
  figure: string;
  guarantee: string;
}

export function figure(test: string, fig: string, guarantee: string): void {
  const line: Figure = { test, figure: fig, guarantee };
  const file = process.env.LB4_RELIABILITY_FIGURES;
  if (file) appendFileSync(file, JSON.stringify(line) + "\n");
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** p-th percentile (0-100) of a list of numbers, or NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
