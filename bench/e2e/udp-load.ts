/**
 * Runs one UDP request/response measurement in its own process (so it can be pinned to the
 * load CPU and bounded): imports bench/e2e/udp-rr.ts dynamically and prints one JSON line.
 * usage: node --import tsx bench/e2e/udp-load.ts '{"host":..,"port":..,"flows":..,"inflight":..,"payloadBytes":..,"durationMs":..}'
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface UdpRrOpts {
  host: string;
  port: number;
  flows: number;
  inflight: number;
  payloadBytes: number;
  durationMs: number;
}
interface UdpRrResult {
  requests: number;
  perSecond: number;
  lost: number;
}
type UdpRr = (opts: UdpRrOpts) => Promise<UdpRrResult>;

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.join(here, "udp-rr.ts");

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? "{}") as UdpRrOpts;
  if (!fs.existsSync(file)) {
    console.log(JSON.stringify({ skipped: "bench/e2e/udp-rr.ts missing" }));
    return;
  }
  const mod = (await import(pathToFileURL(file).href)) as { udpRequestResponse?: UdpRr };
  if (typeof mod.udpRequestResponse !== "function") {
    console.log(JSON.stringify({ skipped: "bench/e2e/udp-rr.ts does not export udpRequestResponse" }));
    return;
  }
  const r = await mod.udpRequestResponse(opts);
  console.log(JSON.stringify({ requests: r.requests, perSecond: r.perSecond, lost: r.lost }));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.log(JSON.stringify({ error: String((e as Error)?.message ?? e) }));
    process.exit(1);
  },
);
