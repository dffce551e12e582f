import { timingSafeEqual } from "node:crypto";
import { sha256 } from "@tessera/protocol";
import type { Client } from "../clients.ts";

const decodedHashes = new WeakMap<Client, Buffer>();

/** Compares a presented secret with the client's stored hash in constant time. */
export function secretMatches(client: Client, presented: string): boolean {
  if (!client.secretHash) return false;
  let stored = decodedHashes.get(client);
  if (!stored) decodedHashes.set(client, (stored = Buffer.from(client.secretHash, "base64url")));
  return timingSafeEqual(sha256(presented), stored);
}
