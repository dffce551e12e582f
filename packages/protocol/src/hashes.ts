import { createHash } from "node:crypto";

/** The hash OIDC Core §3.1.3.6 pairs with a JWS algorithm for `at_hash` / `c_hash`. */
export function hashAlgorithmFor(alg: string): "sha256" | "sha384" | "sha512" {
  if (alg === "EdDSA" || alg === "Ed25519") return "sha512";
  const bits = alg.slice(-3);
  if (bits === "384") return "sha384";
  if (bits === "512") return "sha512";
  return "sha256";
}

/** OIDC Core §3.1.3.6 `at_hash` (also `c_hash`): left half of the hash of the ASCII value, base64url. */
export function leftHalfHash(value: string, alg: string): string {
  const digest = createHash(hashAlgorithmFor(alg)).update(value, "ascii").digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}
