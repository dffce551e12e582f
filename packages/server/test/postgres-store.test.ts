import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startTestPostgres } from "../../../test/support/postgres.ts";
import { createPostgresStore } from "../src/stores/sql/postgres.ts";
import { storeConformance } from "./store-conformance.ts";
import { userStoreConformance } from "./user-store-conformance.ts";

const postgres = await startTestPostgres();
after(() => postgres?.close());

describe("PostgreSQL store", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  // The same suite as memory and SQLite, unchanged, each test on a fresh database.
  storeConformance("postgres", async () => createPostgresStore(await postgres!.createDatabase()));
  userStoreConformance("postgres", async () => createPostgresStore(await postgres!.createDatabase()));
  it("runs migrations once when several processes start at the same moment", async () => {
    const url = await postgres!.createDatabase();
    const stores = await Promise.all(Array.from({ length: 5 }, () => createPostgresStore(url)));
    await Promise.all(stores.map((s) => s.close()));
  });
});

describe("PostgreSQL migrations under load", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  it("6.9 migration 0003 waits at most lock_timeout (5 s) for its ACCESS EXCLUSIVE lock, then fails the start instead of queueing every request", { timeout: 30_000 }, async () => {
    const { Kysely, Migrator, PostgresDialect } = await import("kysely");
    const pg = (await import("pg")).default;
    const { migrationProvider } = await import("../src/stores/sql/migrations.ts");
    const url = await postgres!.createDatabase();
    // A database at the previous release's schema (0001, 0002).
    const old = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) });
    const migrator = new Migrator({ db: old, provider: migrationProvider, migrationTableName: "tessera_migrations", migrationLockTableName: "tessera_migrations_lock" });
    assert.equal((await migrator.migrateTo("0002_server_side_sessions")).error, undefined);
    await old.destroy();
    // A long-running reader holds the table (ACCESS SHARE) while the new release starts.
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    try {
      await reader.query("begin");
      await reader.query("select count(*) from tessera_grants");
      await assert.rejects(createPostgresStore(url), /lock timeout/);
    } finally {
      await reader.query("rollback");
      await reader.end();
    }
    // Once the reader is gone, the start succeeds.
    const store = await createPostgresStore(url);
    await store.close();
  });
});
