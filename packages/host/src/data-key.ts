import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Where the data key came from, for the start-up log. */
export type DataKeySource = "config" | "environment" | "file" | "generated" | "ephemeral";

/**
 * The data key: config `dataKey`, else `TESSERA_DATA_KEY`, else the file `data-key` in the data folder
 * (generated there once). Without a data folder (memory store) a random key lives as long as the process.
 */
export function resolveDataKey(configKey: string | undefined, env: NodeJS.ProcessEnv, dataDir: string | undefined): { key: string; source: DataKeySource } {
  if (configKey) return { key: configKey, source: "config" };
  const fromEnv = env.TESSERA_DATA_KEY;
  if (fromEnv) {
    if (Buffer.from(fromEnv, "base64url").length !== 32) throw new Error("TESSERA_DATA_KEY must be 32 bytes, base64url encoded");
    return { key: fromEnv, source: "environment" };
  }
  if (!dataDir) return { key: randomBytes(32).toString("base64url"), source: "ephemeral" };
  const file = join(dataDir, "data-key");
  try {
    const key = readFileSync(file, "utf8").trim();
    if (Buffer.from(key, "base64url").length !== 32) throw new Error(`${file} does not hold a 32-byte base64url key`);
    return { key, source: "file" };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32).toString("base64url");
  // "wx": if another process created it first, use theirs.
  try {
    writeFileSync(file, key + "\n", { flag: "wx", mode: 0o600 });
    chmodSync(file, 0o600);
    return { key, source: "generated" };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return { key: readFileSync(file, "utf8").trim(), source: "file" };
  }
}
