/**
 * The settle-once skeleton every prober shares: one timer, one abort listener, one
 * cleanup that destroys the socket — run exactly once, whichever way the probe ends.
 */
import type { ProbeResult } from "../types.js";

export type Finish = (r: ProbeResult) => void;

/** Short error text: the errno code when there is one ("ECONNREFUSED"), else the message. */
export function errText(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code) return code;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Run `start` (which opens the socket and returns its cleanup) under a timeout and an
 * optional abort signal. Never rejects; a throw from `start` is a failed check.
 */
export function runProbe(
  timeoutSeconds: number,
  signal: AbortSignal | undefined,
  onTimeout: () => ProbeResult,
  start: (finish: Finish) => () => void,
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    if (signal?.aborted) {
      resolve({ ok: false, detail: "aborted" });
      return;
    }
    let settled = false;
    let cleanup: (() => void) | undefined;
    const runCleanup = (): void => {
      const c = cleanup;
      cleanup = undefined;
      try {
        c?.();
      } catch {
        // Already closed: nothing left to free.
      }
    };
    const finish: Finish = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      runCleanup();
      resolve(r);
    };
    const onAbort = (): void => finish({ ok: false, detail: "aborted" });
    // Ref'd on purpose: the probe's socket holds the loop anyway, and the timer bounds it.
    const timer = setTimeout(() => finish(onTimeout()), Math.max(1, timeoutSeconds * 1000));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      cleanup = start(finish);
    } catch (e) {
      finish({ ok: false, detail: errText(e) });
    }
    // `start` may have finished synchronously, before its cleanup was known.
    if (settled) runCleanup();
  });
}
