import { timingSafeEqual } from "node:crypto";
import { sha256 } from "@tessera/protocol";
import type { Client } from "../clients.ts";

const decodedHashes = new WeakMap<Client, Buffer[]>();

/**
 * Compares a presented secret with each of the client's hashes (its configured one, or its stored ones)
 * in constant time, every hash compared whatever the outcome; a stored secret past its `expiresAt`
 * (Unix seconds, compared with `now`) never matches.
 */
export function secretMatches(client: Client, presented: string, now: number): boolean {
  let stored = decodedHashes.get(client);
  if (!stored) {
    stored = [...(client.secretHash ? [client.secretHash] : []), ...client.secrets.map((s) => s.hash)].map((hash) => Buffer.from(hash, "base64url"));
    decodedHashes.set(client, stored);
  }
  const hash = sha256(presented);
  const configured = client.secretHash ? 1 : 0;
  let matched = false;
  stored.forEach((candidate, i) => {
    const secret = i >= configured ? client.secrets[i - configured] : undefined;
    const live = secret?.expiresAt === undefined || secret.expiresAt > now;
    // Same-length buffers (SHA-256), so timingSafeEqual never throws; no early exit.
    const equal = candidate.length === hash.length && timingSafeEqual(hash, candidate);
    matched = (equal && live) || matched;
  });
  return matched;
}
