/** Public API: `import { startLoadBalancer } from "lb4"`. */
export { startLoadBalancer, Engine, DEFAULT_TUNING } from "./engine.js";
export type { LoadBalancerHandle, EngineOptions, StartOptions, MemberPatch, Tuning } from "./engine.js";
export { validateConfig, parseConfig } from "./config/validate.js";
export { loadConfigFile } from "./config/load.js";
export type {
  Config,
  ConfigInput,
  LoadBalancerConfig,
  ListenerConfig,
  PoolConfig,
  MemberConfig,
  MemberInput,
  HealthMonitorConfig,
} from "./config/schema.js";
export { Lb4Error, ConfigError, NotFoundError, ConflictError, NotSupportedError } from "./errors.js";
export type { Problem } from "./errors.js";
export { createLogger } from "./log.js";
