import { createHash } from "node:crypto";
import { constantTimeEqual } from "./encoding.ts";

/** RFC 7636 §4.1/§4.2: 43-128 characters from the unreserved set. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

/** The code challenge methods this project accepts. `plain` is refused (RFC 7636 §7.2, OAuth 2.1). */
export const CODE_CHALLENGE_METHODS = ["S256"] as const;
export type CodeChallengeMethod = (typeof CODE_CHALLENGE_METHODS)[number];

/** RFC 7636 §4.2: syntax of a `code_challenge`. */
export function isValidCodeChallenge(value: string): boolean {
  return PKCE_VALUE.test(value);
}

/** RFC 7636 §4.1: syntax of a `code_verifier`. */
export function isValidCodeVerifier(value: string): boolean {
  return PKCE_VALUE.test(value);
}

/** RFC 7636 §4.6: does `verifier` transform into `challenge` under `method`? */
export function verifyCodeVerifier(verifier: string, challenge: string, method: CodeChallengeMethod): boolean {
  if (!isValidCodeVerifier(verifier)) return false;
  const computed = method === "S256" ? createHash("sha256").update(verifier, "ascii").digest("base64url") : verifier;
  return constantTimeEqual(computed, challenge);
}
