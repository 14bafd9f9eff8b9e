/** Numbers as an operator reads them. */

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 1536 → "1.5 KB" (powers of 1024). */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? Math.round(v) : v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

export function bytesRate(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : `${bytes(n)}/s`;
}

/** Connections per second: one decimal below 10. */
export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  return n < 10 ? `${Math.round(n * 10) / 10}/s` : `${Math.round(n)}/s`;
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : n.toLocaleString("en-US");
}

export function percent(f: number | null | undefined): string {
  if (f === null || f === undefined) return "–";
  const p = f * 100;
  return `${p > 0 && p < 1 ? p.toFixed(1) : Math.round(p)}%`;
}

/** "just now", "12 s ago", "3 min ago". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 2) return "just now";
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** A weight as the API gives it (two decimals at most). */
export function weight(w: number | null | undefined): string {
  if (w === null || w === undefined) return "–";
  return Number.isInteger(w) ? String(w) : w.toFixed(w < 10 ? 2 : 1).replace(/0+$/, "").replace(/\.$/, "");
}

export function clock(t: number): string {
  return new Date(t).toLocaleTimeString("en-GB", { hour12: false });
}
