import { describe, expect, it } from "vitest";
import { compileAccessList, parseIpv4 } from "../../../src/acl/ipgroup.js";

describe("parseIpv4", () => {
  it.each([
    ["0.0.0.0", 0],
    ["127.0.0.1", 0x7f000001],
    ["255.255.255.255", 0xffffffff],
    ["1.2.3", -1],
    ["1.2.3.4.5", -1],
    ["256.1.1.1", -1],
    ["1..2.3", -1],
    ["::1", -1],
    ["", -1],
  ])("%s → %d", (s, n) => expect(parseIpv4(s)).toBe(n));
});

describe("ipgroup access lists", () => {
  const list = ["10.0.0.0/8", "192.168.1.7", "172.16.0.0/12", "fd00::/8", "::1", "10.1.0.0/16"];
  it.each<[string, string, boolean]>([
    ["white", "10.2.3.4", true],
    ["white", "192.168.1.7", true],
    ["white", "192.168.1.8", false],
    ["white", "172.31.255.255", true],
    ["white", "172.32.0.0", false],
    ["white", "::ffff:10.9.9.9", true],
    ["white", "::1", true],
    ["white", "fd12::5", true],
    ["white", "fe80::1", false],
    ["black", "10.2.3.4", false],
    ["black", "11.0.0.1", true],
    ["black", "::1", false],
    ["black", "2001:db8::1", true],
  ])("%s list: %s allowed=%s", (type, ip, allowed) => {
    expect(compileAccessList({ type: type as "white" | "black", ip_list: list }).allows(ip)).toBe(allowed);
  });

  it("empty whitelist denies all, empty blacklist allows all, none allows all", () => {
    expect(compileAccessList({ type: "white", ip_list: [] }).allows("127.0.0.1")).toBe(false);
    expect(compileAccessList({ type: "black", ip_list: [] }).allows("127.0.0.1")).toBe(true);
    expect(compileAccessList(null).allows("127.0.0.1")).toBe(true);
  });

  it("matches 300 entries the same as a linear scan", () => {
    const entries: string[] = [];
    for (let i = 0; i < 300; i++) entries.push(`10.${i % 256}.${(i * 7) % 256}.0/24`);
    const acl = compileAccessList({ type: "white", ip_list: entries });
    for (let i = 0; i < 2000; i++) {
      const a = (i * 2654435761) >>> 0;
      const ip = `10.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      const expected = entries.some((e) => {
        const [net] = e.split("/");
        return net!.split(".").slice(0, 3).join(".") === ip.split(".").slice(0, 3).join(".");
      });
      expect(acl.allows(ip)).toBe(expected);
    }
  });
});
