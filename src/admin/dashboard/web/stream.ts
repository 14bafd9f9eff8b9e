/// <reference lib="dom" />
/**
 * The event stream read with fetch (not EventSource, which cannot send the token in a
 * header): parsed by the same SSE reader as the CLI's, resumed after the last seq on every
 * reconnect, so no control event is missed while the connection was down.
 */
import { SseParser, type SseMessage } from "../../sse.js";
import { apiUrl, askToken, streamHeaders } from "./api.js";

export interface StreamHandlers {
  message(m: SseMessage): void;
  connected(up: boolean): void;
}

export interface EventStream {
  /** The last event seq seen (where a reconnect resumes). */
  readonly lastSeq: number;
  close(): void;
}

export function openEventStream(since: number, on: StreamHandlers): EventStream {
  const abort = new AbortController();
  let lastSeq = since;
  let retryMs = 1000;
  let wrongToken = false;

  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await fetch(apiUrl(`v3/elb/events?since=${lastSeq}`), { headers: streamHeaders(), signal: abort.signal, cache: "no-store" });
        if (res.status === 401) {
          on.connected(false);
          await askToken(wrongToken);
          wrongToken = true;
          continue;
        }
        if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
        wrongToken = false;
        on.connected(true);
        const parser = new SseParser();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const m of parser.push(value)) {
            if (m.id !== undefined && /^\d+$/.test(m.id)) lastSeq = Number(m.id);
            on.message(m);
          }
          if (parser.retry !== undefined) retryMs = parser.retry;
        }
      } catch {
        // dropped or refused: reconnect below
      }
      if (abort.signal.aborted) return;
      on.connected(false);
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return {
    get lastSeq() {
      return lastSeq;
    },
    close: () => abort.abort(),
  };
}
