/// <reference lib="dom" />
/**
 * The admin API from the page: same-origin fetches with the token, when one is needed, in the
 * X-Auth-Token header (never in a URL). The token is asked for when the API answers 401, once
 * for every request waiting on it, and kept in sessionStorage: this tab, until it is closed.
 */
import { h } from "./dom.js";

const TOKEN_KEY = "lb4.admin-token";
/** Where the token lives when sessionStorage is unavailable (storage turned off). */
let memoryToken: string | null = null;

export interface ApiReply<T> {
  status: number;
  body: T;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A URL of the admin API, relative to the page (which may sit behind a path prefix). */
export function apiUrl(path: string): string {
  return new URL(path.replace(/^\//, ""), document.baseURI).toString();
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

export function forgetToken(): void {
  memoryToken = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage off: nothing kept
  }
}

let asking: Promise<void> | undefined;

/** Ask for the token (one dialog for every caller waiting); resolves once one is stored. */
export function askToken(wrong: boolean): Promise<void> {
  asking ??= showTokenDialog(wrong).finally(() => (asking = undefined));
  return asking;
}

function showTokenDialog(wrong: boolean): Promise<void> {
  return new Promise((resolve) => {
    const input = h("input", { type: "password", id: "token-input", autocomplete: "current-password", spellcheck: "false", placeholder: "admin.token" });
    const submit = () => {
      const v = input.value.trim();
      if (!v) return;
      try {
        sessionStorage.setItem(TOKEN_KEY, v);
      } catch {
        // storage off: the token lives in this page only
        memoryToken = v;
      }
      dialog.close();
      dialog.remove();
      resolve();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") submit();
    });
    const dialog = h(
      "dialog",
      { class: "token-dialog", id: "token-dialog" },
      h("h2", {}, "Admin token"),
      h(
        "p",
        {},
        wrong
          ? "That token was refused. Enter the admin token from admin.token in the lb4 config."
          : "This lb4 admin API needs its token (admin.token in the config). It is kept for this browser tab only.",
      ),
      input,
      h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "primary", id: "token-submit", onclick: submit }, "Use token")),
    );
    // Escape would leave the page without data: keep the dialog until a token is given.
    dialog.addEventListener("cancel", (e) => e.preventDefault());
    document.body.appendChild(dialog);
    dialog.showModal();
    input.focus();
  });
}

function headersWithToken(extra: Record<string, string>): Record<string, string> {
  const t = storedToken();
  return { ...extra, ...(t ? { "x-auth-token": t } : {}) };
}

/**
 * One request; a 401 asks for the token and tries again. Writes declare JSON (the API refuses
 * a write without that type: SPEC §8). Refusals throw ApiError with the API's error_msg.
 */
export async function request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiReply<T>> {
  let wrong = false;
  for (;;) {
    const headers = headersWithToken({ accept: "application/json", ...(method !== "GET" ? { "content-type": "application/json" } : {}) });
    const res = await fetch(apiUrl(path), { method, headers, credentials: "same-origin", cache: "no-store", ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (res.status === 401) {
      await askToken(wrong);
      wrong = true;
      continue;
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    if (!res.ok) {
      const b = (parsed ?? {}) as { error_code?: string; error_msg?: string };
      throw new ApiError(res.status, b.error_code ?? `HTTP_${res.status}`, b.error_msg ?? (text.trim() || `HTTP ${res.status}`));
    }
    return { status: res.status, body: parsed as T };
  }
}

/** Headers for the event stream's fetch (the same token). */
export function streamHeaders(): Record<string, string> {
  return headersWithToken({ accept: "text/event-stream" });
}
