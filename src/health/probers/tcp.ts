/**
 * TCP check (SPEC §4): a connect to the check port succeeds within `timeout`; with
 * `tcp_send`/`tcp_expect` the member must also answer. The kernel completes a handshake
 * for a hung (e.g. SIGSTOPped) server, so only the exchange catches one.
 *
 * Order on the wire: the pool's header (PROXY v2 LOCAL) if any, then `tcp_send`, then
 * read until the reply starts with `tcp_expect` (pass), differs (fail at once), the peer
 * closes (fail) or `timeout` runs out (fail). No FIN before the reply: servers such as
 * redis drop a half-closed client without answering.
 */
import net from "node:net";
import type { HealthMonitorSettings, ProbeOptions, ProbeResult, ProbeTarget } from "../types.js";
import { decodeOrThrow, ReplyMatcher, showBytes } from "../tcp-exchange.js";
import { errText, runProbe } from "./common.js";

export function probe(
  target: ProbeTarget,
  settings: HealthMonitorSettings,
  opts: ProbeOptions = {},
): Promise<ProbeResult> {
  let connected = false;
  let matcher: ReplyMatcher | undefined;
  const onTimeout = (): ProbeResult => {
    if (!connected) return { ok: false, detail: `connect timeout after ${settings.timeout}s` };
    const m = matcher!;
    const got = m.received();
    return {
      ok: false,
      detail: `no reply matching ${showBytes(m.expect)} within ${settings.timeout}s${got.length ? ` (got ${showBytes(got)})` : ""}`,
    };
  };
  return runProbe(settings.timeout, opts.signal, onTimeout, (finish) => {
    // Decoded per check (a throw here is a failed check; the schema refuses bad escapes).
    const send = settings.tcp_send !== null ? decodeOrThrow(settings.tcp_send) : undefined;
    const expect = settings.tcp_expect !== null ? decodeOrThrow(settings.tcp_expect) : undefined;
    const prefix = opts.prefix && opts.prefix.length > 0 ? opts.prefix : undefined;
    const out = prefix && send ? Buffer.concat([prefix, send]) : (send ?? prefix);

    const sock = net.connect({ host: target.address, port: target.port, localAddress: target.localAddress, noDelay: true });
    // Stays attached after settling, so a late error can never go unhandled.
    sock.on("error", (e) => finish({ ok: false, detail: `${connected ? (expect ? "read" : "send") : "connect"} ${errText(e)}` }));
    sock.once("connect", () => {
      connected = true;
      if (!expect) {
        // Connect (and send) alone: what was sent, then FIN, so a backend sees a clean close.
        if (out) sock.end(out, () => finish({ ok: true, detail: send ? "connected, sent" : "connected" }));
        else finish({ ok: true, detail: "connected" });
        return;
      }
      const m = (matcher = new ReplyMatcher(expect));
      sock.on("data", (chunk: Buffer) => {
        const r = m.feed(chunk);
        if (r === "match") finish({ ok: true, detail: `replied ${showBytes(expect)}` });
        else if (r === "mismatch") finish({ ok: false, detail: `expected ${showBytes(expect)}, got ${showBytes(m.mismatch!)}` });
      });
      sock.on("end", () => {
        const got = m.received();
        finish({ ok: false, detail: `closed before replying ${showBytes(expect)}${got.length ? ` (got ${showBytes(got)})` : ""}` });
      });
      if (out) sock.write(out);
    });
    return () => sock.destroy();
  });
}
