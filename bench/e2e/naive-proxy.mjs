// The naive Node proxy the end-to-end benchmark compares lb4 with: what anyone would write
// in ten lines. TCP: two pipes, an error on either side destroys both. UDP: one upstream
// socket per client address:port, replies sent back from the listening socket.
// usage: node naive-proxy.mjs tcp|udp LISTEN_PORT UPSTREAM_PORT [UPSTREAM_HOST]
import net from "node:net";
import dgram from "node:dgram";

const [mode, listenArg, upArg, upHost = "127.0.0.1"] = process.argv.slice(2);
const listenPort = Number(listenArg);
const upPort = Number(upArg);
if ((mode !== "tcp" && mode !== "udp") || !listenPort || !upPort) {
  console.error("usage: node naive-proxy.mjs tcp|udp LISTEN_PORT UPSTREAM_PORT [UPSTREAM_HOST]");
  process.exit(2);
}

if (mode === "tcp") {
  net
    .createServer((c) => {
      const u = net.connect(upPort, upHost);
      const both = () => {
        c.destroy();
        u.destroy();
      };
      c.on("error", both);
      u.on("error", both);
      c.pipe(u);
      u.pipe(c);
    })
    .listen(listenPort, "127.0.0.1");
} else {
  const server = dgram.createSocket("udp4");
  const flows = new Map();
  server.on("message", (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = flows.get(key);
    if (!flow) {
      const u = dgram.createSocket("udp4");
      flow = { u, last: Date.now() };
      u.on("message", (reply) => server.send(reply, rinfo.port, rinfo.address));
      u.on("error", () => {});
      u.connect(upPort, upHost);
      flow.pending = [];
      u.once("connect", () => {
        for (const m of flow.pending) u.send(m);
        flow.pending = null;
      });
      flows.set(key, flow);
    }
    flow.last = Date.now();
    if (flow.pending) flow.pending.push(msg);
    else flow.u.send(msg);
  });
  setInterval(() => {
    const now = Date.now();
    for (const [k, f] of flows) if (now - f.last > 30_000) (f.u.close(), flows.delete(k));
  }, 5000).unref();
  server.bind(listenPort, "127.0.0.1");
}
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
