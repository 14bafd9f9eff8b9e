import { describe, expect, it } from "vitest";
import { murmur3, murmur3Bytes } from "../../../src/scheduling/hash.js";

// Published MurmurHash3_x86_32 vectors (SMHasher / Wikipedia), plus UTF-8 cases checked
// against an independent Python implementation over str.encode("utf-8").
const vectors: [string, number, number][] = [
  ["", 0, 0x00000000],
  ["", 1, 0x514e28b7],
  ["a", 0x9747b28c, 0x7fa09ea6],
  ["abc", 0, 0xb3dd93fa],
  ["aaaa", 0x9747b28c, 0x5a97808a],
  ["hello", 0, 0x248bfa47],
  ["Hello, world!", 1234, 0xfaf6cdb3],
  ["The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2fa826cd],
  ["10.0.0.1", 0, 0xec392163],
  ["2001:db8::1", 7, 0x0cf880ff],
  ["héllo wörld €", 0, 0x1b76f25c],
  ["x😀", 3, 0x3f5d0499],
];

describe("murmur3", () => {
  it.each(vectors)("murmur3(%j, %i) = %i", (s, seed, expected) => {
    expect(murmur3(s, seed)).toBe(expected);
  });

  it.each(vectors)("murmur3Bytes(utf8(%j), %i) = %i", (s, seed, expected) => {
    expect(murmur3Bytes(Buffer.from(s, "utf8"), seed)).toBe(expected);
  });
});
