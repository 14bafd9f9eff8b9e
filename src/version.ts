/** lb4's version, from package.json (one home: the CLI's --version and the instance registry). */
import { readFileSync } from "node:fs";

function read(): string {
  try {
    // src/version.ts and dist/version.js both sit one level below package.json.
    return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

export const VERSION = read();
