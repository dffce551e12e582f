import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** A PostgreSQL server for tests: a throwaway cluster, or `TESSERA_TEST_PG_URL`. */
export interface TestPostgres {
  /** A new empty database's URL. */
  createDatabase(): Promise<string>;
  /** Stops and starts the server (a throwaway cluster only). */
  restart(): void;
  stop(): void;
  start(): void;
  close(): Promise<void>;
}

function binDir(): string | undefined {
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) if (existsSync(`/usr/lib/postgresql/${version}/bin/initdb`)) return `/usr/lib/postgresql/${version}/bin`;
  const found = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).stdout.trim();
  return found ? found.replace(/\/initdb$/, "") : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Finds (installing with the project's script when missing) PostgreSQL and starts a cluster on a free port
 * under a temp dir, as the `postgres` user when running as root (PostgreSQL refuses root). Undefined (the
 * tests skip) only outside CI.
 */
export async function startTestPostgres(): Promise<TestPostgres | undefined> {
  const admin = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  };
  let counter = 0;
  if (process.env.TESSERA_TEST_PG_URL) {
    const base = process.env.TESSERA_TEST_PG_URL;
    return {
      async createDatabase() {
        const name = `tessera_test_${process.pid}_${Date.now()}_${counter++}`;
        const client = await admin(base);
        await client.query(`create database ${name}`);
        await client.end();
        const url = new URL(base);
        url.pathname = `/${name}`;
        return url.toString();
      },
      restart() {
        throw new Error("restart needs the throwaway cluster");
      },
      stop() {},
      start() {},
      async close() {},
    };
  }
  let bin = binDir();
  if (!bin) {
    spawnSync("bash", [join(import.meta.dirname, "..", "..", "scripts", "install-system-deps.sh")], { stdio: "inherit" });
    bin = binDir();
  }
  if (!bin) {
    if (process.env.CI === "true") throw new Error("PostgreSQL is missing and scripts/install-system-deps.sh could not install it");
    return undefined;
  }
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "tessera-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const run = (tool: string, args: string[]) => {
    const command = join(bin!, tool);
    if (asRoot) execFileSync("runuser", ["-u", "postgres", "--", command, ...args], { stdio: "pipe" });
    else execFileSync(command, args, { stdio: "pipe" });
  };
  run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
  const start = () => run("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  const stop = () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
  start();
  const base = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    async createDatabase() {
      const name = `tessera_test_${counter++}`;
      const client = await admin(base);
      await client.query(`create database ${name}`);
      await client.end();
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    restart() {
      stop();
      start();
    },
    stop,
    start,
    async close() {
      try {
        stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
