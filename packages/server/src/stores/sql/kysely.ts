/**
 * Kysely's values, from its CommonJS build: the same code and types, but its ES module build is some 260
 * modules, which Node 20 loads about 40 ms slower and keeps about 6 MB more resident (measured on
 * `tessera start`). Types still come from "kysely" itself (`import type`).
 */
import { createRequire } from "node:module";
import type * as KyselyModule from "kysely";

const kysely = createRequire(import.meta.url)("kysely") as typeof KyselyModule;
export const { Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, sql } = kysely;
/** The query builder type (the class above is its value). */
export type Kysely<DB> = KyselyModule.Kysely<DB>;
