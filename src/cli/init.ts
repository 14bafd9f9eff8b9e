/**
 * `lb4 init [--out FILE] [--force]`: a commented starter config on loopback that validates
 * as it is, so a first `lb4 start` works before anything is edited. Never overwrites a file
 * unless told to.
 */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { Lb4Error } from "../errors.js";

/** The starter config. Every block says what it is for; the values are the defaults or close to them. */
export const STARTER_CONFIG = `# lb4 configuration (written by \`lb4 init\`). Check it: lb4 validate --config lb4.yaml
# Run it: lb4 start --config lb4.yaml. Field names follow the cloud ELB v3 API; \${NAME}
# anywhere in a value is replaced from the environment.

# Admin HTTP API, /metrics and /healthz (lb4 status, lb4 members ... talk to it).
# On a loopback address it may run without a token; on any other address a token is
# required: uncomment the token line and export LB4_ADMIN_TOKEN before lb4 start.
admin:
  listen: 127.0.0.1:9870
  # token: \${LB4_ADMIN_TOKEN}

# Where members changed at runtime (API, CLI) and last known health are kept; they survive
# restarts. A relative path is relative to this file's folder.
state_dir: ./lb4-state

# Processes serving TCP: auto = one worker per core (the primary keeps the admin API, health
# checks and UDP); 1 = everything in one process. lb4 start --workers N overrides it.
workers: auto

# fatal | error | warn | info | debug | trace | silent. At info: one access-log line per connection.
log: { level: info }

# Load balancers: each has one frontend address (vip_address), its listeners and its pools.
loadbalancers:
  - id: lb-web
    name: web
    vip_address: 127.0.0.1          # the listeners bind here (IPv4 or IPv6); 0.0.0.0 = every address

    # Listeners: the ports clients connect to. Here one TCP port in front of pool-web.
    # keepalive_timeout: idle seconds before both sides are closed; connection_limit: 0 = unlimited.
    listeners:
      - id: ls-web
        protocol: TCP
        protocol_port: 8080
        default_pool_id: pool-web
        keepalive_timeout: 300
        connection_limit: 0
        # Access control: white = only these clients, black = all but these (IPv4, IPv6, CIDRs).
        # ipgroup: { type: white, ip_list: [10.0.0.0/8, "::1"] }
      # A UDP listener may share the port number of a TCP one (its pool must be UDP):
      # - { id: ls-dns, protocol: UDP, protocol_port: 5353, default_pool_id: pool-dns }

    # Pools: the backend servers (members) and how new connections are spread over them.
    pools:
      - id: pool-web
        protocol: TCP                 # the protocol of every listener that uses this pool
        lb_algorithm: ROUND_ROBIN     # ROUND_ROBIN (weighted, smooth) | LEAST_CONNECTIONS | SOURCE_IP (consistent hash)
        # Health checks: a TCP connect every 5 s. A member goes online at its first passed check;
        # then 3 failures take it offline and 3 passes bring it back. No healthmonitor = always
        # online. For HTTP: { type: HTTP, url_path: /health, expected_codes: "200-299" }.
        healthmonitor: { type: TCP, delay: 5, timeout: 3, max_retries: 3, max_retries_down: 3 }
        # A member added later ramps its weight up over 60 s instead of taking its full share at once.
        slow_start: { enable: true, duration: 60 }
        # A removed (or offline, or weight 0) member's open connections may finish for up to 60 s.
        connection_drain: { enable: true, timeout: 60 }
        members:
          # weight 0-100: share of new connections (0 = none). instance_id: the server's own id,
          # for reverse lookup (lb4 members find --instance-id ecs-0001).
          - { id: m-1, name: web-1, address: 127.0.0.1, protocol_port: 9001, weight: 5, instance_id: ecs-0001 }
          - { id: m-2, name: web-2, address: 127.0.0.1, protocol_port: 9002, weight: 3, instance_id: ecs-0002 }
`;

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("Write a commented starter config (loopback addresses, an admin API, one TCP listener and pool) that validates as it is.")
    .option("-o, --out <file>", "write it to this file instead of stdout")
    .option("-f, --force", "overwrite --out if it exists")
    .addHelpText(
      "after",
      "\nExamples:\n  lb4 init --out lb4.yaml && lb4 validate --config lb4.yaml && lb4 start --config lb4.yaml\n  lb4 init > lb4.yaml\n\nWithout --force, an existing --out file is never touched (exit 1).",
    )
    .action(async (opts: { out?: string; force?: boolean }) => {
      if (opts.out === undefined) {
        process.stdout.write(STARTER_CONFIG);
        return;
      }
      try {
        // "wx": refuse an existing file atomically, not check-then-write.
        await writeFile(opts.out, STARTER_CONFIG, { flag: opts.force ? "w" : "wx" });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EEXIST") throw new Lb4Error("LB4.FILE_EXISTS", `${opts.out} already exists; pass --force to overwrite it, or choose another --out`);
        throw new Lb4Error("LB4.WRITE_FAILED", `cannot write ${opts.out} (${code ?? (err as Error).message}); check the folder exists and is writable`);
      }
      console.error(`wrote ${opts.out}; check it with: lb4 validate --config ${opts.out}; run it with: lb4 start --config ${opts.out}`);
    });
}
