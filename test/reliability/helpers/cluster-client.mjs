// The test's client inside one lb namespace (`ip netns exec NS node cluster-client.mjs`): the
// test process cannot enter a namespace, so it sends this one JSON lines on stdin and reads
// JSON lines back. One op: {"id", "host", "port", "count", "bind"?, "timeoutMs"?} opens `count`
// connections one after the other (from `bind` when given), sends "r<seq>\n" on each and
// reads the backend's "NAME r<seq>" answer; replies {"id", "results": [{member|null, error?,
// start, end}]}. Prints "ready" first; exits when stdin closes.
import net from "node:net";
import readline from "node:readline";

let seq = 0;

function one(host, port, bind, timeoutMs) {
  const start = Date.now();
  const n = seq++;
  return new Promise((resolve) => {
    const opts = { host, port };
    if (bind) opts.localAddress = bind;
    const s = net.connect(opts);
    let buf = "";
    let done = false;
    const finish = (member, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (member) s.end();
      else s.resetAndDestroy();
      resolve(error === undefined ? { member, start, end: Date.now() } : { member: null, error, start, end: Date.now() });
    };
    const timer = setTimeout(() => finish(null, "timeout"), timeoutMs);
    s.setNoDelay(true);
    s.on("connect", () => s.write(`r${n}\n`));
    s.on("data", (c) => {
      buf += c.toString("latin1");
      const i = buf.indexOf("\n");
      if (i < 0) return;
      const [name, echoed] = buf.slice(0, i).split(" ");
      if (echoed === `r${n}` && name) finish(name);
      else finish(null, `bad answer ${JSON.stringify(buf.slice(0, 80))}`);
    });
    s.on("error", (err) => finish(null, err.code ?? err.message));
    s.on("close", () => finish(null, "closed before the answer"));
  });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  const results = [];
  for (let i = 0; i < Math.min(1000, req.count ?? 1); i++) results.push(await one(req.host, req.port, req.bind, req.timeoutMs ?? 2000));
  process.stdout.write(JSON.stringify({ id: req.id, results }) + "\n");
});
rl.on("close", () => process.exit(0));
console.log("ready");
