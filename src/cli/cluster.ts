/**
 * `lb4 cluster push --config FILE` (SPEC §11): validate a file and make its load balancers
 * what the cluster's etcd holds — with the store's cross-VPC facts, so a change the rules
 * forbid (turning cross-VPC off) is refused — in one transaction on the revisions read, so
 * a concurrent change makes it fail rather than be overwritten.
 */
import type { Command } from "commander";
import { crossVpcKey, lbKey, classify } from "../cluster/layout.js";
import { Lb4Error } from "../errors.js";
import { EtcdClient, type Compare, type TxnOp } from "../store/etcd.js";
import { CONFIG_ENV, DEFAULT_CONFIG_FILE, configSource, loadSource } from "./config-source.js";

export function registerCluster(program: Command): void {
  const cluster = program.command("cluster").description("Several lb4 instances sharing their load balancers through etcd (SPEC §11).");
  cluster
    .command("push")
    .description(
      "Validate a config file and write its load balancers to the cluster's etcd (its cluster: block says where), replacing what is there: " +
        "every running instance applies it within a second. Refuses an invalid file, and any change the rules forbid given what the store holds " +
        "(e.g. turning cross-VPC off on a load balancer where it was ever on). Exit 0 when written.",
    )
    .option("-c, --config <file>", `config file with a cluster: block; default: $${CONFIG_ENV} (YAML text) if set, else ${DEFAULT_CONFIG_FILE}`)
    .addHelpText("after", "\nExample:\n  lb4 cluster push --config lb4.yaml")
    .action(async (opts: { config?: string }) => {
      const src = await configSource(opts.config);
      const first = await loadSource(src);
      const c = first.config.cluster;
      if (!c) throw new Lb4Error("LB4.NOT_CLUSTERED", `${first.file} has no cluster: block; add one (etcd endpoints, prefix) to say which store to write`);
      const client = new EtcdClient({ endpoints: c.etcd });
      // One read of the prefix: the facts and the load balancers at the same revision.
      const all = await client.range(c.prefix);
      const everEnabled = new Set(all.kvs.map((kv) => classify(c, kv.key)).flatMap((k) => (k?.kind === "cross_vpc" ? [k.id] : [])));
      // Validated again with the store's facts: the cross-VPC rules see what the cluster has done.
      const { config } = await loadSource(src, { ctx: { everEnabled } });
      const stored = all.kvs.filter((kv) => classify(c, kv.key)?.kind === "lb");
      const compare: Compare[] = [];
      // A fact written meanwhile (cross-VPC turned on elsewhere) must make this push fail, not be turned off by it.
      for (const lb of config.loadbalancers) if (!lb.ip_target_enable && !everEnabled.has(lb.id)) compare.push({ key: crossVpcKey(c, lb.id), createRevision: 0 });
      const ops: TxnOp[] = [];
      const keep = new Set(config.loadbalancers.map((lb) => lbKey(c, lb.id)));
      for (const kv of stored) {
        compare.push({ key: kv.key, modRevision: kv.modRevision });
        if (!keep.has(kv.key)) ops.push({ type: "delete", key: kv.key });
      }
      const had = new Set(stored.map((kv) => kv.key));
      for (const lb of config.loadbalancers) {
        const key = lbKey(c, lb.id);
        if (!had.has(key)) compare.push({ key, createRevision: 0 });
        ops.push({ type: "put", key, value: JSON.stringify(lb) });
        if (lb.ip_target_enable && !everEnabled.has(lb.id)) ops.push({ type: "put", key: crossVpcKey(c, lb.id), value: "1" });
      }
      const r = await client.txn({ compare, success: ops });
      if (!r.succeeded) throw new Lb4Error("LB4.STORE_CONFLICT", "the store changed while this push was being prepared (another push or a member change); run lb4 cluster push again");
      const removed = stored.filter((kv) => !keep.has(kv.key)).map((kv) => classify(c, kv.key)?.id ?? kv.key);
      console.log(
        `wrote ${config.loadbalancers.length} load balancer(s) to ${c.etcd.join(",")} under ${c.prefix} at revision ${r.revision}` +
          (removed.length ? `; removed: ${removed.join(", ")}` : "") +
          "; running instances apply it within a second",
      );
    });
}
