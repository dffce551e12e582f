import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** Base64url (no padding) of bytes. */
export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** SHA-256 of a UTF-8 string, base64url encoded. */
export function sha256Base64url(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("base64url");
}

/** A random handle with `bytes` bytes of entropy, base64url encoded. */
export function randomHandle(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/**
 * Compares two strings in time that does not depend on where they differ (both are hashed first, so the
 * comparison also hides their lengths).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}
