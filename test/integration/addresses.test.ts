/** Address spellings through the engine: what runs, what a runtime change is checked against. */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { useEngineFixture } from "../helpers/engine.js";
import { nameServer, request } from "../helpers/net.js";

const fx = useEngineFixture();

describe("canonical member addresses in the engine", () => {
  it("a member given as ::ffff:127.0.0.1 runs as 127.0.0.1, and the same backend spelt 127.0.0.1 is refused as a duplicate", async () => {
    const a = await fx.track(nameServer("a"));
    const { h, port } = await fx.lb({ members: [{ address: "::ffff:127.0.0.1", protocol_port: a.port }] });
    expect(h.config.loadbalancers[0]!.pools[0]!.members[0]!.address).toBe("127.0.0.1");
    expect([...h.engine.lbs.get("lb-1")!.pools.get("pool-1")!.members.values()].map((m) => m.key)).toEqual([`127.0.0.1:${a.port}`]);
    expect(await request(port)).toBe("a");

    const err = await h.addMember("pool-1", { id: "m-x", address: "127.0.0.1", protocol_port: a.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([expect.objectContaining({ code: "LB4.DUPLICATE_MEMBER" })]);
    expect(h.config.loadbalancers[0]!.pools[0]!.members.map((m) => m.id)).toEqual(["m-0"]);
  });
});
