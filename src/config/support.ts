/**
 * Features the schema accepts but this build does not serve yet. `lb4 start` refuses a
 * config that uses one, naming the field: silently ignoring a setting would be worse.
 * Shrinks to nothing as the features land.
 */
import type { Problem } from "../errors.js";
import type { Config } from "./schema.js";

export function unsupportedFeatures(config: Config): Problem[] {
  const out: Problem[] = [];
  const no = (path: string, what: string) =>
    out.push({ path, code: "LB4.NOT_SUPPORTED", message: `${what} is not supported yet by this build of lb4; remove it to start` });
  config.loadbalancers.forEach((lb, li) => {
    lb.listeners.forEach((ls, i) => {
      if (ls.protocol === "UDP") no(`loadbalancers[${li}].listeners[${i}].protocol`, "a UDP listener");
    });
  });
  return out;
}
