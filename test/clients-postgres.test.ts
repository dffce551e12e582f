import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startTestPostgres } from "./support/postgres.ts";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "packages", "host", "bin", "tessera.mjs");
const postgres = await startTestPostgres();
if (postgres) {
  // The bin runs the compiled, bundled CLI: bring it up to date with the sources (incremental).
  execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
  execFileSync(process.execPath, [join(ROOT, "packages", "host", "bundle.mjs")], { cwd: ROOT, stdio: "inherit" });
}

/** `tessera start` in its own process, resolved once it logs its listening line. */
function start(config: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "start", "--config", config, "--port", "0"], { env: { ...process.env, LOG_LEVEL: "warn" } });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d;
      const match = /^listening on (\S+)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!.replace("localhost", "127.0.0.1") });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before listening:\n${out}`));
    });
  });
}

/** Polls `check` every 100 ms until it holds, for at most `seconds`; the elapsed time is never asserted. */
async function eventually(seconds: number, check: () => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe("19 clients on two host processes sharing one PostgreSQL database", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  let dir: string;
  let a: { child: ChildProcess; url: string };
  let b: { child: ChildProcess; url: string };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-clients-pg-"));
    const config = join(dir, "tessera.config.json");
    writeFileSync(
      config,
      JSON.stringify({
        issuer: "http://localhost:5000",
        store: { kind: "postgres", url: await postgres!.createDatabase() },
        dataKey: randomBytes(32).toString("base64url"),
        admin: { role: "admin" },
        // The polls below fail on purpose until the change arrives; the failure throttle is not under test.
        clientAuthThrottling: false,
        clientCache: { ttl: 2 },
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"], secret: "api1-secret" }],
        clients: [{ client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" }],
      }),
    );
    a = await start(config);
    b = await start(config);
  });
  after(async () => {
    for (const server of [a, b]) {
      if (!server) continue;
      const closed = new Promise((done) => server.child.once("close", done));
      server.child.kill("SIGTERM");
      await closed;
    }
    await postgres?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const token = async (url: string, id: string, secret: string, scope?: string) => {
    const response = await fetch(`${url}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}` },
      body: new URLSearchParams({ grant_type: "client_credentials", ...(scope ? { scope } : {}) }).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  it("19 a client created on A works on B within seconds, and stops on both within seconds of its deletion", async () => {
    const admin = (await token(a.url, "admin-cli", "cli-secret")).body.access_token!;
    const adminApi = (url: string, method: string, path: string, body?: unknown) =>
      fetch(`${url}/admin/api${path}`, { method, headers: { authorization: `Bearer ${admin}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });

    // B looks the id up first, so its cache holds "unknown" when A creates the client.
    const id = `shared-${randomBytes(4).toString("hex")}`;
    assert.equal((await token(b.url, id, "guess")).status, 401);
    const created = await adminApi(a.url, "POST", "/clients", { client_id: id, grant_types: ["client_credentials"], scope: "api1.read" });
    assert.equal(created.status, 201);
    const secret = ((await created.json()) as { client_secret: string }).client_secret;
    assert.equal((await token(a.url, id, secret)).status, 200, "at once on the process that created it");
    assert.ok(await eventually(15, async () => (await token(b.url, id, secret)).status === 200), "B sees the new client within seconds");
    assert.equal((await (await adminApi(b.url, "GET", `/clients/${id}`)).json() as { source: string }).source, "store");

    // Rotation on B: the new secret works on A within seconds, the old one keeps working.
    const rotated = (await (await adminApi(b.url, "POST", `/clients/${id}/secret`)).json()) as { client_secret: string };
    assert.ok(await eventually(15, async () => (await token(a.url, id, rotated.client_secret)).status === 200), "A sees the rotated secret");
    assert.equal((await token(a.url, id, secret)).status, 200, "the old secret works until removed");

    const issued = (await token(b.url, id, rotated.client_secret, "api1.read")).body.access_token!;
    assert.equal((await adminApi(a.url, "DELETE", `/clients/${id}`)).status, 204);
    assert.notEqual((await token(a.url, id, secret)).status, 200, "at once on A");
    assert.ok(await eventually(15, async () => (await token(b.url, id, rotated.client_secret)).status === 401), "B refuses the deleted client within seconds");
    const introspection = await fetch(`${b.url}/connect/introspect`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("urn%3Aapi1:api1-secret").toString("base64")}` },
      body: new URLSearchParams({ token: issued }).toString(),
    });
    assert.equal(((await introspection.json()) as { active: boolean }).active, false, "its access token is no longer active on B");
  });
});
