/** Micro-benchmarks of the SPEC §7 header codecs; bench/micro.ts registers them. */
import type { Bench } from "tinybench";
import { decodeHeader, encodeHeader, type ClientIpMode, type HeaderInput } from "../src/clientip/index.js";

const inputs: Record<"IPv4" | "IPv6", HeaderInput> = {
  IPv4: { source: { address: "203.0.113.77", port: 51234 }, destination: { address: "10.0.0.1", port: 443 } },
  IPv6: { source: { address: "2001:db8:85a3::8a2e:370:7334", port: 51234 }, destination: { address: "2001:db8::1", port: 443 } },
};
const modes: readonly ClientIpMode[] = ["toa", "proxy_v1", "proxy_v2"];

export function addCodecBenches(bench: Bench): void {
  for (const mode of modes) {
    for (const fam of ["IPv4", "IPv6"] as const) {
      const input = inputs[fam];
      // decode sees a header followed by application bytes, as on a socket
      const wire = Buffer.concat([encodeHeader(mode, input), Buffer.from("GET / HTTP/1.1\r\n")]);
      bench.add(`clientip ${mode} encode ${fam}`, () => {
        encodeHeader(mode, input);
      });
      bench.add(`clientip ${mode} decode ${fam}`, () => {
        decodeHeader(mode, wire);
      });
    }
  }
}
