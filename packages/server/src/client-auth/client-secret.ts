import { createHash, timingSafeEqual } from "node:crypto";
import type { Client } from "../clients.ts";

/** Compares a presented secret with the client's stored hash in constant time. */
export function secretMatches(client: Client, presented: string): boolean {
  if (!client.secretHash) return false;
  const presentedHash = createHash("sha256").update(presented, "utf8").digest();
  return timingSafeEqual(presentedHash, Buffer.from(client.secretHash, "base64url"));
}
