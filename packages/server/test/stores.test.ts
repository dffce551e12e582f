import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { createMemoryStore } from "../src/stores/memory/index.ts";
import { createSqliteStore } from "../src/stores/sql/sqlite.ts";
import { storeConformance } from "./store-conformance.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeConformance("memory", async () => createMemoryStore());
storeConformance("sqlite", () => createSqliteStore(join(dir, `db-${n++}`, "tessera.db")));

it("sqlite: migrations run once and data survives reopening", async () => {
  const path = join(dir, "reopen", "tessera.db");
  const first = await createSqliteStore(path);
  await first.grants.put({ key: "k", kind: "consent", clientId: "c", data: "{}", createdAt: 1, expiresAt: 2 });
  await first.close();
  const second = await createSqliteStore(path);
  assert.equal((await second.grants.get("k"))?.clientId, "c");
  await second.close();
});
