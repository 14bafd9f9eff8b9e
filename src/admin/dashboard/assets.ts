/**
 * The dashboard's files (SPEC §12): the page, its script and style, bundled at build time
 * (esbuild, `npm run build`) into dist/dashboard/ and read once when the admin server starts.
 * Nothing is fetched from anywhere else: the Content-Security-Policy says so to the browser.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * Same-origin only: no CDN, no inline script, no frames, no plugins. Inline `style`
 * attributes are not needed (the script sets styles through the CSSOM, which CSP allows).
 */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

export interface Asset {
  body: string;
  contentType: string;
  etag: string;
}

export interface DashboardAssets {
  /** By request path: "/", "/dashboard/app.js", … */
  files: ReadonlyMap<string, Asset>;
  /** Where the bundle was read from, or why it is missing. */
  dir: string;
  missing?: string;
}

/** Relative URLs, so the page also works behind a proxy that serves it under a path prefix. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>lb4 dashboard</title>
<link rel="icon" type="image/svg+xml" href="dashboard/favicon.svg">
<link rel="stylesheet" href="dashboard/app.css">
<script type="module" src="dashboard/app.js"></script>
</head>
<body>
<noscript>The lb4 dashboard needs JavaScript. The same facts are in the admin API: /v3/elb/dashboard, /v3/elb/listeners, /v3/elb/pools/{id}/members.</noscript>
<div id="app"></div>
</body>
</html>
`;

const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f2937"/><path d="M6 16h6M20 8l-8 8 8 8M20 8h6M20 24h6M16 16h10" stroke="#34d399" stroke-width="3" fill="none" stroke-linecap="round"/></svg>
`;

/** The bundle's directory: dist/dashboard, seen from dist/admin/dashboard (built) or src/admin/dashboard (tests run from source). */
function bundleDir(): string | undefined {
  for (const rel of ["../../dashboard/", "../../../dist/dashboard/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}app.js`)) return dir;
  }
  return undefined;
}

function asset(body: string, contentType: string): Asset {
  return { body, contentType, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

export function loadDashboardAssets(): DashboardAssets {
  const files = new Map<string, Asset>();
  files.set("/dashboard/favicon.svg", asset(FAVICON, "image/svg+xml"));
  const dir = bundleDir();
  if (!dir) return { files, dir: "dist/dashboard", missing: "the dashboard bundle (dist/dashboard/app.js) is not built; run npm run build" };
  files.set("/", asset(PAGE, "text/html; charset=utf-8"));
  files.set("/dashboard/app.js", asset(readFileSync(`${dir}app.js`, "utf8"), "text/javascript; charset=utf-8"));
  files.set("/dashboard/app.css", asset(readFileSync(`${dir}app.css`, "utf8"), "text/css; charset=utf-8"));
  return { files, dir };
}

/** Headers of every dashboard file: revalidate each time (cheap with the ETag), never framed, never sniffed. */
export function assetHeaders(a: Asset): Record<string, string> {
  return {
    etag: a.etag,
    "cache-control": "no-cache",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
  };
}
