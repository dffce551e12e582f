import { createHash, randomBytes, randomFillSync, timingSafeEqual } from "node:crypto";
import * as nodeCrypto from "node:crypto";

/** One-shot SHA-256 (crypto.hash where the runtime has it: Node 20.12+, markedly faster than createHash). */
export const sha256: (value: string) => Buffer =
  typeof (nodeCrypto as { hash?: unknown }).hash === "function"
    ? (value) => (nodeCrypto as unknown as { hash(alg: string, data: string, encoding: "buffer"): Buffer }).hash("sha256", value, "buffer")
    : (value) => createHash("sha256").update(value, "utf8").digest();

/** Base64url (no padding) of bytes. */
export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** SHA-256 of a UTF-8 string, base64url encoded. */
export function sha256Base64url(value: string): string {
  return sha256(value).toString("base64url");
}

/** A random handle with `bytes` bytes of entropy, base64url encoded. */
export function randomHandle(bytes = 32): string {
  if (bytes > POOL_SIZE) return randomBytes(bytes).toString("base64url");
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const handle = pool.toString("base64url", poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return handle;
}

// Random bytes are drawn from the CSPRNG in 8 KiB batches (as crypto.randomUUID does); each byte is used once.
const POOL_SIZE = 8192;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

/**
 * Compares two strings in time that does not depend on where they differ (both are hashed first, so the
 * comparison also hides their lengths).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}
