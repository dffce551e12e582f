import type { Client, ClientStore } from "../clients.ts";
import type { BackChannelLogoutService } from "../logout/back-channel.ts";
import type { TesseraEvent } from "../events.ts";
import type { EndedSessions } from "./ended-sessions.ts";
import type { GrantStore, ServerSideSession, SessionQuery, SessionStore } from "../stores/interfaces.ts";

/** A server-side session as administrators see it. */
export interface SessionInfo {
  sessionId: string;
  subject: string;
  displayName?: string;
  clientIds: string[];
  /** Unix seconds. */
  created: number;
  renewed: number;
  expires: number;
}

/** What ending sessions also does (IdentityServer's RemoveSessionsContext). */
export interface RemoveSessionsRequest {
  /** One session, by its sid. */
  sessionId?: string;
  /** Every session of a user. */
  subject?: string;
  /** Revoke the codes and tokens issued in the sessions (default true). */
  revokeTokens?: boolean;
  /** Revoke the user's remembered consents (default false). */
  revokeConsents?: boolean;
  /** Send back-channel logout to the sessions' clients (default true). */
  sendBackchannelLogout?: boolean;
}

const PAGE_LIMIT = 500;

/** Query and revoke server-side sessions (IdentityServer's SessionManagementService). */
export class SessionManagementService {
  constructor(
    private readonly sessions: SessionStore,
    private readonly grants: GrantStore,
    private readonly clients: ClientStore,
    private readonly backChannel: BackChannelLogoutService,
    private readonly ended: EndedSessions,
    private readonly emit: (event: TesseraEvent) => void = () => {},
  ) {}

  /** Sessions in creation order, filtered by substrings of subject, display name or session id. */
  async query(query: SessionQuery): Promise<{ sessions: SessionInfo[]; next: string | null }> {
    const page = await this.sessions.query({ ...query, count: Math.min(Math.max(1, query.count), PAGE_LIMIT) });
    return { sessions: page.sessions.map(info), next: page.next };
  }

  /** Ends the matching sessions and what hangs on them; returns how many ended. */
  async remove(request: RemoveSessionsRequest): Promise<number> {
    let targets: ServerSideSession[] = [];
    if (request.sessionId !== undefined) {
      const one = await this.sessions.getBySessionId(request.sessionId);
      if (one && (request.subject === undefined || one.subject === request.subject)) targets = [one];
    } else if (request.subject !== undefined) {
      let cursor: string | undefined;
      do {
        const page = await this.sessions.query({ subject: request.subject, cursor, count: PAGE_LIMIT });
        targets.push(...page.sessions.filter((s) => s.subject === request.subject));
        cursor = page.next ?? undefined;
      } while (cursor);
    } else {
      throw new TypeError("removeSessions needs a sessionId or a subject");
    }
    const removed = await this.sessions.remove(targets.map((s) => s.key));
    for (const session of removed) this.emit({ type: "session.revoked", sub: session.subject, sid: session.sessionId, reason: "admin" });
    await this.afterRemoval(removed, request);
    return removed.length;
  }

  /** Revokes and notifies for sessions already deleted (by an administrator or the expiry job). */
  async afterRemoval(removed: ServerSideSession[], request: Omit<RemoveSessionsRequest, "sessionId" | "subject">): Promise<void> {
    // Tombstones first: a pre-migration cookie of these sessions must not bring them back.
    await this.ended.mark(removed.map((s) => s.sessionId));
    for (const session of removed) {
      if (request.revokeTokens ?? true) await this.grants.removeAll({ sessionId: session.sessionId });
      if (request.revokeConsents) await this.grants.removeAll({ subject: session.subject, kind: "consent" });
      if (request.sendBackchannelLogout ?? true) {
        const clients = (await Promise.all(session.clientIds.map((id) => this.clients.findClientById(id)))).filter((c): c is Client => !!c);
        this.backChannel.notify({ sub: session.subject, sid: session.sessionId, clients });
      }
    }
  }
}

function info(session: ServerSideSession): SessionInfo {
  return {
    sessionId: session.sessionId,
    subject: session.subject,
    displayName: session.displayName,
    clientIds: session.clientIds,
    created: session.created,
    renewed: session.renewed,
    expires: session.expires,
  };
}
