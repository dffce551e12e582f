import { sha256Base64url } from "@tessera/protocol";
import type { GrantStore } from "../stores/interfaces.ts";

/**
 * Tombstones of server-side sessions that ended (logout, administrator revocation, expiry job, another
 * user signing in over them): a grant of kind `session_ended` keyed by a hash of the sid, kept as long as a
 * cookie-only session cookie can live (the cookie lifetime). A pre-migration cookie-only cookie of such a
 * sid is still sealed and unexpired; migration refuses it, so an ended session never comes back.
 */
export class EndedSessions {
  constructor(
    private readonly grants: GrantStore,
    /** Seconds: the longest a cookie-only session cookie lives (authentication.cookieLifetime). */
    private readonly lifetime: number,
    /** Unix seconds. */
    private readonly now: () => number,
  ) {}

  /** Records that these sessions ended. */
  async mark(sessionIds: string[]): Promise<void> {
    const now = this.now();
    for (const sid of new Set(sessionIds)) {
      // No sessionId column: revoking a session's tokens (removeAll by sessionId) must not lift its tombstone.
      await this.grants.put({ key: EndedSessions.key(sid), kind: "session_ended", clientId: "", data: "{}", createdAt: now, expiresAt: now + this.lifetime });
    }
  }

  /** True when the session with this sid ended server-side within the cookie lifetime. */
  async has(sessionId: string): Promise<boolean> {
    const grant = await this.grants.get(EndedSessions.key(sessionId));
    return !!grant && grant.kind === "session_ended" && grant.expiresAt > this.now();
  }

  private static key(sessionId: string): string {
    return sha256Base64url(`session_ended:${sessionId}`);
  }
}
