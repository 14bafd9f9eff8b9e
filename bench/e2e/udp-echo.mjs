// UDP echo backend for the end-to-end benchmark: every datagram goes back to its sender.
// usage: node udp-echo.mjs PORT
import dgram from "node:dgram";

const port = Number(process.argv[2]);
// dgram resolves every send's address through `lookup`; the literal is answered at once.
const lookup = (a, f, cb) => cb(null, a, typeof f === "number" ? f : 4);
const s = dgram.createSocket({ type: "udp4", lookup, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
s.on("message", (msg, r) => s.send(msg, r.port, r.address));
s.on("error", (e) => console.error(e));
s.bind(port, "127.0.0.1");
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
