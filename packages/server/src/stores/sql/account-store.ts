import { createHash } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { sql } from "./kysely.ts";
import {
  AccountConflictError,
  ACCOUNT_LIMITS,
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
import { findable, isStorableText, StoreValueError } from "../values.ts";
import type { AccountCredentialsTable, AccountLinksTable, AccountsTable, Database } from "./schema.ts";

const num = (v: number | string | bigint): number => Number(v);

function toAccount(row: Selectable<AccountsTable>): StoredAccount {
  return {
    sub: row.sub,
    username: row.username,
    email: row.email ?? undefined,
    emailVerified: num(row.email_verified) === 1,
    passwordHash: row.password_hash ?? undefined,
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    disabled: num(row.disabled) === 1,
    sessionsValidAfter: row.sessions_valid_after === null ? undefined : num(row.sessions_valid_after),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

function toCredential(row: Selectable<AccountCredentialsTable>): AccountCredential {
  return {
    id: row.id,
    subject: row.subject,
    type: row.type,
    name: row.name ?? undefined,
    secret: row.secret,
    counter: num(row.counter),
    transports: row.transports === null ? undefined : (JSON.parse(row.transports) as string[]),
    data: row.data ?? undefined,
    createdAt: num(row.created_at),
    lastUsedAt: row.last_used_at === null ? undefined : num(row.last_used_at),
  };
}

function toLink(row: Selectable<AccountLinksTable>): AccountLink {
  return { issuer: row.issuer, externalSubject: row.external_subject, subject: row.subject, createdAt: num(row.created_at) };
}

const nameKey = (claims: Record<string, unknown>) => (typeof claims.name === "string" ? searchKey(claims.name) : null);
const linkKey = (issuer: string, externalSubject: string) => createHash("sha256").update(JSON.stringify([issuer, externalSubject])).digest("base64url");

/** A unique-constraint violation (SQLite or PostgreSQL). */
function isUniqueViolation(error: unknown): boolean {
  const { code } = (error ?? {}) as { code?: unknown };
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

const likePattern = (part: string) => `%${part.replace(/[!%_]/g, (c) => `!${c}`)}%`;

/** {@link AccountStore} over the Tessera schema (SQLite and PostgreSQL). */
export class SqlAccountStore implements AccountStore {
  constructor(private readonly db: Kysely<Database>) {}

  async findBySubject(sub: string): Promise<StoredAccount | undefined> {
    if (!findable(sub, ACCOUNT_LIMITS.sub)) return undefined;
    const row = await this.db.selectFrom("tessera_accounts").selectAll().where("sub", "=", sub).executeTakeFirst();
    return row && toAccount(row);
  }

  async findByUsername(username: string): Promise<StoredAccount | undefined> {
    if (!findable(username, ACCOUNT_LIMITS.username)) return undefined;
    const row = await this.db.selectFrom("tessera_accounts").selectAll().where("username_key", "=", normalizeUsername(username)).executeTakeFirst();
    return row && toAccount(row);
  }

  async findByEmail(email: string): Promise<StoredAccount | undefined> {
    if (!findable(email, ACCOUNT_LIMITS.email)) return undefined;
    const row = await this.db.selectFrom("tessera_accounts").selectAll().where("email_key", "=", normalizeEmail(email)).executeTakeFirst();
    return row && toAccount(row);
  }

  /** Which unique field a refused write clashed on. */
  private async conflict(account: Pick<StoredAccount, "sub" | "username" | "email">, isNew: boolean): Promise<AccountConflictError> {
    if (isNew && (await this.findBySubject(account.sub))) return new AccountConflictError("sub");
    const byName = await this.findByUsername(account.username);
    if (byName && byName.sub !== account.sub) return new AccountConflictError("username");
    return new AccountConflictError("email");
  }

  async create(account: NewAccount): Promise<void> {
    assertStorableAccount(account);
    try {
      await this.db
        .insertInto("tessera_accounts")
        .values({
          sub: account.sub,
          username: account.username,
          username_key: normalizeUsername(account.username),
          email: account.email ?? null,
          email_key: account.email === undefined ? null : normalizeEmail(account.email),
          email_verified: account.emailVerified ? 1 : 0,
          password_hash: account.passwordHash ?? null,
          claims: JSON.stringify(account.claims),
          name_key: nameKey(account.claims),
          disabled: account.disabled ? 1 : 0,
          sessions_valid_after: account.sessionsValidAfter ?? null,
          created_at: account.createdAt,
          updated_at: account.updatedAt,
        })
        .execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw await this.conflict(account, true);
      throw error;
    }
  }

  async update(sub: string, changes: AccountChanges): Promise<StoredAccount | undefined> {
    assertStorableAccount(changes);
    if (!findable(sub, ACCOUNT_LIMITS.sub)) return undefined;
    const set: Partial<AccountsTable> = { updated_at: changes.updatedAt };
    if (changes.username !== undefined) Object.assign(set, { username: changes.username, username_key: normalizeUsername(changes.username) });
    if (changes.email !== undefined) Object.assign(set, { email: changes.email, email_key: changes.email === null ? null : normalizeEmail(changes.email) });
    if (changes.emailVerified !== undefined) set.email_verified = changes.emailVerified ? 1 : 0;
    if (changes.passwordHash !== undefined) set.password_hash = changes.passwordHash;
    if (changes.claims !== undefined) Object.assign(set, { claims: JSON.stringify(changes.claims), name_key: nameKey(changes.claims) });
    if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
    if (changes.sessionsValidAfter !== undefined) set.sessions_valid_after = changes.sessionsValidAfter;
    try {
      const row = await this.db.updateTable("tessera_accounts").set(set).where("sub", "=", sub).returningAll().executeTakeFirst();
      return row && toAccount(row);
    } catch (error) {
      if (isUniqueViolation(error)) {
        const current = await this.findBySubject(sub);
        throw await this.conflict({ sub, username: changes.username ?? current?.username ?? "", email: changes.email ?? undefined }, false);
      }
      throw error;
    }
  }

  async remove(sub: string): Promise<boolean> {
    if (!findable(sub, ACCOUNT_LIMITS.sub)) return false;
    return this.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom("tessera_accounts").where("sub", "=", sub).executeTakeFirst();
      await trx.deleteFrom("tessera_account_credentials").where("subject", "=", sub).execute();
      await trx.deleteFrom("tessera_account_tokens").where("subject", "=", sub).execute();
      await trx.deleteFrom("tessera_account_links").where("subject", "=", sub).execute();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async query(query: AccountQuery): Promise<{ accounts: StoredAccount[]; next: string | null }> {
    if (query.query !== undefined && !isStorableText(query.query)) return { accounts: [], next: null };
    let q = this.db.selectFrom("tessera_accounts").selectAll();
    if (query.query !== undefined) {
      const pattern = likePattern(searchKey(query.query));
      q = q.where(
        sql<boolean>`(lower(sub) like ${pattern} escape '!' or username_key like ${pattern} escape '!' or email_key like ${pattern} escape '!' or name_key like ${pattern} escape '!')`,
      );
    }
    const after = query.cursor ? decodeAccountCursor(query.cursor) : undefined;
    if (after) q = q.where((eb) => eb.or([eb("created_at", ">", after.createdAt), eb.and([eb("created_at", "=", after.createdAt), eb("sub", ">", after.sub)])]));
    const rows = await q.orderBy("created_at").orderBy("sub").limit(query.count + 1).execute();
    const accounts = rows.slice(0, query.count).map(toAccount);
    return { accounts, next: rows.length > query.count ? encodeAccountCursor(accounts[accounts.length - 1]!) : null };
  }

  async addCredential(credential: AccountCredential): Promise<void> {
    assertStorableCredential(credential);
    try {
      await this.db
        .insertInto("tessera_account_credentials")
        .values({
          id: credential.id,
          subject: credential.subject,
          type: credential.type,
          name: credential.name ?? null,
          secret: credential.secret,
          counter: credential.counter,
          transports: credential.transports === undefined ? null : JSON.stringify(credential.transports),
          data: credential.data ?? null,
          created_at: credential.createdAt,
          last_used_at: credential.lastUsedAt ?? null,
        })
        .execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new AccountConflictError("sub");
      throw error;
    }
  }

  async getCredential(id: string): Promise<AccountCredential | undefined> {
    if (!findable(id, ACCOUNT_LIMITS.credentialId)) return undefined;
    const row = await this.db.selectFrom("tessera_account_credentials").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toCredential(row);
  }

  async listCredentials(subject: string, type?: CredentialType): Promise<AccountCredential[]> {
    if (!findable(subject, ACCOUNT_LIMITS.sub) || (type !== undefined && !findable(type, ACCOUNT_LIMITS.credentialType))) return [];
    let q = this.db.selectFrom("tessera_account_credentials").selectAll().where("subject", "=", subject);
    if (type !== undefined) q = q.where("type", "=", type);
    return (await q.orderBy("created_at").orderBy("id").execute()).map(toCredential);
  }

  async advanceCounter(id: string, counter: number, usedAt: number): Promise<boolean> {
    if (!Number.isSafeInteger(counter) || !Number.isSafeInteger(usedAt)) throw new StoreValueError("counter", "is not a whole number within the safe integer range", "server");
    if (!findable(id, ACCOUNT_LIMITS.credentialId)) return false;
    // One UPDATE decides: of two racing uses of one TOTP step, one wins.
    const result = await this.db.updateTable("tessera_account_credentials").set({ counter, last_used_at: usedAt }).where("id", "=", id).where("counter", "<", counter).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async updateCredential(subject: string, id: string, changes: { name?: string; data?: string; lastUsedAt?: number }): Promise<boolean> {
    if (!findable(id, ACCOUNT_LIMITS.credentialId) || !findable(subject, ACCOUNT_LIMITS.sub)) return false;
    assertStorableCredential({ id, subject, type: "", secret: "", counter: 0, createdAt: 0, ...changes });
    const set: Partial<AccountCredentialsTable> = {};
    if (changes.name !== undefined) set.name = changes.name;
    if (changes.data !== undefined) set.data = changes.data;
    if (changes.lastUsedAt !== undefined) set.last_used_at = changes.lastUsedAt;
    if (Object.keys(set).length === 0) return (await this.getCredential(id))?.subject === subject;
    const result = await this.db.updateTable("tessera_account_credentials").set(set).where("id", "=", id).where("subject", "=", subject).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async removeCredential(subject: string, id: string): Promise<boolean> {
    if (!findable(id, ACCOUNT_LIMITS.credentialId) || !findable(subject, ACCOUNT_LIMITS.sub)) return false;
    const result = await this.db.deleteFrom("tessera_account_credentials").where("id", "=", id).where("subject", "=", subject).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async removeCredentials(subject: string, type?: CredentialType): Promise<number> {
    if (!findable(subject, ACCOUNT_LIMITS.sub) || (type !== undefined && !findable(type, ACCOUNT_LIMITS.credentialType))) return 0;
    let q = this.db.deleteFrom("tessera_account_credentials").where("subject", "=", subject);
    if (type !== undefined) q = q.where("type", "=", type);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }

  async putToken(token: AccountToken): Promise<void> {
    assertStorableToken(token);
    const row = { key: token.key, subject: token.subject, purpose: token.purpose, data: token.data ?? null, created_at: token.createdAt, expires_at: token.expiresAt };
    await this.db
      .insertInto("tessera_account_tokens")
      .values(row)
      .onConflict((oc) => oc.column("key").doUpdateSet({ ...row }))
      .execute();
  }

  async consumeToken(key: string, purpose: AccountTokenPurpose, now: number): Promise<AccountToken | undefined> {
    if (!findable(key, ACCOUNT_LIMITS.tokenKey) || !findable(purpose, ACCOUNT_LIMITS.purpose)) return undefined;
    // DELETE … RETURNING: exactly one of racing uses gets the row.
    const row = await this.db.deleteFrom("tessera_account_tokens").where("key", "=", key).where("purpose", "=", purpose).returningAll().executeTakeFirst();
    if (!row || num(row.expires_at) <= now) return undefined;
    return { key: row.key, subject: row.subject, purpose: row.purpose, data: row.data ?? undefined, createdAt: num(row.created_at), expiresAt: num(row.expires_at) };
  }

  async removeTokens(subject: string, purpose?: AccountTokenPurpose): Promise<number> {
    if (!findable(subject, ACCOUNT_LIMITS.sub) || (purpose !== undefined && !findable(purpose, ACCOUNT_LIMITS.purpose))) return 0;
    let q = this.db.deleteFrom("tessera_account_tokens").where("subject", "=", subject);
    if (purpose !== undefined) q = q.where("purpose", "=", purpose);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }

  async removeExpiredTokens(now: number, limit: number): Promise<number> {
    const keys = this.db.selectFrom("tessera_account_tokens").select("key").where("expires_at", "<=", now).limit(limit);
    return Number((await this.db.deleteFrom("tessera_account_tokens").where("key", "in", keys).executeTakeFirst()).numDeletedRows);
  }

  async addLink(link: AccountLink): Promise<void> {
    assertStorableLink(link);
    try {
      await this.db
        .insertInto("tessera_account_links")
        .values({ key: linkKey(link.issuer, link.externalSubject), issuer: link.issuer, external_subject: link.externalSubject, subject: link.subject, created_at: link.createdAt })
        .execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new AccountConflictError("sub");
      throw error;
    }
  }

  async findByExternalLink(issuer: string, externalSubject: string): Promise<StoredAccount | undefined> {
    if (!isStorableText(issuer) || !isStorableText(externalSubject)) return undefined;
    const row = await this.db
      .selectFrom("tessera_account_links")
      .innerJoin("tessera_accounts", "tessera_accounts.sub", "tessera_account_links.subject")
      .selectAll("tessera_accounts")
      .where("tessera_account_links.key", "=", linkKey(issuer, externalSubject))
      .executeTakeFirst();
    return row && toAccount(row);
  }

  async listLinks(subject: string): Promise<AccountLink[]> {
    if (!findable(subject, ACCOUNT_LIMITS.sub)) return [];
    const rows = await this.db.selectFrom("tessera_account_links").selectAll().where("subject", "=", subject).orderBy("created_at").orderBy("key").execute();
    return rows.map(toLink);
  }

  async removeLink(subject: string, issuer: string, externalSubject: string): Promise<boolean> {
    if (!findable(subject, ACCOUNT_LIMITS.sub) || !isStorableText(issuer) || !isStorableText(externalSubject)) return false;
    const result = await this.db.deleteFrom("tessera_account_links").where("key", "=", linkKey(issuer, externalSubject)).where("subject", "=", subject).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }
}
