/**
 * UDP request/response load: `flows` sockets (one source port each), each keeping
 * `inflight` datagrams outstanding and sending the next one as each reply comes back.
 * A datagram unanswered for `timeoutMs` counts as lost and its slot is re-armed with a new
 * generation, so a late reply is ignored rather than double counted.
 *
 * Datagram layout: [slot u16][generation u16][padding up to payloadBytes].
 */
import dgram from "node:dgram";

export interface UdpRrOptions {
  host: string;
  port: number;
  flows: number;
  inflight: number;
  payloadBytes: number;
  durationMs: number;
  /** A datagram unanswered this long is lost and re-sent. Default 250 ms. */
  timeoutMs?: number;
}

export interface UdpRrResult {
  /** Replies received (matching the outstanding generation of their slot). */
  requests: number;
  perSecond: number;
  lost: number;
}

interface Slot {
  buf: Buffer;
  gen: number;
  sentAt: number;
}

export async function udpRequestResponse(opts: UdpRrOptions): Promise<UdpRrResult> {
  const { host, port, flows, inflight, durationMs } = opts;
  const payloadBytes = Math.max(4, opts.payloadBytes);
  const timeoutMs = opts.timeoutMs ?? 250;
  const type = host.includes(":") ? "udp6" : "udp4";
  let requests = 0;
  let lost = 0;
  let running = true;
  const sockets: dgram.Socket[] = [];
  const allSlots: Array<{ sock: dgram.Socket; slots: Slot[] }> = [];

  const connects: Array<Promise<void>> = [];
  for (let f = 0; f < flows; f++) {
    const sock = dgram.createSocket(type);
    sockets.push(sock);
    const slots: Slot[] = [];
    for (let k = 0; k < inflight; k++) {
      const buf = Buffer.alloc(payloadBytes, 0x61);
      buf.writeUInt16BE(k, 0);
      buf.writeUInt16BE(0, 2);
      slots.push({ buf, gen: 0, sentAt: 0 });
    }
    allSlots.push({ sock, slots });
    sock.on("error", () => undefined); // ICMP unreachable while a proxy starts: counted as lost
    sock.on("message", (msg: Buffer) => {
      if (msg.length < 4) return;
      const slot = slots[msg.readUInt16BE(0)];
      if (slot === undefined || msg.readUInt16BE(2) !== slot.gen) return; // late reply of a re-armed slot
      requests++;
      if (!running) return;
      slot.sentAt = performance.now();
      sock.send(slot.buf);
    });
    connects.push(new Promise<void>((resolve, reject) => sock.connect(port, host, (err?: Error) => (err ? reject(err) : resolve()))));
  }
  await Promise.all(connects);

  const start = performance.now();
  for (const { sock, slots } of allSlots) {
    for (const slot of slots) {
      slot.sentAt = start;
      sock.send(slot.buf);
    }
  }

  // Loss check: a few times per timeout, not a timer per datagram.
  const checker = setInterval(() => {
    const now = performance.now();
    for (const { sock, slots } of allSlots) {
      for (const slot of slots) {
        if (now - slot.sentAt < timeoutMs) continue;
        lost++;
        slot.gen = (slot.gen + 1) & 0xffff;
        slot.buf = Buffer.from(slot.buf); // the old one may still sit in a send queue
        slot.buf.writeUInt16BE(slot.gen, 2);
        slot.sentAt = now;
        sock.send(slot.buf);
      }
    }
  }, Math.max(10, Math.floor(timeoutMs / 4)));

  await new Promise((r) => setTimeout(r, durationMs));
  running = false;
  const elapsed = performance.now() - start;
  const counted = requests;
  clearInterval(checker);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return { requests: counted, perSecond: Math.round((counted * 1000) / elapsed), lost };
}
