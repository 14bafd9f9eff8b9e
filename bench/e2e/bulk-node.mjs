// Bulk TCP throughput without iperf3 (fallback when it is not installed).
//   node bulk-node.mjs server PORT
//   node bulk-node.mjs client PORT STREAMS DURATION_MS   -> prints {"bitsPerSecond":..}
// The client writes 64 KiB chunks on every stream for DURATION_MS, then half-closes; the
// server counts what it received and answers with the count once the stream has ended, so
// the figure is bytes actually delivered over the time until the last count came back.
import net from "node:net";

const [mode, portArg, streamsArg, durArg] = process.argv.slice(2);
const port = Number(portArg);

if (mode === "server") {
  net
    .createServer({ allowHalfOpen: true }, (c) => {
      let n = 0;
      c.on("data", (d) => (n += d.length));
      c.on("end", () => c.end(`${n}\n`));
      c.on("error", () => c.destroy());
    })
    .listen(port, "127.0.0.1");
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
} else {
  const streams = Number(streamsArg);
  const durationMs = Number(durArg);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const started = performance.now();
  const one = () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      let reply = "";
      let stop = false;
      setTimeout(() => (stop = true), durationMs);
      const pump = () => {
        while (!stop) if (!s.write(chunk)) return void s.once("drain", pump);
        s.end();
      };
      s.on("connect", pump);
      s.setEncoding("utf8").on("data", (d) => (reply += d));
      s.on("end", () => resolve(Number(reply.trim())));
      s.on("error", reject);
    });
  Promise.all(Array.from({ length: streams }, one)).then(
    (counts) => {
      const secs = (performance.now() - started) / 1000;
      const bytes = counts.reduce((a, b) => a + b, 0);
      console.log(JSON.stringify({ bytes, seconds: secs, bitsPerSecond: (bytes * 8) / secs }));
      process.exit(0);
    },
    (e) => {
      console.error(String(e));
      process.exit(1);
    },
  );
}
