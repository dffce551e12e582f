import {
  AccountConflictError,
  assertStorableAccount,
  assertStorableCredential,
  assertStorableLink,
  assertStorableToken,
  decodeAccountCursor,
  encodeAccountCursor,
  normalizeEmail,
  normalizeUsername,
  searchKey,
  type AccountChanges,
  type AccountCredential,
  type AccountLink,
  type AccountQuery,
  type AccountStore,
  type AccountToken,
  type AccountTokenPurpose,
  type CredentialType,
  type NewAccount,
  type StoredAccount,
} from "../accounts.ts";
import { isStorableText } from "../values.ts";

const copy = <T>(value: T): T => structuredClone(value);
const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Accounts in this process (tests, throwaway demos). */
export class MemoryAccountStore implements AccountStore {
  private readonly accounts = new Map<string, StoredAccount>();
  private readonly credentials = new Map<string, AccountCredential>();
  private readonly tokens = new Map<string, AccountToken>();
  private readonly links = new Map<string, AccountLink>();

  async findBySubject(sub: string): Promise<StoredAccount | undefined> {
    const account = this.accounts.get(sub);
    return account && copy(account);
  }
  async findByUsername(username: string): Promise<StoredAccount | undefined> {
    const key = normalizeUsername(username);
    for (const account of this.accounts.values()) if (normalizeUsername(account.username) === key) return copy(account);
    return undefined;
  }
  async findByEmail(email: string): Promise<StoredAccount | undefined> {
    const key = normalizeEmail(email);
    for (const account of this.accounts.values()) if (account.email !== undefined && normalizeEmail(account.email) === key) return copy(account);
    return undefined;
  }

  /** The field another account already holds, if any. */
  private clash(candidate: Pick<StoredAccount, "sub" | "username" | "email">): "username" | "email" | undefined {
    const username = normalizeUsername(candidate.username);
    const email = candidate.email === undefined ? undefined : normalizeEmail(candidate.email);
    for (const other of this.accounts.values()) {
      if (other.sub === candidate.sub) continue;
      if (normalizeUsername(other.username) === username) return "username";
      if (email !== undefined && other.email !== undefined && normalizeEmail(other.email) === email) return "email";
    }
    return undefined;
  }

  async create(account: NewAccount): Promise<void> {
    assertStorableAccount(account);
    if (this.accounts.has(account.sub)) throw new AccountConflictError("sub");
    const field = this.clash(account);
    if (field) throw new AccountConflictError(field);
    this.accounts.set(account.sub, copy({ ...account, email: account.email ?? undefined, passwordHash: account.passwordHash ?? undefined }));
  }

  async update(sub: string, changes: AccountChanges): Promise<StoredAccount | undefined> {
    assertStorableAccount(changes);
    const current = this.accounts.get(sub);
    if (!current) return undefined;
    const next: StoredAccount = {
      ...current,
      ...(changes.username !== undefined ? { username: changes.username } : {}),
      ...(changes.email !== undefined ? { email: changes.email ?? undefined } : {}),
      ...(changes.emailVerified !== undefined ? { emailVerified: changes.emailVerified } : {}),
      ...(changes.passwordHash !== undefined ? { passwordHash: changes.passwordHash ?? undefined } : {}),
      ...(changes.claims !== undefined ? { claims: copy(changes.claims) } : {}),
      ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}),
      ...(changes.sessionsValidAfter !== undefined ? { sessionsValidAfter: changes.sessionsValidAfter } : {}),
      updatedAt: changes.updatedAt,
    };
    const field = this.clash(next);
    if (field) throw new AccountConflictError(field);
    this.accounts.set(sub, next);
    return copy(next);
  }

  async remove(sub: string): Promise<boolean> {
    if (!this.accounts.delete(sub)) return false;
    await this.removeCredentials(sub);
    await this.removeTokens(sub);
    for (const [key, link] of this.links) if (link.subject === sub) this.links.delete(key);
    return true;
  }

  async query(query: AccountQuery): Promise<{ accounts: StoredAccount[]; next: string | null }> {
    if (query.query !== undefined && !isStorableText(query.query)) return { accounts: [], next: null };
    const needle = query.query === undefined ? undefined : searchKey(query.query);
    const after = query.cursor ? decodeAccountCursor(query.cursor) : undefined;
    const matching = [...this.accounts.values()]
      .filter((a) => needle === undefined || [a.sub, a.username, a.email ?? "", typeof a.claims.name === "string" ? a.claims.name : ""].some((v) => searchKey(v).includes(needle)))
      .sort((a, b) => a.createdAt - b.createdAt || byCodeUnits(a.sub, b.sub))
      .filter((a) => !after || a.createdAt > after.createdAt || (a.createdAt === after.createdAt && a.sub > after.sub));
    const page = matching.slice(0, query.count).map(copy);
    return { accounts: page, next: matching.length > query.count ? encodeAccountCursor(page[page.length - 1]!) : null };
  }

  async addCredential(credential: AccountCredential): Promise<void> {
    assertStorableCredential(credential);
    if (this.credentials.has(credential.id)) throw new AccountConflictError("sub");
    this.credentials.set(credential.id, copy(credential));
  }
  async getCredential(id: string): Promise<AccountCredential | undefined> {
    const credential = this.credentials.get(id);
    return credential && copy(credential);
  }
  async listCredentials(subject: string, type?: CredentialType): Promise<AccountCredential[]> {
    return [...this.credentials.values()]
      .filter((c) => c.subject === subject && (type === undefined || c.type === type))
      .sort((a, b) => a.createdAt - b.createdAt || byCodeUnits(a.id, b.id))
      .map(copy);
  }
  async advanceCounter(id: string, counter: number, usedAt: number): Promise<boolean> {
    assertStorableCredential({ id, subject: "", type: "", secret: "", counter, createdAt: usedAt });
    const credential = this.credentials.get(id);
    if (!credential || credential.counter >= counter) return false;
    credential.counter = counter;
    credential.lastUsedAt = usedAt;
    return true;
  }
  async updateCredential(subject: string, id: string, changes: { name?: string; data?: string; lastUsedAt?: number }): Promise<boolean> {
    const credential = this.credentials.get(id);
    if (!credential || credential.subject !== subject) return false;
    const next = { ...credential, ...changes };
    assertStorableCredential(next);
    this.credentials.set(id, next);
    return true;
  }
  async removeCredential(subject: string, id: string): Promise<boolean> {
    const credential = this.credentials.get(id);
    if (!credential || credential.subject !== subject) return false;
    return this.credentials.delete(id);
  }
  async removeCredentials(subject: string, type?: CredentialType): Promise<number> {
    let n = 0;
    for (const [id, c] of this.credentials) if (c.subject === subject && (type === undefined || c.type === type) && this.credentials.delete(id)) n++;
    return n;
  }

  async putToken(token: AccountToken): Promise<void> {
    assertStorableToken(token);
    this.tokens.set(token.key, copy(token));
  }
  async consumeToken(key: string, purpose: AccountTokenPurpose, now: number): Promise<AccountToken | undefined> {
    const token = this.tokens.get(key);
    if (!token || token.purpose !== purpose) return undefined;
    this.tokens.delete(key);
    return token.expiresAt > now ? token : undefined;
  }
  async removeTokens(subject: string, purpose?: AccountTokenPurpose): Promise<number> {
    let n = 0;
    for (const [key, t] of this.tokens) if (t.subject === subject && (purpose === undefined || t.purpose === purpose) && this.tokens.delete(key)) n++;
    return n;
  }

  async removeExpiredTokens(now: number, limit: number): Promise<number> {
    let n = 0;
    for (const [key, t] of this.tokens) {
      if (n >= limit) break;
      if (t.expiresAt <= now && this.tokens.delete(key)) n++;
    }
    return n;
  }

  async addLink(link: AccountLink): Promise<void> {
    assertStorableLink(link);
    const key = JSON.stringify([link.issuer, link.externalSubject]);
    if (this.links.has(key)) throw new AccountConflictError("sub");
    this.links.set(key, copy(link));
  }
  async findByExternalLink(issuer: string, externalSubject: string): Promise<StoredAccount | undefined> {
    const link = this.links.get(JSON.stringify([issuer, externalSubject]));
    return link && this.findBySubject(link.subject);
  }
  async listLinks(subject: string): Promise<AccountLink[]> {
    return [...this.links.values()].filter((l) => l.subject === subject).sort((a, b) => a.createdAt - b.createdAt).map(copy);
  }
  async removeLink(subject: string, issuer: string, externalSubject: string): Promise<boolean> {
    const key = JSON.stringify([issuer, externalSubject]);
    if (this.links.get(key)?.subject !== subject) return false;
    return this.links.delete(key);
  }
}
