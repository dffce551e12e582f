import { createHash, randomBytes } from "node:crypto";

/**
 * OIDC Session Management 1.0 §3: `session_state` = hash(client_id, RP origin, browser state, salt) + "." + salt.
 * The check-session iframe recomputes the same value in the browser from the session-id cookie.
 */
export function computeSessionState(clientId: string, origin: string, browserState: string, salt: string = randomBytes(16).toString("hex")): string {
  const hash = createHash("sha256").update(`${clientId} ${origin} ${browserState} ${salt}`, "utf8").digest("base64url");
  return `${hash}.${salt}`;
}
