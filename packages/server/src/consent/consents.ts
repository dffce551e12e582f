import { sha256Base64url } from "@tessera/protocol";
import type { ClientStore } from "../clients.ts";
import type { GrantStore } from "../stores/interfaces.ts";

/** A user's standing permission for a client, or live tokens it holds (for the grants page). */
export interface UserGrant {
  clientId: string;
  clientName: string;
  /** Scopes consented to, or held by refresh tokens. */
  scopes: string[];
  /** Unix seconds. */
  createdAt: number;
  /** True when the user consented (and the decision was remembered). */
  consented: boolean;
}

interface ConsentData {
  scopes: string[];
}

const MAX_LISTED = 500;

/** Remembered consent (IdentityServer's RememberConsent) and the user's view of what clients may do. */
export class ConsentService {
  constructor(
    private readonly grants: GrantStore,
    private readonly clients: ClientStore,
    private readonly lifetime: number,
    private readonly now: () => number,
  ) {}

  private key(subject: string, clientId: string): string {
    return sha256Base64url(`consent:${subject}:${clientId}`);
  }

  /** The scopes the user has remembered consent for with this client. */
  async rememberedScopes(subject: string, clientId: string): Promise<string[]> {
    const grant = await this.grants.get(this.key(subject, clientId));
    if (!grant || grant.kind !== "consent" || grant.expiresAt < this.now()) return [];
    return (JSON.parse(grant.data) as ConsentData).scopes;
  }

  /** Adds scopes to the remembered consent. */
  async remember(subject: string, clientId: string, scopes: string[]): Promise<void> {
    const merged = [...new Set([...(await this.rememberedScopes(subject, clientId)), ...scopes])];
    const now = this.now();
    await this.grants.put({
      key: this.key(subject, clientId),
      kind: "consent",
      clientId,
      subject,
      data: JSON.stringify({ scopes: merged } satisfies ConsentData),
      createdAt: now,
      expiresAt: now + this.lifetime,
    });
  }

  /** Clients the user consented to or that hold refresh tokens for the user. */
  async list(subject: string): Promise<UserGrant[]> {
    const now = this.now();
    const byClient = new Map<string, UserGrant>();
    for (const kind of ["consent", "refresh_token"] as const) {
      for (const grant of await this.grants.findAll({ subject, kind }, MAX_LISTED)) {
        if (grant.expiresAt < now || grant.consumedAt !== undefined) continue;
        const scopes = (JSON.parse(grant.data) as ConsentData).scopes;
        const existing = byClient.get(grant.clientId);
        if (existing) {
          existing.scopes = [...new Set([...existing.scopes, ...scopes])];
          existing.createdAt = Math.min(existing.createdAt, grant.createdAt);
          existing.consented ||= kind === "consent";
          continue;
        }
        const client = await this.clients.findClientById(grant.clientId);
        byClient.set(grant.clientId, { clientId: grant.clientId, clientName: client?.clientName ?? grant.clientId, scopes, createdAt: grant.createdAt, consented: kind === "consent" });
      }
    }
    return [...byClient.values()].sort((a, b) => a.clientName.localeCompare(b.clientName));
  }

  /** Removes the consent and every code and token of the user for the client (or for all clients). */
  async revoke(subject: string, clientId?: string): Promise<number> {
    return this.grants.removeAll(clientId ? { subject, clientId } : { subject });
  }
}
