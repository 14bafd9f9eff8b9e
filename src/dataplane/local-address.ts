/**
 * Which of the cross-VPC source addresses (SPEC §6 rule 5) exist on this host: an address
 * is usable as a connection's local address exactly when a socket can bind to it. Checked
 * once per apply, not per connection.
 */
import dgram from "node:dgram";

const cache = new Map<string, Promise<boolean>>();

export function isLocalAddress(address: string, fresh = false): Promise<boolean> {
  let p = fresh ? undefined : cache.get(address);
  if (!p) {
    p = new Promise<boolean>((resolve) => {
      const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
      s.once("error", () => {
        s.close();
        resolve(false);
      });
      s.bind(0, address, () => {
        s.close();
        resolve(true);
      });
    });
    cache.set(address, p);
  }
  return p;
}

/** `fresh`: look again (a reload: the operator may have added the addresses since). */
export async function usableLocalAddresses(addresses: readonly string[], fresh = false): Promise<string[]> {
  const ok = await Promise.all(addresses.map((a) => isLocalAddress(a, fresh)));
  return addresses.filter((_, i) => ok[i]);
}
