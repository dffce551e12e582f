import { assertFilter, type ConsumeResult, type GrantFilter, type GrantStore, type KeyStore, type PersistedGrant, type Store, type StoredKey } from "../interfaces.ts";

function matches(grant: PersistedGrant, filter: GrantFilter): boolean {
  return (
    (filter.subject === undefined || grant.subject === filter.subject) &&
    (filter.clientId === undefined || grant.clientId === filter.clientId) &&
    (filter.sessionId === undefined || grant.sessionId === filter.sessionId) &&
    (filter.grantId === undefined || grant.grantId === filter.grantId) &&
    (filter.kind === undefined || grant.kind === filter.kind)
  );
}

class MemoryGrantStore implements GrantStore {
  private readonly grants = new Map<string, PersistedGrant>();

  async put(grant: PersistedGrant): Promise<void> {
    this.grants.set(grant.key, { ...grant });
  }
  async putIfAbsent(grant: PersistedGrant): Promise<boolean> {
    const existing = this.grants.get(grant.key);
    if (existing && existing.expiresAt >= grant.createdAt) return false;
    this.grants.set(grant.key, { ...grant });
    return true;
  }
  async get(key: string): Promise<PersistedGrant | undefined> {
    const grant = this.grants.get(key);
    return grant ? { ...grant } : undefined;
  }
  async consume(key: string, at: number): Promise<ConsumeResult | undefined> {
    const grant = this.grants.get(key);
    if (!grant) return undefined;
    const firstUse = grant.consumedAt === undefined;
    if (firstUse) grant.consumedAt = at;
    return { grant: { ...grant }, firstUse };
  }
  async remove(key: string): Promise<void> {
    this.grants.delete(key);
  }
  async findAll(filter: GrantFilter, limit: number): Promise<PersistedGrant[]> {
    assertFilter(filter);
    return [...this.grants.values()]
      .filter((g) => matches(g, filter))
      .sort((a, b) => a.createdAt - b.createdAt || a.key.localeCompare(b.key))
      .slice(0, limit)
      .map((g) => ({ ...g }));
  }
  async removeAll(filter: GrantFilter): Promise<number> {
    assertFilter(filter);
    let count = 0;
    for (const [key, grant] of this.grants) {
      if (matches(grant, filter)) {
        this.grants.delete(key);
        count++;
      }
    }
    return count;
  }
  async removeExpired(now: number, limit: number): Promise<number> {
    let count = 0;
    for (const [key, grant] of this.grants) {
      if (count >= limit) break;
      if (grant.expiresAt < now) {
        this.grants.delete(key);
        count++;
      }
    }
    return count;
  }
}

class MemoryKeyStore implements KeyStore {
  private readonly keys = new Map<string, StoredKey>();
  async list(): Promise<StoredKey[]> {
    return [...this.keys.values()].map((k) => ({ ...k }));
  }
  async add(key: StoredKey): Promise<void> {
    if (!this.keys.has(key.kid)) this.keys.set(key.kid, { ...key });
  }
  async remove(kid: string): Promise<void> {
    this.keys.delete(kid);
  }
}

/** A store that keeps everything in this process; for tests and throwaway demos. */
export function createMemoryStore(): Store {
  return { grants: new MemoryGrantStore(), keys: new MemoryKeyStore(), close: async () => {} };
}
