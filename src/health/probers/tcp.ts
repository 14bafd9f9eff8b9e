/** TCP check: a connect to the check port succeeds within `timeout` (SPEC §4). */
import net from "node:net";
import type { HealthMonitorSettings, ProbeOptions, ProbeResult, ProbeTarget } from "../types.js";
import { errText, runProbe } from "./common.js";

export function probe(
  target: ProbeTarget,
  settings: HealthMonitorSettings,
  opts: ProbeOptions = {},
): Promise<ProbeResult> {
  return runProbe(
    settings.timeout,
    opts.signal,
    () => ({ ok: false, detail: `connect timeout after ${settings.timeout}s` }),
    (finish) => {
      let connected = false;
      const sock = net.connect({ host: target.address, port: target.port, localAddress: target.localAddress });
      // Stays attached after settling, so a late error can never go unhandled.
      sock.on("error", (e) => finish({ ok: false, detail: `${connected ? "send" : "connect"} ${errText(e)}` }));
      sock.once("connect", () => {
        connected = true;
        const prefix = opts.prefix;
        if (prefix && prefix.length > 0) {
          // Header then FIN, so a PROXY-aware backend sees a clean LOCAL check, not a reset.
          sock.end(prefix, () => finish({ ok: true, detail: "connected" }));
        } else {
          finish({ ok: true, detail: "connected" });
        }
      });
      return () => sock.destroy();
    },
  );
}
