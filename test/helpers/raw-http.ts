/**
 * HTTP with exactly the headers given, Host included (fetch forbids setting Host): for the
 * admin API's Host and Origin checks (SPEC §8).
 */
import http from "node:http";

export interface Reply {
  status: number;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface Req {
  method: string;
  path: string;
  /** Host header; null sends none; an array sends several. Defaults to 127.0.0.1:<port>. */
  host?: string | string[] | null;
  headers?: Record<string, string>;
  body?: string;
}

/** One request over a fresh connection to 127.0.0.1 (or `connectTo`), with exactly the headers given. */
export function send(port: number, r: Req, connectTo = "127.0.0.1"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // As a flat [name, value, …] list (node's rawHeaders shape), so a header can repeat.
    const headers: string[] = [];
    if (r.host !== null) for (const h of [r.host ?? `127.0.0.1:${port}`].flat()) headers.push("host", h);
    for (const [k, v] of Object.entries(r.headers ?? {})) headers.push(k, v);
    if (r.body !== undefined) headers.push("content-length", String(Buffer.byteLength(r.body)));
    const req = http.request({ host: connectTo, port, method: r.method, path: r.path, headers, agent: false, setHost: false, timeout: 10_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode!, text, body });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${r.method} ${r.path}: no answer within 10 s`)));
    req.on("error", reject);
    req.end(r.body);
  });
}

