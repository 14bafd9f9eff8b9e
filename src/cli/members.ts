/**
 * `lb4 members list|add|remove|set-weight|set-admin|find`: member changes on a running lb4 through the
 * admin API, and the reverse lookup, online (API) or offline (`find --config FILE`).
 */
import { Argument, Option, type Command } from "commander";
import { findMemberships, type Membership, type MemberView } from "../admin/views.js";
import { storeLoadBalancers } from "../cluster/layout.js";
import { EtcdClient } from "../store/etcd.js";
import { loadConfigFile } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { ConfigError, Lb4Error } from "../errors.js";
import { memberKey } from "../model/member.js";
import { seg } from "./admin-client.js";
import { adminOptions, clientFor, intArg, printJson, table, usage, type AdminOptions } from "./format.js";

const MEMBER_HEADERS = ["ID", "NAME", "ADDRESS", "WEIGHT", "EFFECTIVE", "STATUS", "ADMIN", "ACTIVE", "INSTANCE"];

/** "10.0.0.5:80" / "[fd00::5]:80": the one address:port formatter, shared with the logs. */
export const hostPort = memberKey;

/** OFFLINE alone reads as a failure: a member not checked yet says so. */
export function statusText(m: Pick<MemberView, "operating_status" | "health">): string {
  return m.health === "UNCHECKED" ? `${m.operating_status} (UNCHECKED)` : m.operating_status;
}

export function memberRows(members: readonly MemberView[]): Array<Array<string | number | null>> {
  return members.map((m) => [
    m.id,
    m.name,
    hostPort(m.address, m.protocol_port),
    m.weight,
    m.effective_weight,
    statusText(m),
    m.admin_state_up ? "up" : "down",
    m.active_connections,
    m.instance_id,
  ]);
}

export function membersTable(members: readonly MemberView[], indent = ""): string {
  return table(MEMBER_HEADERS, memberRows(members), indent);
}

function membershipTable(ms: readonly Membership[]): string {
  return table(
    ["LOADBALANCER", "POOL", "LISTENERS", "MEMBER", "ADDRESS", "WEIGHT", "STATUS", "INSTANCE"],
    ms.map((m) => [m.loadbalancer_id, m.pool_id, m.listener_ids.join(",") || "-", m.member_id, hostPort(m.address, m.protocol_port), m.weight, m.operating_status, m.instance_id]),
  );
}

function describe(m: MemberView): string {
  const eff = m.effective_weight === null ? "" : `, effective ${m.effective_weight}`;
  return `${m.id} ${hostPort(m.address, m.protocol_port)} weight ${m.weight}${eff}, ${statusText(m)}${m.admin_state_up ? "" : ", admin down"}`;
}

/**
 * The file for an offline lookup. A placeholder whose variable is not set in this shell
 * (typically `token: ${LB4_ADMIN_TOKEN}`) should not stop a lookup: when unset variables are
 * the only problem, the file is read again with them set to the text "unset"; if that is still
 * invalid, the original error stands.
 */
async function loadForLookup(file: string): Promise<Config> {
  try {
    return (await loadConfigFile(file)).config;
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.problems.every((p) => /^environment variable \S+ is not set/.test(p.message))) throw err;
    const env = new Proxy(process.env, { get: (t, k) => (typeof k === "string" ? (t[k] ?? "unset") : undefined) });
    try {
      return (await loadConfigFile(file, { env })).config;
    } catch {
      throw err;
    }
  }
}

export function registerMembers(program: Command): void {
  const members = program
    .command("members")
    .description("List, add, remove, re-weight and take down/up the members of a running lb4's pools (through its admin API), and find where a backend is used.")
    .addHelpText(
      "after",
      `
Examples:
  lb4 members list --pool pool-web
  lb4 members add --pool pool-web --address 10.0.1.15 --port 8080 --weight 5 --instance-id ecs-0015
  lb4 members set-weight --pool pool-web --id m-3 --weight 0
  lb4 members set-admin --pool pool-web --id m-3 down
  lb4 members remove --pool pool-web --id m-3
  lb4 members find --address 10.0.1.15
  lb4 members find --instance-id ecs-0015 --config lb4.yaml   (offline, from the file)

The admin API is http://127.0.0.1:9870 unless --admin URL or LB4_ADMIN_URL says otherwise;
the token comes from --token or LB4_ADMIN_TOKEN. Exit codes: 0 ok, 1 refused / not found /
unreachable, 2 usage error.`,
    );

  adminOptions(
    members
      .command("list")
      .description("List a pool's members with operating status, weight, effective weight and open connections.")
      .requiredOption("--pool <pool_id>", "pool id")
      .addHelpText("after", "\nExamples:\n  lb4 members list --pool pool-web\n  lb4 members list --pool pool-web --json --admin http://127.0.0.1:9870 --token $LB4_ADMIN_TOKEN"),
  ).action(async (opts: AdminOptions & { pool: string }) => {
    const r = await clientFor(opts).get<{ members: MemberView[] }>(`/v3/elb/pools/${seg(opts.pool)}/members`);
    if (opts.json) return printJson(r);
    console.log(r.members.length ? membersTable(r.members) : `pool ${opts.pool} has no members`);
  });

  adminOptions(
    members
      .command("add")
      .description("Add a member to a pool. The change is validated whole, persisted under state_dir, then applied; it survives restarts.")
      .requiredOption("--pool <pool_id>", "pool id")
      .requiredOption("--address <ip>", "the backend's IPv4 or IPv6 address")
      .requiredOption("--port <port>", "the backend's port (1-65535)", intArg("--port"))
      .option("--weight <weight>", "weight 0-100 (default 1; 0 = no new connections)", intArg("--weight"))
      .option("--id <member_id>", "member id (default: generated, m-<8 hex digits>)")
      .option("--name <name>", "display name")
      .option("--instance-id <id>", "the server's own id, for reverse lookup")
      .addOption(new Option("--admin-state-down", "add it with admin_state_up false (no traffic until set up)"))
      .addHelpText(
        "after",
        "\nExamples:\n  lb4 members add --pool pool-web --address 127.0.0.1 --port 9002\n  lb4 members add --pool pool-web --address 10.0.1.15 --port 8080 --weight 5 --id m-web-15 --name web-15 --instance-id ecs-0015",
      ),
  ).action(
    async (
      opts: AdminOptions & { pool: string; address: string; port: number; weight?: number; id?: string; name?: string; instanceId?: string; adminStateDown?: boolean },
    ) => {
      const member: Record<string, unknown> = { address: opts.address, protocol_port: opts.port };
      if (opts.weight !== undefined) member.weight = opts.weight;
      if (opts.id !== undefined) member.id = opts.id;
      if (opts.name !== undefined) member.name = opts.name;
      if (opts.instanceId !== undefined) member.instance_id = opts.instanceId;
      if (opts.adminStateDown) member.admin_state_up = false;
      const r = await clientFor(opts).post<{ member: MemberView }>(`/v3/elb/pools/${seg(opts.pool)}/members`, { member });
      if (opts.json) return printJson(r);
      console.log(`added to pool ${opts.pool}: ${describe(r.member)}`);
    },
  );

  adminOptions(
    members
      .command("remove")
      .description("Remove a member from a pool. No new connections go to it; open ones drain per the pool's connection_drain.")
      .requiredOption("--pool <pool_id>", "pool id")
      .requiredOption("--id <member_id>", "member id")
      .addHelpText("after", "\nExample:\n  lb4 members remove --pool pool-web --id m-3"),
    { json: false },
  ).action(async (opts: AdminOptions & { pool: string; id: string }) => {
    await clientFor(opts).delete(`/v3/elb/pools/${seg(opts.pool)}/members/${seg(opts.id)}`);
    console.log(`removed member ${opts.id} from pool ${opts.pool}; its open connections drain per the pool's connection_drain`);
  });

  adminOptions(
    members
      .command("set-weight")
      .description("Change a member's weight (0-100). Applies to new connections; weight 0 = no new connections, open ones continue (or drain).")
      .requiredOption("--pool <pool_id>", "pool id")
      .requiredOption("--id <member_id>", "member id")
      .requiredOption("--weight <weight>", "new weight 0-100", intArg("--weight"))
      .addHelpText("after", "\nExamples:\n  lb4 members set-weight --pool pool-web --id m-3 --weight 0     (take it out of rotation)\n  lb4 members set-weight --pool pool-web --id m-3 --weight 10"),
  ).action(async (opts: AdminOptions & { pool: string; id: string; weight: number }) => {
    const r = await clientFor(opts).put<{ member: MemberView }>(`/v3/elb/pools/${seg(opts.pool)}/members/${seg(opts.id)}`, { member: { weight: opts.weight } });
    if (opts.json) return printJson(r);
    console.log(`pool ${opts.pool}: ${describe(r.member)}`);
  });

  adminOptions(
    members
      .command("set-admin")
      .description(
        "Take a member administratively down (no new connections; open ones continue, or drain per the pool's connection_drain) or bring it back up. " +
          "Sets admin_state_up through the admin API; persisted like every member change.",
      )
      .requiredOption("--pool <pool_id>", "pool id")
      .requiredOption("--id <member_id>", "member id")
      .addArgument(new Argument("<state>", "up or down").choices(["up", "down"]))
      .addHelpText("after", "\nExamples:\n  lb4 members set-admin --pool pool-web --id m-1 down   (maintenance: no new connections)\n  lb4 members set-admin --pool pool-web --id m-1 up"),
  ).action(async (state: "up" | "down", opts: AdminOptions & { pool: string; id: string }) => {
    const r = await clientFor(opts).put<{ member: MemberView }>(`/v3/elb/pools/${seg(opts.pool)}/members/${seg(opts.id)}`, { member: { admin_state_up: state === "up" } });
    if (opts.json) return printJson(r);
    console.log(`pool ${opts.pool}: ${describe(r.member)}`);
  });

  adminOptions(
    members
      .command("find")
      .description(
        "Reverse lookup: every load balancer, pool and listener a backend serves, with its status, weight and port. " +
          "Through the admin API of a running lb4, or offline from a config file with --config. Exit 1 when it is in no pool.",
      )
      .option("--address <ip>", "the backend's IP address")
      .option("--instance-id <id>", "the backend's instance_id")
      .option("-c, --config <file>", "look it up in this config file instead (offline: no running lb4 needed; runtime changes and health are not known; with a cluster: block, in the load balancers its etcd holds)")
      .addHelpText(
        "after",
        "\nExamples:\n  lb4 members find --address 10.0.1.15\n  lb4 members find --instance-id ecs-0015 --json\n  lb4 members find --address 10.0.1.15 --config lb4.yaml   (offline)\n\nGive exactly one of --address and --instance-id.",
      ),
  ).action(async (opts: AdminOptions & { address?: string; instanceId?: string; config?: string }) => {
    if ((opts.address === undefined) === (opts.instanceId === undefined)) throw usage("members find: give exactly one of --address <ip> and --instance-id <id>");
    const what = opts.address !== undefined ? `address ${opts.address}` : `instance_id ${opts.instanceId}`;
    let found: Membership[];
    if (opts.config !== undefined) {
      let config = await loadForLookup(opts.config);
      // With a cluster: block the store holds the load balancers (SPEC §11): the answer is the cluster's.
      if (config.cluster) config = { ...config, loadbalancers: await storeLoadBalancers(new EtcdClient({ endpoints: config.cluster.etcd }), config.cluster) };
      found = findMemberships(config, opts.address !== undefined ? { address: opts.address } : { instance_id: opts.instanceId! });
    } else {
      const q = opts.address !== undefined ? `address=${encodeURIComponent(opts.address)}` : `instance_id=${encodeURIComponent(opts.instanceId!)}`;
      found = (await clientFor(opts).get<{ members: Membership[] }>(`/v3/elb/members?${q}`)).members;
    }
    if (opts.json) printJson({ members: found });
    else if (found.length) console.log(membershipTable(found));
    if (!found.length) throw new Lb4Error("LB4.NOT_FOUND", `no pool has a member with ${what}${opts.config ? ` in ${opts.config}` : ""}`);
  });
}
