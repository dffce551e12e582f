import type { Kysely, Migration, MigrationProvider } from "kysely";
import { SqliteAdapter, sql } from "./kysely.ts";

/** Schema migrations in order; names sort in the order they run. Never edit one that has shipped. */
const migrations: Record<string, Migration> = {
  "0001_grants_and_keys": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("tessera_grants")
        .addColumn("key", "varchar(128)", (c) => c.primaryKey())
        .addColumn("kind", "varchar(32)", (c) => c.notNull())
        .addColumn("client_id", "varchar(200)", (c) => c.notNull())
        .addColumn("subject", "varchar(200)")
        .addColumn("session_id", "varchar(100)")
        .addColumn("grant_id", "varchar(100)")
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("consumed_at", "bigint")
        .execute();
      await db.schema.createIndex("tessera_grants_expires").on("tessera_grants").column("expires_at").execute();
      await db.schema.createIndex("tessera_grants_subject").on("tessera_grants").columns(["subject", "client_id"]).execute();
      await db.schema.createIndex("tessera_grants_session").on("tessera_grants").column("session_id").execute();
      await db.schema.createIndex("tessera_grants_grant").on("tessera_grants").column("grant_id").execute();
      await db.schema
        .createTable("tessera_keys")
        .addColumn("kid", "varchar(100)", (c) => c.primaryKey())
        .addColumn("alg", "varchar(16)", (c) => c.notNull())
        .addColumn("protected_jwk", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("activates_at", "bigint", (c) => c.notNull())
        .addColumn("retires_at", "bigint")
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("tessera_keys").execute();
      await db.schema.dropTable("tessera_grants").execute();
    },
  },
  "0002_server_side_sessions": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("tessera_sessions")
        .addColumn("key", "varchar(128)", (c) => c.primaryKey())
        .addColumn("session_id", "varchar(100)", (c) => c.notNull().unique())
        .addColumn("subject", "varchar(255)", (c) => c.notNull())
        .addColumn("display_name", "varchar(255)")
        .addColumn("created", "bigint", (c) => c.notNull())
        .addColumn("renewed", "bigint", (c) => c.notNull())
        .addColumn("expires", "bigint", (c) => c.notNull())
        .addColumn("client_ids", "text", (c) => c.notNull())
        .addColumn("ticket", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("tessera_sessions_subject").on("tessera_sessions").column("subject").execute();
      await db.schema.createIndex("tessera_sessions_expires").on("tessera_sessions").column("expires").execute();
      await db.schema.createIndex("tessera_sessions_created").on("tessera_sessions").columns(["created", "key"]).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("tessera_sessions").execute();
    },
  },
  "0003_widen_subject_and_display_name": {
    // Every sub the config and the sign-in API accept (255) fits in grants too, and display names are
    // whatever a user's claim holds. SQLite never enforces varchar lengths, so only PostgreSQL changes.
    // Each ALTER takes an ACCESS EXCLUSIVE lock for a moment: wait at most 5 s for it (SET LOCAL lasts until
    // the migration transaction ends), so a long query holding the tables fails the start-up instead of
    // queueing every other request behind the ALTER.
    async up(db: Kysely<unknown>) {
      if (db.getExecutor().adapter instanceof SqliteAdapter) return;
      await sql`set local lock_timeout = '5s'`.execute(db);
      await db.schema.alterTable("tessera_grants").alterColumn("subject", (c) => c.setDataType("varchar(255)")).execute();
      await db.schema.alterTable("tessera_sessions").alterColumn("display_name", (c) => c.setDataType("text")).execute();
    },
    async down(db: Kysely<unknown>) {
      if (db.getExecutor().adapter instanceof SqliteAdapter) return;
      await sql`set local lock_timeout = '5s'`.execute(db);
      await db.schema.alterTable("tessera_sessions").alterColumn("display_name", (c) => c.setDataType("varchar(255)")).execute();
      await db.schema.alterTable("tessera_grants").alterColumn("subject", (c) => c.setDataType("varchar(200)")).execute();
    },
  },
  "0004_device_codes": {
    // RFC 8628 device codes: looked up by the device code's hash (key) and by the user code's hash (unique).
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("tessera_device_codes")
        .addColumn("key", "varchar(128)", (c) => c.primaryKey())
        .addColumn("user_code_key", "varchar(128)", (c) => c.notNull().unique())
        .addColumn("client_id", "varchar(200)", (c) => c.notNull())
        .addColumn("scope", "text", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("subject", "varchar(255)")
        .addColumn("session_id", "varchar(100)")
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("poll_interval", "bigint", (c) => c.notNull())
        .addColumn("last_polled_at", "bigint")
        .addColumn("consumed_at", "bigint")
        .execute();
      await db.schema.createIndex("tessera_device_codes_expires").on("tessera_device_codes").column("expires_at").execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("tessera_device_codes").execute();
    },
  },
  "0005_clients": {
    // Clients created at run time (admin API, dynamic registration); secrets as a JSON array of hashes.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("tessera_clients")
        .addColumn("client_id", "varchar(200)", (c) => c.primaryKey())
        .addColumn("metadata", "text", (c) => c.notNull())
        .addColumn("secrets", "text", (c) => c.notNull())
        .addColumn("registration_token_hash", "varchar(128)")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("tessera_clients").execute();
    },
  },
  "0006_accounts": {
    // Issue 20: stored accounts, their second-factor credentials, one-time tokens and external links.
    // Uniqueness is on the normalized keys (case-insensitive usernames and emails; NULL emails never clash).
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("tessera_accounts")
        .addColumn("sub", "varchar(255)", (c) => c.primaryKey())
        .addColumn("username", "varchar(100)", (c) => c.notNull())
        .addColumn("username_key", "text", (c) => c.notNull().unique())
        .addColumn("email", "varchar(254)")
        .addColumn("email_key", "text", (c) => c.unique())
        .addColumn("email_verified", "integer", (c) => c.notNull())
        .addColumn("password_hash", "text")
        .addColumn("claims", "text", (c) => c.notNull())
        .addColumn("name_key", "text")
        .addColumn("disabled", "integer", (c) => c.notNull())
        .addColumn("sessions_valid_after", "bigint")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("tessera_accounts_created").on("tessera_accounts").columns(["created_at", "sub"]).execute();
      await db.schema
        .createTable("tessera_account_credentials")
        .addColumn("id", "varchar(1024)", (c) => c.primaryKey())
        .addColumn("subject", "varchar(255)", (c) => c.notNull())
        .addColumn("type", "varchar(32)", (c) => c.notNull())
        .addColumn("name", "varchar(100)")
        .addColumn("secret", "text", (c) => c.notNull())
        .addColumn("counter", "bigint", (c) => c.notNull())
        .addColumn("transports", "text")
        .addColumn("data", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("last_used_at", "bigint")
        .execute();
      await db.schema.createIndex("tessera_account_credentials_subject").on("tessera_account_credentials").columns(["subject", "type"]).execute();
      await db.schema
        .createTable("tessera_account_tokens")
        .addColumn("key", "varchar(128)", (c) => c.primaryKey())
        .addColumn("subject", "varchar(255)", (c) => c.notNull())
        .addColumn("purpose", "varchar(32)", (c) => c.notNull())
        .addColumn("data", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("tessera_account_tokens_subject").on("tessera_account_tokens").column("subject").execute();
      await db.schema.createIndex("tessera_account_tokens_expires").on("tessera_account_tokens").column("expires_at").execute();
      await db.schema
        .createTable("tessera_account_links")
        .addColumn("key", "varchar(128)", (c) => c.primaryKey())
        .addColumn("issuer", "text", (c) => c.notNull())
        .addColumn("external_subject", "varchar(255)", (c) => c.notNull())
        .addColumn("subject", "varchar(255)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("tessera_account_links_subject").on("tessera_account_links").column("subject").execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("tessera_account_links").execute();
      await db.schema.dropTable("tessera_account_tokens").execute();
      await db.schema.dropTable("tessera_account_credentials").execute();
      await db.schema.dropTable("tessera_accounts").execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
