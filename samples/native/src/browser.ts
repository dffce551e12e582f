/** Opens a URL in the user's default browser, the "external user-agent" RFC 8252 §4.1 asks native apps to use. */
import { spawn } from "node:child_process";

/** Resolves once the opener started; rejects when there is none (no desktop), so the caller can print the URL instead. */
export function openInBrowser(url: string): Promise<void> {
  // `start` is a cmd built-in, and cmd splits at `&`: escaped, with an empty window title first.
  const [command, args, verbatim] =
    process.platform === "darwin" ? ["open", [url], false] : process.platform === "win32" ? ["cmd", ["/c", "start", '""', url.replace(/&/g, "^&")], true] : ["xdg-open", [url], false];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: "ignore", detached: true, windowsVerbatimArguments: verbatim });
    child.once("error", reject);
    child.once("spawn", () => {
      child.unref();
      resolve();
    });
  });
}
