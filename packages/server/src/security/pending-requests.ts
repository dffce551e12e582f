import { sha256Base64url } from "@tessera/protocol";
import type { GrantStore, PersistedGrant } from "../stores/interfaces.ts";

/** Where a pending request is counted: its kind's bucket, and its client address's (when known). */
export interface PendingTags {
  grantId: string;
  subject?: string;
}

/**
 * Bounds the requests anyone can leave in the store without signing in (pending authorization requests,
 * logout requests), as oidc-provider keeps them: stored with a short lifetime, here also capped per client
 * address and in total, the oldest dropped first. Counting uses the indexed `grantId` and `subject` columns
 * with prefixed values that never collide with token families or users.
 */
export class PendingRequestCap {
  constructor(
    private readonly grants: GrantStore,
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
    /** Unix seconds. */
    private readonly now: () => number,
  ) {}

  /** Makes room for one more pending request of `kind`; returns the tags its record must carry. */
  async admit(kind: "interaction" | "logout", address: string | undefined): Promise<PendingTags> {
    const tags: PendingTags = { grantId: `pending:${kind}`, ...(address ? { subject: `pending:${sha256Base64url(address)}` } : {}) };
    if (tags.subject) {
      const own = await this.grants.findAll({ kind, grantId: tags.grantId, subject: tags.subject }, this.maxPerAddress);
      await this.evict(own, own.length - this.maxPerAddress + 1);
    }
    const total = await this.grants.count({ kind, grantId: tags.grantId }, this.now());
    if (total >= this.maxTotal) await this.evict(await this.grants.findAll({ kind, grantId: tags.grantId }, total - this.maxTotal + 1), Number.POSITIVE_INFINITY);
    return tags;
  }

  private async evict(oldestFirst: PersistedGrant[], count: number): Promise<void> {
    for (const grant of oldestFirst.slice(0, Math.max(0, count))) await this.grants.remove(grant.key);
  }
}
