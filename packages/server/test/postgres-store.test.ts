import { after, describe, it } from "node:test";
import { startTestPostgres } from "../../../test/support/postgres.ts";
import { createPostgresStore } from "../src/stores/sql/postgres.ts";
import { storeConformance } from "./store-conformance.ts";

const postgres = await startTestPostgres();

describe("PostgreSQL store", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  after(() => postgres?.close());
  // The same suite as memory and SQLite, unchanged, each test on a fresh database.
  storeConformance("postgres", async () => createPostgresStore(await postgres!.createDatabase()));
  it("runs migrations once when several processes start at the same moment", async () => {
    const url = await postgres!.createDatabase();
    const stores = await Promise.all(Array.from({ length: 5 }, () => createPostgresStore(url)));
    await Promise.all(stores.map((s) => s.close()));
  });
});
