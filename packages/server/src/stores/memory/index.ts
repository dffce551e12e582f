import { decodeSessionCursor, encodeSessionCursor, type ServerSideSession, type SessionQuery, type SessionStore } from "../interfaces.ts";
import { assertFilter, type ConsumeResult, type GrantFilter, type GrantStore, type KeyStore, type PersistedGrant, type Store, type StoredKey } from "../interfaces.ts";
import type { ClientRecordStore, DeviceCodeDecision, DeviceCodeRecord, DeviceCodeStore, StoredClient } from "../interfaces.ts";
import { MemoryAccountStore } from "./accounts.ts";
import { assertStorableClient, assertStorableDeviceCode, assertStorableDeviceDecision, assertStorableGrant, assertStorableKey, assertStorableSession, isStorableText } from "../values.ts";

function matches(grant: PersistedGrant, filter: GrantFilter): boolean {
  return (
    (filter.subject === undefined || grant.subject === filter.subject) &&
    (filter.clientId === undefined || grant.clientId === filter.clientId) &&
    (filter.sessionId === undefined || grant.sessionId === filter.sessionId) &&
    (filter.grantId === undefined || grant.grantId === filter.grantId) &&
    (filter.kind === undefined || grant.kind === filter.kind)
  );
}

type IndexedField = "subject" | "grantId" | "sessionId" | "clientId";
const INDEXED: readonly IndexedField[] = ["subject", "grantId", "sessionId", "clientId"];

class MemoryGrantStore implements GrantStore {
  private readonly grants = new Map<string, PersistedGrant>();
  /** Keys by subject, grant id, session id and client id, so filtered reads never scan every grant. */
  private readonly indexes = new Map<IndexedField, Map<string, Set<string>>>(INDEXED.map((field) => [field, new Map()]));

  /** Adds the grant's key to (or removes it from) the index of each field it has. */
  private reindex(grant: PersistedGrant, add: boolean): void {
    for (const field of INDEXED) {
      const value = grant[field];
      if (value === undefined) continue;
      const byValue = this.indexes.get(field)!;
      let keys = byValue.get(value);
      if (add) {
        if (!keys) byValue.set(value, (keys = new Set()));
        keys.add(grant.key);
      } else if (keys) {
        keys.delete(grant.key);
        if (keys.size === 0) byValue.delete(value);
      }
    }
  }

  private store(grant: PersistedGrant): void {
    assertStorableGrant(grant);
    const previous = this.grants.get(grant.key);
    if (previous) this.reindex(previous, false);
    this.grants.set(grant.key, { ...grant });
    this.reindex(grant, true);
  }

  private delete(key: string): void {
    const grant = this.grants.get(key);
    if (!grant) return;
    this.reindex(grant, false);
    this.grants.delete(key);
  }

  /** The grants the filter may match, read through the smallest index that applies (unfiltered). */
  private *candidates(filter: GrantFilter): Iterable<PersistedGrant> {
    let smallest: Set<string> | undefined;
    for (const field of INDEXED) {
      const value = filter[field];
      if (value === undefined) continue;
      const keys = this.indexes.get(field)!.get(value);
      if (!keys) return;
      if (!smallest || keys.size < smallest.size) smallest = keys;
    }
    if (!smallest) yield* this.grants.values();
    else for (const key of smallest) yield this.grants.get(key)!;
  }

  /** Grants matching the filter. */
  private matching(filter: GrantFilter): PersistedGrant[] {
    return [...this.candidates(filter)].filter((g) => matches(g, filter));
  }

  async put(grant: PersistedGrant): Promise<void> {
    this.store(grant);
  }
  async putIfAbsent(grant: PersistedGrant): Promise<boolean> {
    assertStorableGrant(grant);
    const existing = this.grants.get(grant.key);
    if (existing && existing.expiresAt >= grant.createdAt) return false;
    this.store(grant);
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
    this.delete(key);
  }
  async findAll(filter: GrantFilter, limit: number): Promise<PersistedGrant[]> {
    assertFilter(filter);
    return this.matching(filter)
      .sort((a, b) => a.createdAt - b.createdAt || a.key.localeCompare(b.key))
      .slice(0, limit)
      .map((g) => ({ ...g }));
  }
  async count(filter: GrantFilter, liveAt: number, max = Infinity): Promise<number> {
    assertFilter(filter);
    let n = 0;
    for (const grant of this.candidates(filter)) {
      if (n >= max) break;
      if (grant.expiresAt > liveAt && matches(grant, filter)) n++;
    }
    return n;
  }
  async removeAll(filter: GrantFilter): Promise<number> {
    assertFilter(filter);
    const found = this.matching(filter);
    for (const grant of found) this.delete(grant.key);
    return found.length;
  }
  async removeExpired(now: number, limit: number): Promise<number> {
    const expired: string[] = [];
    for (const [key, grant] of this.grants) {
      if (expired.length >= limit) break;
      if (grant.expiresAt < now) expired.push(key);
    }
    for (const key of expired) this.delete(key);
    return expired.length;
  }
}

class MemoryKeyStore implements KeyStore {
  private readonly keys = new Map<string, StoredKey>();
  async list(): Promise<StoredKey[]> {
    return [...this.keys.values()].map((k) => ({ ...k }));
  }
  async add(key: StoredKey): Promise<void> {
    assertStorableKey(key);
    if (!this.keys.has(key.kid)) this.keys.set(key.kid, { ...key });
  }
  async remove(kid: string): Promise<void> {
    this.keys.delete(kid);
  }
  private lock: Promise<void> = Promise.resolve();
  async update(change: (keys: StoredKey[]) => Promise<{ add: StoredKey[]; remove: string[] }>): Promise<void> {
    const run = this.lock.then(async () => {
      const { add, remove } = await change(await this.list());
      add.forEach(assertStorableKey);
      for (const key of add) await this.add(key);
      for (const kid of remove) await this.remove(kid);
    });
    this.lock = run.catch(() => {});
    await run;
  }
}

/** Code-unit order, as SQL's binary collation and the cursor's `>` comparison use. */
const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const contains = (value: string | undefined, part: string | undefined) => part === undefined || (value ?? "").toLowerCase().includes(part.toLowerCase());

class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, ServerSideSession>();

  async put(session: ServerSideSession): Promise<void> {
    assertStorableSession(session);
    this.sessions.set(session.key, { ...session, clientIds: [...session.clientIds] });
  }
  async create(session: ServerSideSession): Promise<boolean> {
    assertStorableSession(session);
    if (this.sessions.has(session.key) || [...this.sessions.values()].some((s) => s.sessionId === session.sessionId)) return false;
    this.sessions.set(session.key, { ...session, clientIds: [...session.clientIds] });
    return true;
  }
  async update(session: ServerSideSession): Promise<boolean> {
    assertStorableSession(session);
    const current = this.sessions.get(session.key);
    if (!current) return false;
    this.sessions.set(session.key, { ...session, clientIds: [...session.clientIds] });
    return true;
  }
  async rekey(oldKey: string, newKey: string): Promise<boolean> {
    const session = this.sessions.get(oldKey);
    if (!session || this.sessions.has(newKey)) return false;
    this.sessions.delete(oldKey);
    this.sessions.set(newKey, { ...session, key: newKey });
    return true;
  }
  async get(key: string): Promise<ServerSideSession | undefined> {
    const session = this.sessions.get(key);
    return session ? { ...session } : undefined;
  }
  async getBySessionId(sessionId: string): Promise<ServerSideSession | undefined> {
    for (const session of this.sessions.values()) if (session.sessionId === sessionId) return { ...session };
    return undefined;
  }
  async remove(keys: string[]): Promise<ServerSideSession[]> {
    const removed: ServerSideSession[] = [];
    for (const key of keys) {
      const session = this.sessions.get(key);
      if (session && this.sessions.delete(key)) removed.push(session);
    }
    return removed;
  }
  async query(query: SessionQuery): Promise<{ sessions: ServerSideSession[]; next: string | null }> {
    // Text no store keeps is in no stored value (as the SQL stores, which never send it to the database).
    if ([query.subject, query.displayName, query.sessionId].some((part) => part !== undefined && !isStorableText(part))) return { sessions: [], next: null };
    const after = query.cursor ? decodeSessionCursor(query.cursor) : undefined;
    const matching = [...this.sessions.values()]
      .filter((s) => contains(s.subject, query.subject) && contains(s.displayName, query.displayName) && contains(s.sessionId, query.sessionId))
      .sort((a, b) => a.created - b.created || byCodeUnits(a.key, b.key))
      .filter((s) => !after || s.created > after.created || (s.created === after.created && s.key > after.key));
    const page = matching.slice(0, query.count).map((s) => ({ ...s }));
    return { sessions: page, next: matching.length > query.count ? encodeSessionCursor(page[page.length - 1]!) : null };
  }
  async removeExpired(now: number, limit: number): Promise<ServerSideSession[]> {
    const expired = [...this.sessions.values()].filter((s) => s.expires < now).slice(0, limit);
    return this.remove(expired.map((s) => s.key));
  }
}

const copyClient = (client: StoredClient): StoredClient => ({ ...client, secrets: client.secrets.map((s) => ({ ...s })) });

/** True when two records of one client hold the same state (the compare of a compare-and-set update). */
function sameClientState(a: StoredClient, b: StoredClient): boolean {
  return a.metadata === b.metadata && JSON.stringify(a.secrets) === JSON.stringify(b.secrets) && (a.registrationTokenHash ?? null) === (b.registrationTokenHash ?? null) && a.updatedAt === b.updatedAt;
}

class MemoryClientStore implements ClientRecordStore {
  private readonly clients = new Map<string, StoredClient>();
  async create(client: StoredClient): Promise<boolean> {
    assertStorableClient(client);
    if (this.clients.has(client.clientId)) return false;
    this.clients.set(client.clientId, copyClient(client));
    return true;
  }
  async get(clientId: string): Promise<StoredClient | undefined> {
    const client = this.clients.get(clientId);
    return client ? copyClient(client) : undefined;
  }
  async update(client: StoredClient, expected?: StoredClient): Promise<boolean> {
    assertStorableClient(client);
    const current = this.clients.get(client.clientId);
    if (!current) return false;
    if (expected && !sameClientState(current, expected)) return false;
    this.clients.set(client.clientId, copyClient(client));
    return true;
  }
  async remove(clientId: string): Promise<boolean> {
    return this.clients.delete(clientId);
  }
  async list(query: { after?: string; count: number }): Promise<StoredClient[]> {
    const after = query.after;
    // As the SQL stores: a cursor no store could have made finds nothing.
    if (after !== undefined && !isStorableText(after)) return [];
    return [...this.clients.values()]
      .filter((c) => after === undefined || c.clientId > after)
      .sort((a, b) => byCodeUnits(a.clientId, b.clientId))
      .slice(0, Math.max(0, query.count))
      .map(copyClient);
  }
}

class MemoryDeviceCodeStore implements DeviceCodeStore {
  private readonly records = new Map<string, DeviceCodeRecord>();
  /** Keys by user code key. */
  private readonly byUserCode = new Map<string, string>();

  async create(record: DeviceCodeRecord): Promise<boolean> {
    assertStorableDeviceCode(record);
    if (this.records.has(record.key) || this.byUserCode.has(record.userCodeKey)) return false;
    this.records.set(record.key, { ...record });
    this.byUserCode.set(record.userCodeKey, record.key);
    return true;
  }
  async get(key: string): Promise<DeviceCodeRecord | undefined> {
    const record = this.records.get(key);
    return record ? { ...record } : undefined;
  }
  async findByUserCode(userCodeKey: string): Promise<DeviceCodeRecord | undefined> {
    const key = this.byUserCode.get(userCodeKey);
    return key === undefined ? undefined : this.get(key);
  }
  async decide(userCodeKey: string, decision: DeviceCodeDecision, at: number): Promise<boolean> {
    assertStorableDeviceDecision(decision);
    const key = this.byUserCode.get(userCodeKey);
    const record = key === undefined ? undefined : this.records.get(key);
    if (!record || record.status !== "pending" || record.expiresAt <= at) return false;
    Object.assign(record, { status: decision.status, subject: decision.subject, sessionId: decision.sessionId, data: decision.data });
    return true;
  }
  async recordPoll(key: string, previous: number | undefined, at: number, interval: number): Promise<boolean> {
    assertStorableDeviceDecision({ lastPolledAt: at, interval });
    const record = this.records.get(key);
    if (!record || record.lastPolledAt !== previous) return false;
    record.lastPolledAt = at;
    record.interval = interval;
    return true;
  }
  async consume(key: string, at: number): Promise<{ record: DeviceCodeRecord; firstUse: boolean } | undefined> {
    const record = this.records.get(key);
    if (!record) return undefined;
    const firstUse = record.consumedAt === undefined;
    if (firstUse) record.consumedAt = at;
    return { record: { ...record }, firstUse };
  }
  async remove(key: string): Promise<void> {
    const record = this.records.get(key);
    if (!record) return;
    this.records.delete(key);
    this.byUserCode.delete(record.userCodeKey);
  }
  async removeExpired(now: number, limit: number): Promise<number> {
    const expired: string[] = [];
    for (const [key, record] of this.records) {
      if (expired.length >= limit) break;
      if (record.expiresAt < now) expired.push(key);
    }
    for (const key of expired) await this.remove(key);
    return expired.length;
  }
}

/** A store that keeps everything in this process; for tests and throwaway demos. */
export function createMemoryStore(): Store {
  return { grants: new MemoryGrantStore(), deviceCodes: new MemoryDeviceCodeStore(), keys: new MemoryKeyStore(), sessions: new MemorySessionStore(), clients: new MemoryClientStore(), accounts: new MemoryAccountStore(), ping: async () => {}, close: async () => {} };
}
