import type { Kysely, Selectable, Transaction } from "kysely";
import { Migrator } from "./kysely.ts";
import { decodeSessionCursor, encodeSessionCursor, type ServerSideSession, type SessionQuery, type SessionStore } from "../interfaces.ts";
import { sql } from "./kysely.ts";
import { assertFilter, type ConsumeResult, type GrantFilter, type GrantStore, type KeyStore, type PersistedGrant, type Store, type StoredKey } from "../interfaces.ts";
import { assertStorableGrant, assertStorableKey, assertStorableSession, findable, isStorableText, STORE_LIMITS } from "../values.ts";
import { migrationProvider } from "./migrations.ts";
import type { ClientsTable, Database, DeviceCodesTable, GrantsTable, KeysTable, SessionsTable } from "./schema.ts";
import type { ClientRecordStore, DeviceCodeDecision, DeviceCodeRecord, DeviceCodeStore, StoredClient, StoredClientSecret } from "../interfaces.ts";
import { assertStorableClient, assertStorableDeviceCode, assertStorableDeviceDecision } from "../values.ts";
import { SqlAccountStore } from "./account-store.ts";

const num = (v: number | string | bigint): number => Number(v);
const optNum = (v: number | string | bigint | null): number | undefined => (v === null ? undefined : Number(v));

function toGrant(row: Selectable<GrantsTable>): PersistedGrant {
  return {
    key: row.key,
    kind: row.kind as PersistedGrant["kind"],
    clientId: row.client_id,
    subject: row.subject ?? undefined,
    sessionId: row.session_id ?? undefined,
    grantId: row.grant_id ?? undefined,
    data: row.data,
    createdAt: num(row.created_at),
    expiresAt: num(row.expires_at),
    consumedAt: optNum(row.consumed_at),
  };
}

function toKey(row: Selectable<KeysTable>): StoredKey {
  return {
    kid: row.kid,
    alg: row.alg,
    protectedJwk: row.protected_jwk,
    createdAt: num(row.created_at),
    activatesAt: num(row.activates_at),
    retiresAt: optNum(row.retires_at),
  };
}

function toRow(grant: PersistedGrant) {
  assertStorableGrant(grant);
  return {
    key: grant.key,
    kind: grant.kind,
    client_id: grant.clientId,
    subject: grant.subject ?? null,
    session_id: grant.sessionId ?? null,
    grant_id: grant.grantId ?? null,
    data: grant.data,
    created_at: grant.createdAt,
    expires_at: grant.expiresAt,
    consumed_at: grant.consumedAt ?? null,
  };
}

/** False when the filter names a value no row can hold (PostgreSQL would refuse NUL in a parameter). */
const filterFindable = (filter: GrantFilter) => Object.values(filter).every((v) => v === undefined || findable(v));

/** Adds a WHERE for each field the filter names (works for SELECT and DELETE alike). */
function applyFilter<Q extends { where: WhereFn<Q> }>(query: Q, filter: GrantFilter): Q {
  if (filter.subject !== undefined) query = query.where("subject", "=", filter.subject);
  if (filter.clientId !== undefined) query = query.where("client_id", "=", filter.clientId);
  if (filter.sessionId !== undefined) query = query.where("session_id", "=", filter.sessionId);
  if (filter.grantId !== undefined) query = query.where("grant_id", "=", filter.grantId);
  if (filter.kind !== undefined) query = query.where("kind", "=", filter.kind);
  return query;
}
type WhereFn<Q> = (column: "subject" | "client_id" | "session_id" | "grant_id" | "kind", op: "=", value: string) => Q;

class SqlGrantStore implements GrantStore {
  constructor(private readonly db: Kysely<Database>) {}

  async put(grant: PersistedGrant): Promise<void> {
    const row = toRow(grant);
    await this.db
      .insertInto("tessera_grants")
      .values(row)
      .onConflict((oc) => oc.column("key").doUpdateSet({ ...row }))
      .execute();
  }

  async putIfAbsent(grant: PersistedGrant): Promise<boolean> {
    const row = toRow(grant);
    // Inserts, or replaces a row that has expired; a live row makes this a no-op.
    const result = await this.db
      .insertInto("tessera_grants")
      .values(row)
      .onConflict((oc) => oc.column("key").doUpdateSet({ ...row }).where("tessera_grants.expires_at", "<", grant.createdAt))
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async get(key: string): Promise<PersistedGrant | undefined> {
    if (!findable(key, STORE_LIMITS.key)) return undefined;
    const row = await this.db.selectFrom("tessera_grants").selectAll().where("key", "=", key).executeTakeFirst();
    return row ? toGrant(row) : undefined;
  }

  async consume(key: string, at: number): Promise<ConsumeResult | undefined> {
    if (!findable(key, STORE_LIMITS.key)) return undefined;
    // One UPDATE decides the winner, so two racing redemptions can never both see firstUse.
    const result = await this.db
      .updateTable("tessera_grants")
      .set({ consumed_at: at })
      .where("key", "=", key)
      .where("consumed_at", "is", null)
      .executeTakeFirst();
    const grant = await this.get(key);
    if (!grant) return undefined;
    return { grant, firstUse: Number(result.numUpdatedRows) === 1 };
  }

  async remove(key: string): Promise<void> {
    if (!findable(key, STORE_LIMITS.key)) return;
    await this.db.deleteFrom("tessera_grants").where("key", "=", key).execute();
  }

  async findAll(filter: GrantFilter, limit: number): Promise<PersistedGrant[]> {
    assertFilter(filter);
    if (!filterFindable(filter)) return [];
    const rows = await applyFilter(this.db.selectFrom("tessera_grants").selectAll(), filter).orderBy("created_at").orderBy("key").limit(limit).execute();
    return rows.map(toGrant);
  }

  async count(filter: GrantFilter, liveAt: number, max?: number): Promise<number> {
    assertFilter(filter);
    if (max === undefined) {
      const row = await applyFilter(this.db.selectFrom("tessera_grants").select((eb) => eb.fn.countAll<number | string | bigint>().as("n")), filter)
        .where("expires_at", ">", liveAt)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    }
    if (max <= 0) return 0;
    // The inner LIMIT stops the scan at `max` rows, however many match.
    const matching = applyFilter(this.db.selectFrom("tessera_grants").select(sql<number>`1`.as("one")), filter)
      .where("expires_at", ">", liveAt)
      .limit(Math.floor(max));
    const row = await this.db
      .selectFrom(matching.as("capped"))
      .select((eb) => eb.fn.countAll<number | string | bigint>().as("n"))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
  async removeAll(filter: GrantFilter): Promise<number> {
    assertFilter(filter);
    if (!filterFindable(filter)) return 0;
    const result = await applyFilter(this.db.deleteFrom("tessera_grants"), filter).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async removeExpired(now: number, limit: number): Promise<number> {
    const keys = this.db.selectFrom("tessera_grants").select("key").where("expires_at", "<", now).limit(limit);
    const result = await this.db.deleteFrom("tessera_grants").where("key", "in", keys).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** Takes a lock held until the transaction ends (PostgreSQL: an advisory lock; SQLite: the write lock). */
export type TransactionLock = (trx: Transaction<Database>, name: string) => Promise<void>;

class SqlKeyStore implements KeyStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly lock: TransactionLock,
  ) {}

  async update(change: (keys: StoredKey[]) => Promise<{ add: StoredKey[]; remove: string[] }>): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.lock(trx, "tessera-keys");
      const rows = await trx.selectFrom("tessera_keys").selectAll().orderBy("created_at").orderBy("kid").execute();
      const { add, remove } = await change(rows.map(toKey));
      add.forEach(assertStorableKey);
      for (const key of add) {
        await trx
          .insertInto("tessera_keys")
          .values({ kid: key.kid, alg: key.alg, protected_jwk: key.protectedJwk, created_at: key.createdAt, activates_at: key.activatesAt, retires_at: key.retiresAt ?? null })
          .onConflict((oc) => oc.column("kid").doNothing())
          .execute();
      }
      if (remove.length > 0) await trx.deleteFrom("tessera_keys").where("kid", "in", remove).execute();
    });
  }
  async list(): Promise<StoredKey[]> {
    const rows = await this.db.selectFrom("tessera_keys").selectAll().orderBy("created_at").orderBy("kid").execute();
    return rows.map(toKey);
  }
  async add(key: StoredKey): Promise<void> {
    assertStorableKey(key);
    await this.db
      .insertInto("tessera_keys")
      .values({
        kid: key.kid,
        alg: key.alg,
        protected_jwk: key.protectedJwk,
        created_at: key.createdAt,
        activates_at: key.activatesAt,
        retires_at: key.retiresAt ?? null,
      })
      .onConflict((oc) => oc.column("kid").doNothing())
      .execute();
  }
  async remove(kid: string): Promise<void> {
    if (!findable(kid, STORE_LIMITS.kid)) return;
    await this.db.deleteFrom("tessera_keys").where("kid", "=", kid).execute();
  }
}

function toSession(row: Selectable<SessionsTable>): ServerSideSession {
  return {
    key: row.key,
    sessionId: row.session_id,
    subject: row.subject,
    displayName: row.display_name ?? undefined,
    created: num(row.created),
    renewed: num(row.renewed),
    expires: num(row.expires),
    clientIds: JSON.parse(row.client_ids) as string[],
    ticket: row.ticket,
  };
}

/** `%part%` for LIKE, with the wildcards of the part escaped. */
const likePattern = (part: string) => `%${part.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;

function sessionRow(session: ServerSideSession) {
  return {
    key: session.key,
    session_id: session.sessionId,
    subject: session.subject,
    display_name: session.displayName ?? null,
    created: session.created,
    renewed: session.renewed,
    expires: session.expires,
    client_ids: JSON.stringify(session.clientIds),
    ticket: session.ticket,
  };
}

class SqlSessionStore implements SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async put(session: ServerSideSession): Promise<void> {
    assertStorableSession(session);
    const row = sessionRow(session);
    await this.db.insertInto("tessera_sessions").values(row).onConflict((oc) => oc.column("key").doUpdateSet({ ...row })).execute();
  }

  async create(session: ServerSideSession): Promise<boolean> {
    assertStorableSession(session);
    // No conflict target: a clash on the key or on the unique session_id alike inserts nothing.
    const result = await this.db.insertInto("tessera_sessions").values(sessionRow(session)).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async update(session: ServerSideSession): Promise<boolean> {
    assertStorableSession(session);
    const { key, ...changes } = sessionRow(session);
    const result = await this.db.updateTable("tessera_sessions").set(changes).where("key", "=", key).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async rekey(oldKey: string, newKey: string): Promise<boolean> {
    if (!findable(oldKey, STORE_LIMITS.key) || !findable(newKey, STORE_LIMITS.key)) return false;
    const result = await this.db.updateTable("tessera_sessions").set({ key: newKey }).where("key", "=", oldKey).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async get(key: string): Promise<ServerSideSession | undefined> {
    if (!findable(key, STORE_LIMITS.key)) return undefined;
    const row = await this.db.selectFrom("tessera_sessions").selectAll().where("key", "=", key).executeTakeFirst();
    return row ? toSession(row) : undefined;
  }

  async getBySessionId(sessionId: string): Promise<ServerSideSession | undefined> {
    if (!findable(sessionId, STORE_LIMITS.sessionId)) return undefined;
    const row = await this.db.selectFrom("tessera_sessions").selectAll().where("session_id", "=", sessionId).executeTakeFirst();
    return row ? toSession(row) : undefined;
  }

  async remove(keys: string[]): Promise<ServerSideSession[]> {
    keys = keys.filter((key) => findable(key, STORE_LIMITS.key));
    if (keys.length === 0) return [];
    // RETURNING reports exactly the rows this statement deleted, so racing processes never share one.
    const rows = await this.db.deleteFrom("tessera_sessions").where("key", "in", keys).returningAll().execute();
    return rows.map(toSession);
  }

  async query(query: SessionQuery): Promise<{ sessions: ServerSideSession[]; next: string | null }> {
    if ([query.subject, query.displayName, query.sessionId].some((part) => part !== undefined && !isStorableText(part))) return { sessions: [], next: null };
    let q = this.db.selectFrom("tessera_sessions").selectAll();
    const like = (column: "subject" | "display_name" | "session_id", part: string) =>
      sql<boolean>`lower(${sql.ref(column)}) like ${likePattern(part)} escape '!'`;
    if (query.subject) q = q.where(like("subject", query.subject));
    if (query.displayName) q = q.where(like("display_name", query.displayName));
    if (query.sessionId) q = q.where(like("session_id", query.sessionId));
    const after = query.cursor ? decodeSessionCursor(query.cursor) : undefined;
    if (after) q = q.where((eb) => eb.or([eb("created", ">", after.created), eb.and([eb("created", "=", after.created), eb("key", ">", after.key)])]));
    const rows = await q.orderBy("created").orderBy("key").limit(query.count + 1).execute();
    const sessions = rows.slice(0, query.count).map(toSession);
    return { sessions, next: rows.length > query.count ? encodeSessionCursor(sessions[sessions.length - 1]!) : null };
  }

  async removeExpired(now: number, limit: number): Promise<ServerSideSession[]> {
    const keys = this.db.selectFrom("tessera_sessions").select("key").where("expires", "<", now).limit(limit);
    const rows = await this.db.deleteFrom("tessera_sessions").where("key", "in", keys).returningAll().execute();
    return rows.map(toSession);
  }
}

function toClient(row: Selectable<ClientsTable>): StoredClient {
  return {
    clientId: row.client_id,
    metadata: row.metadata,
    secrets: JSON.parse(row.secrets) as StoredClientSecret[],
    registrationTokenHash: row.registration_token_hash ?? undefined,
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

function clientRow(client: StoredClient) {
  assertStorableClient(client);
  return {
    client_id: client.clientId,
    metadata: client.metadata,
    secrets: JSON.stringify(client.secrets),
    registration_token_hash: client.registrationTokenHash ?? null,
    created_at: client.createdAt,
    updated_at: client.updatedAt,
  };
}

class SqlClientStore implements ClientRecordStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(client: StoredClient): Promise<boolean> {
    const result = await this.db.insertInto("tessera_clients").values(clientRow(client)).onConflict((oc) => oc.column("client_id").doNothing()).executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async get(clientId: string): Promise<StoredClient | undefined> {
    if (!findable(clientId, STORE_LIMITS.clientId)) return undefined;
    const row = await this.db.selectFrom("tessera_clients").selectAll().where("client_id", "=", clientId).executeTakeFirst();
    return row ? toClient(row) : undefined;
  }

  async update(client: StoredClient, expected?: StoredClient): Promise<boolean> {
    const { client_id, ...changes } = clientRow(client);
    let query = this.db.updateTable("tessera_clients").set(changes).where("client_id", "=", client_id);
    if (expected) {
      // Compare-and-set: only while the row still holds what the caller read.
      const was = clientRow(expected);
      query = query.where("metadata", "=", was.metadata).where("secrets", "=", was.secrets).where("updated_at", "=", was.updated_at);
      query = was.registration_token_hash === null ? query.where("registration_token_hash", "is", null) : query.where("registration_token_hash", "=", was.registration_token_hash);
    }
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async remove(clientId: string): Promise<boolean> {
    if (!findable(clientId, STORE_LIMITS.clientId)) return false;
    const result = await this.db.deleteFrom("tessera_clients").where("client_id", "=", clientId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async list(query: { after?: string; count: number }): Promise<StoredClient[]> {
    if (query.count <= 0) return [];
    let q = this.db.selectFrom("tessera_clients").selectAll();
    if (query.after !== undefined) {
      // A cursor no store could have made (PostgreSQL refuses NUL in a parameter): an empty page.
      if (!isStorableText(query.after)) return [];
      q = q.where("client_id", ">", query.after);
    }
    const rows = await q.orderBy("client_id").limit(Math.floor(query.count)).execute();
    return rows.map(toClient);
  }
}

function toDeviceCode(row: Selectable<DeviceCodesTable>): DeviceCodeRecord {
  return {
    key: row.key,
    userCodeKey: row.user_code_key,
    clientId: row.client_id,
    scope: row.scope,
    status: row.status as DeviceCodeRecord["status"],
    subject: row.subject ?? undefined,
    sessionId: row.session_id ?? undefined,
    data: row.data,
    createdAt: num(row.created_at),
    expiresAt: num(row.expires_at),
    interval: num(row.poll_interval),
    lastPolledAt: optNum(row.last_polled_at),
    consumedAt: optNum(row.consumed_at),
  };
}

class SqlDeviceCodeStore implements DeviceCodeStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(record: DeviceCodeRecord): Promise<boolean> {
    assertStorableDeviceCode(record);
    // No conflict target: a clash on the key or on the unique user code alike inserts nothing.
    const result = await this.db
      .insertInto("tessera_device_codes")
      .values({
        key: record.key,
        user_code_key: record.userCodeKey,
        client_id: record.clientId,
        scope: record.scope,
        status: record.status,
        subject: record.subject ?? null,
        session_id: record.sessionId ?? null,
        data: record.data,
        created_at: record.createdAt,
        expires_at: record.expiresAt,
        poll_interval: record.interval,
        last_polled_at: record.lastPolledAt ?? null,
        consumed_at: record.consumedAt ?? null,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async get(key: string): Promise<DeviceCodeRecord | undefined> {
    if (!findable(key, STORE_LIMITS.key)) return undefined;
    const row = await this.db.selectFrom("tessera_device_codes").selectAll().where("key", "=", key).executeTakeFirst();
    return row ? toDeviceCode(row) : undefined;
  }

  async findByUserCode(userCodeKey: string): Promise<DeviceCodeRecord | undefined> {
    if (!findable(userCodeKey, STORE_LIMITS.key)) return undefined;
    const row = await this.db.selectFrom("tessera_device_codes").selectAll().where("user_code_key", "=", userCodeKey).executeTakeFirst();
    return row ? toDeviceCode(row) : undefined;
  }

  async decide(userCodeKey: string, decision: DeviceCodeDecision, at: number): Promise<boolean> {
    assertStorableDeviceDecision(decision);
    if (!findable(userCodeKey, STORE_LIMITS.key)) return false;
    // One UPDATE guarded by the pending status: of racing decisions exactly one lands.
    const result = await this.db
      .updateTable("tessera_device_codes")
      .set({ status: decision.status, subject: decision.subject ?? null, session_id: decision.sessionId ?? null, data: decision.data })
      .where("user_code_key", "=", userCodeKey)
      .where("status", "=", "pending")
      .where("expires_at", ">", at)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async recordPoll(key: string, previous: number | undefined, at: number, interval: number): Promise<boolean> {
    assertStorableDeviceDecision({ lastPolledAt: at, interval });
    if (!findable(key, STORE_LIMITS.key)) return false;
    const result = await this.db
      .updateTable("tessera_device_codes")
      .set({ last_polled_at: at, poll_interval: interval })
      .where("key", "=", key)
      .where("last_polled_at", previous === undefined ? "is" : "=", previous ?? null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async consume(key: string, at: number): Promise<{ record: DeviceCodeRecord; firstUse: boolean } | undefined> {
    if (!findable(key, STORE_LIMITS.key)) return undefined;
    // One UPDATE decides the winner, so two racing redemptions (in any processes) never both see firstUse.
    const result = await this.db.updateTable("tessera_device_codes").set({ consumed_at: at }).where("key", "=", key).where("consumed_at", "is", null).executeTakeFirst();
    const record = await this.get(key);
    return record ? { record, firstUse: Number(result.numUpdatedRows) === 1 } : undefined;
  }

  async remove(key: string): Promise<void> {
    if (!findable(key, STORE_LIMITS.key)) return;
    await this.db.deleteFrom("tessera_device_codes").where("key", "=", key).execute();
  }

  async removeExpired(now: number, limit: number): Promise<number> {
    const keys = this.db.selectFrom("tessera_device_codes").select("key").where("expires_at", "<", now).limit(limit);
    const result = await this.db.deleteFrom("tessera_device_codes").where("key", "in", keys).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** Runs pending migrations; throws with the failing migration's error. */
export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: "tessera_migrations",
    migrationLockTableName: "tessera_migrations_lock",
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** A {@link Store} over any Kysely dialect with the Tessera schema; `lock` serializes key changes across processes. */
export function createSqlStore(db: Kysely<Database>, lock: TransactionLock = async () => {}): Store {
  return {
    grants: new SqlGrantStore(db),
    deviceCodes: new SqlDeviceCodeStore(db),
    keys: new SqlKeyStore(db, lock),
    sessions: new SqlSessionStore(db),
    clients: new SqlClientStore(db),
    accounts: new SqlAccountStore(db),
    async ping() {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}
