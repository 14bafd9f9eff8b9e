/**
 * The instance registry (SPEC §11): each instance keeps a key under `{prefix}instances/` on
 * a lease, so a killed instance disappears when its lease expires. The record says how to
 * reach it (`advertise`), its version and the store revision its running tables came from.
 */
import type { Logger } from "pino";
import { STORE_LEASE_NOT_FOUND, StoreError } from "../errors.js";
import type { EtcdClient } from "../store/etcd.js";
import { instanceKey, instancesPrefix, type ClusterKeys, type InstanceRecord } from "./layout.js";

/** Lease TTL (SPEC §11: at most 10 s). */
export const INSTANCE_TTL_S = 10;
/** Keep-alive period: a third of the TTL, so two can fail before the lease expires. */
const KEEPALIVE_MS = (INSTANCE_TTL_S * 1000) / 3;
/** The record's revision is written at most this often. */
const UPDATE_MS = 1000;

export class InstanceRegistry {
  private lease: string | undefined;
  private record: InstanceRecord;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dirty = false;
  private lastWrite = 0;
  private closed = false;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: ClusterKeys,
    record: Omit<InstanceRecord, "revision">,
    private readonly logger: Logger,
  ) {
    this.record = { ...record, revision: 0 };
  }

  get instanceId(): string {
    return this.record.instance_id;
  }

  /** Register (best effort: with etcd down it keeps trying on the keep-alive period). */
  start(revision: number): void {
    this.record.revision = revision;
    void this.tick();
  }

  /** The revision this instance now runs; written within UPDATE_MS. */
  applied(revision: number): void {
    if (revision === this.record.revision) return;
    this.record.revision = revision;
    this.dirty = true;
    if (Date.now() - this.lastWrite >= UPDATE_MS) void this.write();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      if (this.lease === undefined) {
        this.lease = (await this.client.grantLease(INSTANCE_TTL_S)).id;
        await this.write();
      } else {
        await this.client.keepAlive(this.lease);
        if (this.dirty) await this.write();
      }
    } catch (err) {
      // An expired lease took the key with it: register again.
      if (err instanceof StoreError && err.code === STORE_LEASE_NOT_FOUND) this.lease = undefined;
      this.logger.debug({ ev: "instance_register_failed", err: (err as Error).message }, "instance registration failed; retrying");
    }
    this.schedule(this.lease === undefined ? 1000 : KEEPALIVE_MS);
  }

  private async write(): Promise<void> {
    if (this.lease === undefined || this.closed) return;
    this.dirty = false;
    this.lastWrite = Date.now();
    try {
      await this.client.put(instanceKey(this.keys, this.record.instance_id), JSON.stringify(this.record), { lease: this.lease });
    } catch (err) {
      this.dirty = true;
      if (err instanceof StoreError && err.code === STORE_LEASE_NOT_FOUND) this.lease = undefined;
    }
  }

  /** The live instances (those whose lease holds). */
  async list(): Promise<InstanceRecord[]> {
    const r = await this.client.range(instancesPrefix(this.keys));
    const out: InstanceRecord[] = [];
    for (const kv of r.kvs) {
      try {
        out.push(JSON.parse(kv.value) as InstanceRecord);
      } catch {
        // not ours to read
      }
    }
    return out.sort((a, b) => a.instance_id.localeCompare(b.instance_id));
  }

  /** Leave the list at once (a clean stop), bounded by the client's deadline. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.lease !== undefined) await this.client.revoke(this.lease).catch(() => undefined);
  }
}
