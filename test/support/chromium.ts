import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function find(): string | undefined {
  return CANDIDATES.find((path) => existsSync(path));
}

/**
 * Debian's Chromium, installing it with the project's script when missing. Undefined (the test skips) only
 * outside CI; under CI=true a Chromium that cannot be had is a failure.
 */
export function chromiumPath(): string | undefined {
  let path = find();
  if (!path) {
    spawnSync("bash", [join(import.meta.dirname, "..", "..", "scripts", "install-system-deps.sh")], { stdio: "inherit" });
    path = find();
  }
  if (!path && process.env.CI === "true") throw new Error("Chromium is missing and scripts/install-system-deps.sh could not install it");
  return path;
}

/** A headless Chromium with a fresh user-data dir; close() removes it. */
export async function launchChromium(executablePath: string): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const userDataDir = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, args: ["--headless", ...ARGS] });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
