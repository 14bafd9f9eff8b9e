/**
 * UDP_CONNECT check (SPEC §4): send a datagram on a connected socket; healthy unless an
 * ICMP port unreachable comes back (ECONNREFUSED on the socket) within `timeout`.
 * So a silent timeout is a PASS; a reply ends the check early as a pass.
 */
import dgram from "node:dgram";
import net from "node:net";
import type { HealthMonitorSettings, ProbeOptions, ProbeResult, ProbeTarget } from "../types.js";
import { errText, runProbe } from "./common.js";

const PAYLOAD = Buffer.from("lb4-health-check\n");

export function probe(
  target: ProbeTarget,
  settings: HealthMonitorSettings,
  opts: ProbeOptions = {},
): Promise<ProbeResult> {
  return runProbe(
    settings.timeout,
    opts.signal,
    () => ({ ok: true, detail: `no ICMP port unreachable within ${settings.timeout}s` }),
    (finish) => {
      const sock = dgram.createSocket(net.isIPv6(target.address) ? "udp6" : "udp4");
      const fail = (e: unknown): void => {
        const code = errText(e);
        finish({ ok: false, detail: code === "ECONNREFUSED" ? "ECONNREFUSED (ICMP port unreachable)" : code });
      };
      sock.on("error", fail);
      sock.on("message", () => finish({ ok: true, detail: "reply received" }));
      // With a PROXY v2 prefix the datagram is the LOCAL header alone: no payload to confuse the app.
      const payload = opts.prefix && opts.prefix.length > 0 ? opts.prefix : PAYLOAD;
      const go = (): void =>
        sock.connect(target.port, target.address, () => {
          sock.send(payload, (err) => {
            if (err) fail(err);
          });
        });
      if (target.localAddress) sock.bind({ address: target.localAddress, port: 0 }, go);
      else go();
      return () => sock.close();
    },
  );
}
