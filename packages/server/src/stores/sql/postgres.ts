import { Kysely, PostgresDialect, sql } from "./kysely.ts";
import type { Store } from "../interfaces.ts";
import type { Database } from "./schema.ts";
import { createSqlStore, migrate } from "./sql-store.ts";

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /** Most connections in the pool (default 10). */
  poolSize?: number;
  /** Milliseconds to wait for a connection before failing the request (default 5000). */
  connectionTimeout?: number;
}

/**
 * Opens a PostgreSQL store: a connection pool, migrations run under Kysely's advisory lock (safe when
 * several processes start at once), key changes under an advisory transaction lock. The pool reconnects
 * by itself after the database comes back.
 */
export async function createPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  // The driver loads with the first PostgreSQL store: processes on SQLite or memory never load it.
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectionTimeout ?? 5000,
    idleTimeoutMillis: 30_000,
  });
  // A dropped connection (database restart) must not crash the process: idle clients report to the pool,
  // checked-out ones to themselves; their queries fail (503) and the pool replaces them.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await assertUtf8(db);
    await migrate(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return createSqlStore(db, async (trx, name) => {
    await sql`select pg_advisory_xact_lock(hashtext(${name}))`.execute(trx);
  });
}

/**
 * Text must round-trip unchanged (values.ts checks for what UTF-8 can hold): a database in another encoding
 * (SQL_ASCII, LATIN1) would refuse or garble characters the other stores keep, so it is refused at open.
 */
async function assertUtf8(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{ server_encoding: string }>`show server_encoding`.execute(db);
  const encoding = rows[0]?.server_encoding;
  if (encoding !== "UTF8") {
    throw new Error(`PostgreSQL: the database's server_encoding is ${encoding ?? "unknown"}, Tessera needs UTF8 (create it with ENCODING 'UTF8' TEMPLATE template0)`);
  }
}
