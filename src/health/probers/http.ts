/** HTTP check: `http_method url_path`, Host `domain_name`, status in `expected_codes` (SPEC §4). */
import http from "node:http";
import net from "node:net";
import type { HealthMonitorSettings, ProbeOptions, ProbeResult, ProbeTarget } from "../types.js";
import { parseExpectedCodes } from "../expected-codes.js";
import { errText, runProbe } from "./common.js";

/** Host header when no domain_name is set: the member address (IPv6 bracketed), port unless 80. */
export function defaultHostHeader(address: string, port: number): string {
  const host = net.isIPv6(address) ? `[${address}]` : address;
  return port === 80 ? host : `${host}:${port}`;
}

export function probe(
  target: ProbeTarget,
  settings: HealthMonitorSettings,
  opts: ProbeOptions = {},
): Promise<ProbeResult> {
  return runProbe(
    settings.timeout,
    opts.signal,
    () => ({ ok: false, detail: `no response within ${settings.timeout}s` }),
    (finish) => {
      const expected = parseExpectedCodes(settings.expected_codes); // a throw = failed check
      const prefix = opts.prefix;
      let connected = false;
      const headers: Record<string, string> = {
        Host: settings.domain_name ?? defaultHostHeader(target.address, target.port),
        "User-Agent": "lb4-health-check",
        Accept: "*/*",
      };
      if (settings.http_method === "POST") headers["Content-Length"] = "0";
      const req = http.request({
        host: target.address,
        port: target.port,
        localAddress: target.localAddress,
        method: settings.http_method,
        path: settings.url_path,
        headers,
        // No agent (not even `agent: false`, which makes a fresh Agent that ignores
        // createConnection): one socket per check, "Connection: close", no pooling.
        createConnection: (o: object) => {
          const s = net.createConnection(o as net.NetConnectOpts);
          // Queued before http's own writes, so the header goes out first.
          if (prefix && prefix.length > 0) s.write(prefix);
          return s;
        },
      });
      req.on("socket", (s) => s.once("connect", () => (connected = true)));
      req.on("error", (e) => finish({ ok: false, detail: `${connected ? "" : "connect "}${errText(e)}` }));
      req.on("response", (res) => {
        res.on("error", () => {}); // destroyed below before its body ends; that is expected
        const code = res.statusCode ?? 0;
        const ok = expected(code);
        finish({ ok, detail: ok ? `HTTP ${code}` : `HTTP ${code} not in ${settings.expected_codes}` });
      });
      req.end();
      return () => req.destroy();
    },
  );
}
