import { mkdirSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { SqliteDatabase } from "kysely";
import { Kysely, SqliteDialect } from "./kysely.ts";
import type { Store } from "../interfaces.ts";
import type { Database } from "./schema.ts";
import { createSqlStore, migrate } from "./sql-store.ts";

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew, which costs more than running it; statements are kept by their SQL
 * and reused (each run completes synchronously, so a statement is never shared by two queries at once;
 * a busy one, still iterating, is never handed out).
 */
function withStatementCache(database: BetterSqlite3.Database, hooks: { onWrite?: () => void }): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      const cached = statements.get(sql);
      if (cached && !cached.busy) return cached;
      const statement = database.prepare(sql);
      if (!statement.reader) hooks.onWrite?.();
      if (!cached) {
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

/** Opens (creating when missing) a SQLite database file, migrates it and returns the store. */
export async function createSqliteStore(path: string): Promise<Store> {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const database = new BetterSqlite3(path);
  database.pragma("journal_mode = WAL");
  database.pragma("busy_timeout = 5000");
  database.pragma("synchronous = NORMAL");
  const hooks: { onWrite?: () => void } = {};
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database, hooks) }) });
  await migrate(db);
  const store = createSqlStore(db);
  if (path === ":memory:") return store;
  // The checkpoint worker (a thread: about 17 MB resident) starts with the first write after opening; until
  // then there is nothing to checkpoint, and the connection checkpoints itself as it does by default.
  let checkpointer: Promise<{ stop(): Promise<void> }> | undefined;
  hooks.onWrite = () => {
    hooks.onWrite = undefined;
    checkpointer = startCheckpointer(path, database);
  };
  return {
    ...store,
    async close() {
      hooks.onWrite = undefined;
      await (await checkpointer)?.stop();
      await store.close();
    },
  };
}

const CHECKPOINT_INTERVAL_MS = 250;

/**
 * Moves WAL checkpoints to a worker thread: the request thread's connection stops checkpointing on commit
 * (which made every few hundredth write wait for a page copy and fsync), and the worker checkpoints
 * passively every 250 ms. Should the worker fail, the connection goes back to checkpointing itself.
 * Never rejects: a worker that cannot start leaves the connection checkpointing itself.
 */
async function startCheckpointer(path: string, database: BetterSqlite3.Database): Promise<{ stop(): Promise<void> }> {
  const selfCheckpoint = () => {
    if (database.open) database.pragma("wal_autocheckpoint = 1000");
  };
  let worker: Worker;
  try {
    worker = new Worker(new URL("./checkpoint-worker.mjs", import.meta.url), { workerData: { path, interval: CHECKPOINT_INTERVAL_MS } });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`checkpoint worker exited ${code}`)));
    });
  } catch {
    return { stop: async () => {} };
  }
  database.pragma("wal_autocheckpoint = 0");
  let stopping = false;
  worker.on("error", selfCheckpoint);
  worker.on("exit", () => {
    if (!stopping) selfCheckpoint();
  });
  worker.unref();
  return {
    stop: async () => {
      stopping = true;
      worker.ref(); // keeps the process alive until the final checkpoint is done
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      worker.postMessage("close");
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 5000).unref())]);
      selfCheckpoint();
    },
  };
}
