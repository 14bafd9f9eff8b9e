/**
 * Features the schema accepts but this build does not serve yet. `lb4 start` refuses a
 * config that uses one, naming the field: silently ignoring a setting would be worse.
 * Shrinks to nothing as the features land.
 */
import type { Problem } from "../errors.js";
import type { Config } from "./schema.js";

export function unsupportedFeatures(_config: Config): Problem[] {
  return [];
}
