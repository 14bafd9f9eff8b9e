/// <reference lib="dom" />
/** A hand-drawn SVG sparkline of one rate over the chart window: area and line, on a quiet grid. */
import { svg } from "./dom.js";

export interface Point {
  t: number;
  v: number;
}

const W = 300;
const H = 64;
const PAD = 3;

/** Draw `points` over [end - windowMs, end]; the y scale starts at 0 and fits the largest value. */
export function sparkline(points: readonly Point[], opts: { windowMs: number; end: number; cls: string; label: string }): SVGElement {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: `spark ${opts.cls}`, role: "img", "aria-label": opts.label, preserveAspectRatio: "none" });
  // Quarter lines as a quiet grid.
  for (const f of [0.25, 0.5, 0.75]) root.appendChild(svg("line", { x1: 0, x2: W, y1: PAD + (H - 2 * PAD) * f, y2: PAD + (H - 2 * PAD) * f, class: "grid" }));
  root.appendChild(svg("line", { x1: 0, x2: W, y1: H - PAD, y2: H - PAD, class: "axis" }));
  const start = opts.end - opts.windowMs;
  const shown = points.filter((p) => p.t >= start - 1);
  if (shown.length === 0) return root;
  const max = Math.max(...shown.map((p) => p.v));
  const x = (t: number) => ((t - start) / opts.windowMs) * W;
  const y = (v: number) => (max > 0 ? H - PAD - (v / max) * (H - 2 * PAD) : H - PAD);
  const xy = shown.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  const first = shown[0]!;
  const last = shown[shown.length - 1]!;
  root.appendChild(svg("path", { d: `M${x(first.t).toFixed(1)},${H - PAD} L${xy.join(" L")} L${x(last.t).toFixed(1)},${H - PAD} Z`, class: "area" }));
  root.appendChild(svg("polyline", { points: xy.join(" "), class: "line" }));
  return root;
}
