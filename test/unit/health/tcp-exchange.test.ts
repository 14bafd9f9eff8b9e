/** tcp_send / tcp_expect: the escape decoder, the reply matcher, and the config rules that use them. */
import { describe, expect, it } from "vitest";
import { decodeEscapes, ReplyMatcher, showBytes } from "../../../src/health/tcp-exchange.js";
import { validateConfig } from "../../../src/config/validate.js";

describe("decodeEscapes", () => {
  it.each<[string, number[]]>([
    ["PING\\r\\n", [...Buffer.from("PING"), 0x0d, 0x0a]],
    ["+PONG", [...Buffer.from("+PONG")]],
    ["a\\tb", [0x61, 0x09, 0x62]],
    ["\\0", [0x00]],
    ["back\\\\slash", [...Buffer.from("back\\slash")]],
    ["\\x00\\xff\\xAb", [0x00, 0xff, 0xab]],
    ["\\x0d\\x0a", [0x0d, 0x0a]],
    ["é", [0xc3, 0xa9]],
    ["x\\r", [0x78, 0x0d]],
    ["\\\\x41", [...Buffer.from("\\x41")]],
    ["", []],
  ])("%j decodes to its bytes", (text, bytes) => {
    const d = decodeEscapes(text);
    expect(d).toEqual({ ok: true, bytes: Buffer.from(bytes) });
  });

  it.each<[string, string]>([
    ["\\xZZ", 'bad escape "\\xZZ" at character 1'],
    ["ab\\x4", 'bad escape "\\x4" at character 3'],
    ["\\x", 'bad escape "\\x" at character 1'],
    ["PING\\", "lone backslash (character 5)"],
    ["\\R", 'unknown escape "\\R" at character 1'],
    ["ok\\q", 'unknown escape "\\q" at character 3'],
  ])("%j is refused: %s", (text, error) => {
    const d = decodeEscapes(text);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error).toContain(error);
  });
});

describe("showBytes", () => {
  it.each<[number[] | string, number | undefined, string]>([
    ["+PONG", undefined, '"+PONG"'],
    ["-ERR x\r\n", undefined, '"-ERR x\\r\\n"'],
    [[0x00, 0x7f, 0xff, 0x09], undefined, '"\\0\\x7f\\xff\\t"'],
    ['a"b\\', undefined, '"a\\"b\\\\"'],
    ["abcdef", 3, '"abc…"'],
  ])("%j shows as %s", (input, max, shown) => {
    const b = typeof input === "string" ? Buffer.from(input) : Buffer.from(input);
    expect(showBytes(b, max)).toBe(shown);
  });
});

describe("ReplyMatcher", () => {
  it.each<[string, string[], Array<"match" | "mismatch" | "more">]>([
    ["whole reply in one chunk", ["+PONG\r\n"], ["match"]],
    ["reply split across chunks", ["+P", "O", "NG"], ["more", "more", "match"]],
    ["extra bytes after the match are ignored", ["+PONGxyz"], ["match"]],
    ["diverges at the first byte", ["-ERR unknown command"], ["mismatch"]],
    ["diverges in a later chunk", ["+PO", "X"], ["more", "mismatch"]],
  ])("%s", (_name, chunks, states) => {
    const m = new ReplyMatcher(Buffer.from("+PONG"));
    expect(chunks.map((c) => m.feed(Buffer.from(c)))).toEqual(states);
  });

  it("keeps at most expect.length matching bytes and shows the divergence", () => {
    const m = new ReplyMatcher(Buffer.from("+PONG"));
    expect(m.feed(Buffer.from("+PO"))).toBe("more");
    expect(m.received().toString()).toBe("+PO");
    expect(m.feed(Buffer.from("X".repeat(10_000)))).toBe("mismatch");
    // The matching part plus at most 32 bytes of the rest.
    expect(m.mismatch!.length).toBeLessThanOrEqual(3 + 32);
    expect(m.mismatch!.toString().startsWith("+POX")).toBe(true);
  });
});

describe("config rules for tcp_send / tcp_expect", () => {
  const config = (hm: Record<string, unknown>, protocol = "TCP") => ({
    loadbalancers: [
      {
        id: "lb-1",
        vip_address: "127.0.0.1",
        listeners: [{ id: "ls-1", protocol, protocol_port: 8080, default_pool_id: "pool-1" }],
        pools: [{ id: "pool-1", protocol, healthmonitor: hm, members: [{ id: "m-1", address: "127.0.0.1", protocol_port: 9001 }] }],
      },
    ],
  });
  const at = "loadbalancers[0].pools[0].healthmonitor";

  it.each<[string, Record<string, unknown>, string | undefined]>([
    ["send and expect on TCP", { type: "TCP", tcp_send: "PING\\r\\n", tcp_expect: "+PONG" }, undefined],
    ["expect alone (server speaks first)", { type: "TCP", tcp_expect: "SSH-2.0-" }, undefined],
    ["send alone", { type: "TCP", tcp_send: "QUIT\\r\\n" }, undefined],
    ["neither (plain connect)", { type: "TCP" }, undefined],
    ["bad hex escape in tcp_send", { type: "TCP", tcp_send: "\\xZZ" }, `${at}.tcp_send: bad escape "\\xZZ"`],
    ["trailing backslash in tcp_expect", { type: "TCP", tcp_expect: "+PONG\\" }, `${at}.tcp_expect: ends with a lone backslash`],
    ["empty tcp_send", { type: "TCP", tcp_send: "" }, `${at}.tcp_send: must not be empty`],
    ["empty tcp_expect", { type: "TCP", tcp_expect: "" }, `${at}.tcp_expect: must not be empty`],
    ["tcp_send on an HTTP monitor", { type: "HTTP", tcp_send: "PING\\r\\n" }, `${at}.tcp_send: is for TCP health checks only; this monitor is HTTP`],
    ["tcp_expect on an HTTP monitor", { type: "HTTP", tcp_expect: "+PONG" }, `${at}.tcp_expect: is for TCP health checks only`],
  ])("%s", (_name, hm, problem) => {
    const r = validateConfig(config(hm));
    if (problem === undefined) {
      expect(r.ok ? [] : r.problems).toEqual([]);
      return;
    }
    expect(r.ok).toBe(false);
    const lines = r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    expect(lines.some((l) => l.startsWith(problem))).toBe(true);
  });

  it("refuses tcp_expect on a UDP_CONNECT monitor", () => {
    const r = validateConfig(config({ type: "UDP_CONNECT", tcp_expect: "x" }, "UDP"));
    expect(r.ok ? [] : r.problems.map((p) => p.path)).toEqual([`${at}.tcp_expect`]);
  });
});
