// An experiment for issue 15 item 5, not lb4 code: a bare UDP proxy on Node's udp_wrap
// handles (no dgram.Socket), to measure what skipping dgram's per-datagram JavaScript
// (argument checks, a closure and a SendWrap per send, EventEmitter dispatch) would gain.
// Same model as lb4 and the naive proxy: one connected upstream handle per client
// address:port, replies sent from the listening handle. No features, no expiry.
// usage: node udp-handles-proxy.mjs LISTEN_PORT UPSTREAM_PORT [UPSTREAM_HOST]
const { UDP, SendWrap } = process.binding("udp_wrap");

const [lp, up, upHost = "127.0.0.1"] = process.argv.slice(2);
const LISTEN_PORT = Number(lp);
const UP_PORT = Number(up);

// One send request and one buffer list reused while sends complete at once (the return
// value is then bytes + 1); a queued send keeps both, and fresh ones are made.
let req = new SendWrap();
let list = [null];
function sent(err) {
  if (err >= 1) return;
  if (err < 0) return; // dropped, as a kernel drop would be
  req.list = list;
  req = new SendWrap();
  list = [null];
}

const flows = new Map(); // address -> Map(port -> flow)

const listener = new UDP();
let e = listener.bind("127.0.0.1", LISTEN_PORT, 0);
if (e !== 0) throw new Error(`bind ${e}`);
listener.onmessage = function (nread, handle, buf, rinfo) {
  if (nread < 0) return;
  let ports = flows.get(rinfo.address);
  let f = ports === undefined ? undefined : ports.get(rinfo.port);
  if (f === undefined) {
    if (ports === undefined) flows.set(rinfo.address, (ports = new Map()));
    const u = new UDP();
    u.bind("0.0.0.0", 0, 0);
    const ce = u.connect(upHost, UP_PORT);
    if (ce !== 0) throw new Error(`connect ${ce}`);
    f = { u, address: rinfo.address, port: rinfo.port };
    u.flow = f;
    u.onmessage = onReply;
    u.recvStart();
    ports.set(rinfo.port, f);
  }
  list[0] = buf;
  sent(f.u.send(req, list, 1, false));
};
function onReply(nread, handle, buf) {
  if (nread < 0) return;
  const f = handle.flow;
  list[0] = buf;
  sent(listener.send(req, list, 1, f.port, f.address, false));
}
listener.recvStart();
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
