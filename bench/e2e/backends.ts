/**
 * Backends behind every target, all on the load CPU: nginx http (a C server answering a
 * tiny `200 ok` with keep-alive, so the backend is not the bottleneck), iperf3 -s (or a
 * node sink) for bulk throughput, a node UDP echo for request/response.
 */
import fs from "node:fs";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { freePort, hasCommand, spawnTracked, stopChild, waitListening } from "./proc.js";
import { ROOT } from "./targets.js";

export interface Backend {
  kind: string;
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

function backend(kind: string, port: number, child: ChildProcess): Backend {
  return { kind, port, child, stop: () => stopChild(child, "SIGTERM", 3000) };
}

export async function startHttpBackend(tmp: string, cpu: number | undefined): Promise<Backend> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(tmp, "http-backend-"));
  if (hasCommand("nginx")) {
    const cfg = `daemon off;
worker_processes 1;
worker_rlimit_nofile 200000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 100000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / { return 200 "ok"; }
  }
}
`;
    const cfgFile = path.join(dir, "nginx.conf");
    fs.writeFileSync(cfgFile, cfg);
    const child = spawnTracked("nginx", ["-p", dir, "-e", path.join(dir, "error.log"), "-c", cfgFile], { cpu, stdout: path.join(dir, "out.log"), stderr: path.join(dir, "out.log") });
    await waitListening("tcp", port, 10_000, child, "nginx http backend");
    return backend("nginx http (return 200 \"ok\", keep-alive)", port, child);
  }
  const script = `require("node:http").createServer({ keepAliveTimeout: 300000 }, (q, s) => s.end("ok")).listen(${port}, "127.0.0.1")`;
  const child = spawnTracked(process.execPath, ["-e", script], { cpu, stdout: path.join(dir, "out.log"), stderr: path.join(dir, "out.log") });
  await waitListening("tcp", port, 10_000, child, "node http backend");
  return backend("node http (nginx missing)", port, child);
}

export async function startBulkBackend(tmp: string, cpu: number | undefined): Promise<Backend & { tool: "iperf3" | "node" }> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(tmp, "bulk-backend-"));
  if (hasCommand("iperf3")) {
    const child = spawnTracked("iperf3", ["-s", "-p", String(port), "-B", "127.0.0.1"], { cpu, stdout: path.join(dir, "iperf3.log"), stderr: path.join(dir, "iperf3.log") });
    await waitListening("tcp", port, 10_000, child, "iperf3 -s");
    return { ...backend("iperf3 -s", port, child), tool: "iperf3" };
  }
  const child = spawnTracked(process.execPath, [path.join(ROOT, "bench/e2e/bulk-node.mjs"), "server", String(port)], { cpu, stdout: path.join(dir, "sink.log"), stderr: path.join(dir, "sink.log") });
  await waitListening("tcp", port, 10_000, child, "node bulk sink");
  return { ...backend("node sink (iperf3 missing)", port, child), tool: "node" };
}

export async function startUdpEcho(tmp: string, cpu: number | undefined): Promise<Backend> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(tmp, "udp-echo-"));
  const child = spawnTracked(process.execPath, [path.join(ROOT, "bench/e2e/udp-echo.mjs"), String(port)], { cpu, stdout: path.join(dir, "echo.log"), stderr: path.join(dir, "echo.log") });
  await waitListening("udp", port, 10_000, child, "udp echo");
  return backend("node UDP echo", port, child);
}
