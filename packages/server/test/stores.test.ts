import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { createMemoryStore } from "../src/stores/memory/index.ts";
import { createSqliteStore } from "../src/stores/sql/sqlite.ts";
import { storeConformance } from "./store-conformance.ts";
import { userStoreConformance } from "./user-store-conformance.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeConformance("memory", async () => createMemoryStore());
storeConformance("sqlite", () => createSqliteStore(join(dir, `db-${n++}`, "tessera.db")));
userStoreConformance("memory", async () => createMemoryStore());
userStoreConformance("sqlite", () => createSqliteStore(join(dir, `db-${n++}`, "tessera.db")));

it("sqlite: migrations run once and data survives reopening", async () => {
  const path = join(dir, "reopen", "tessera.db");
  const first = await createSqliteStore(path);
  await first.grants.put({ key: "k", kind: "consent", clientId: "c", data: "{}", createdAt: 1, expiresAt: 2 });
  await first.close();
  const second = await createSqliteStore(path);
  assert.equal((await second.grants.get("k"))?.clientId, "c");
  await second.close();
});

it("sqlite: a worker thread checkpoints the WAL while the store is open, and truncates it on close", async () => {
  const { statSync } = await import("node:fs");
  const path = join(dir, "wal", "tessera.db");
  const store = await createSqliteStore(path);
  for (let i = 0; i < 300; i++) await store.grants.put({ key: `k${i}`, kind: "consent", clientId: "c", subject: "s", data: "x".repeat(200), createdAt: 1, expiresAt: 2 });
  const walAfterWrites = statSync(`${path}-wal`).size;
  // Far below the 1000-page autocheckpoint: only the worker can have copied these rows into the file.
  await new Promise((resolve) => setTimeout(resolve, 600));
  const databaseSize = statSync(path).size;
  assert.ok(databaseSize > 300 * 200, `the database file holds the rows after a background checkpoint (${databaseSize} bytes, WAL ${walAfterWrites})`);
  await store.close();
  assert.equal(statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0, 0);
  const reopened = await createSqliteStore(path);
  assert.equal((await reopened.grants.findAll({ subject: "s" }, 5000)).length, 300);
  await reopened.close();
});
