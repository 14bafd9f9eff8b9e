/** ACL match against 300 entries (IPv4 CIDRs plus a few IPv6), hits and misses. */
import type { Bench } from "tinybench";
import { compileAccessList } from "../src/acl/ipgroup.js";

export function addAclBenches(bench: Bench): void {
  const entries: string[] = [];
  for (let i = 0; i < 290; i++) entries.push(`10.${i % 256}.${(i * 7) % 256}.0/24`);
  for (let i = 0; i < 10; i++) entries.push(`fd00:${i.toString(16)}::/32`);
  const white = compileAccessList({ type: "white", ip_list: entries });
  const clients: string[] = [];
  for (let i = 0; i < 1024; i++) clients.push(`10.${i % 256}.${(i * 13) % 256}.${i % 250}`);
  let i = 0;
  bench.add("acl match ipv4, 300 entries", () => {
    white.allows(clients[i++ & 1023]!);
  });
  bench.add("acl match ipv6, 300 entries", () => {
    white.allows("fd00:3::1");
  });
}
