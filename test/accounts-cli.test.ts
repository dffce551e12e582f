import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestBrowser } from "@tessera/testing";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "packages", "host", "bin", "tessera.mjs");
// The bin runs the compiled CLI, bundled: bring both up to date with the sources first.
execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
execFileSync(process.execPath, [join(ROOT, "packages", "host", "bundle.mjs")], { cwd: ROOT, stdio: "inherit" });

function run(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...options.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function start(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "start", ...args], { env: { ...process.env, ...env } });
    let out = "";
    const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s:\n${out}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      const match = /^listening on (\S+)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, exited });
      }
    });
    child.stderr!.on("data", (d: Buffer) => (out += d));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before listening:\n${out}`));
    });
  });
}

/** Signs in on the running server's login page; the home page then tells who is signed in. */
async function login(url: string, username: string, password: string, browser = new TestBrowser()) {
  const form = await browser.get(`${url}/login`);
  const page = await browser.submitForm(form, { fields: { username, password } });
  return { browser, page, signedIn: page.query("#signed-in") !== null };
}

describe("20 accounts: tessera users", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-users-cli-"));
  const file = join(dir, "tessera.config.json");
  let server: Awaited<ReturnType<typeof start>>;
  const env = { TESSERA_DATA_KEY: randomBytes(32).toString("base64url") };
  const users = (args: string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}) => run(["users", ...args], { input, env: { ...env, ...extraEnv } });

  before(async () => {
    const port = await freePort();
    writeFileSync(
      file,
      JSON.stringify({
        issuer: `http://127.0.0.1:${port}`,
        port,
        store: { kind: "sqlite", path: "./data/tessera.db" },
        accounts: { passwordHashing: { memoryCost: 1024, timeCost: 1 } },
        users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice" } }],
        clients: [{ client_id: "web", client_secret: "web-secret", redirect_uris: ["http://127.0.0.1:9/cb"], scope: "openid profile" }],
      }),
    );
    server = await start(["--config", file], env);
  });
  after(async () => {
    server?.child.kill("SIGTERM");
    await server?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it("20 add and list: the running server signs the new user in without a restart", async () => {
    const added = await users(["add", "--username", "kim", "--email", "kim@example.com", "--name", "Kim Lee", "--role", "admin", "--config", file], "kim-password\n");
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^added kim \(sub [A-Za-z0-9_-]{22}\)$/m);
    const listed = await users(["list"], undefined, { TESSERA_CONFIG: file });
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trim().split("\n").map((l) => l.split("\t"));
    assert.deepEqual(lines.map((l) => [l[1], l[2], l[3], l[4], l[5]]), [
      ["alice", "", "active", "config", "Alice"],
      ["kim", "kim@example.com", "active", "store", "Kim Lee"],
    ]);
    const searched = await users(["list", "--query", "LEE", "--config", file]);
    assert.equal(searched.stdout.trim().split("\n").length, 1);
    assert.ok((await login(server.url, "kim", "kim-password")).signedIn);
    assert.ok(!(await login(server.url, "kim", "wrong-password")).signedIn);
  });

  it("20 disable ends the user's session on the running server and refuses sign-in; enable and set-password", async () => {
    const session = await login(server.url, "kim", "kim-password");
    assert.ok(session.signedIn);
    const disabled = await users(["disable", "kim", "--config", file]);
    assert.equal(disabled.code, 0, disabled.stderr);
    const home = await session.browser.get(`${server.url}/`);
    assert.equal(home.query("#signed-in"), null, "the cookie session ended at its next use");
    const refused = await login(server.url, "kim", "kim-password");
    assert.ok(!refused.signedIn);
    assert.equal(refused.page.text("#login-error"), "Invalid username or password.");
    assert.equal((await users(["enable", "kim", "--config", file])).code, 0);
    assert.ok((await login(server.url, "kim", "kim-password")).signedIn);
    assert.equal((await session.browser.get(`${server.url}/`)).query("#signed-in"), null, "the old session stays ended");
    const changed = await users(["set-password", "kim", "--config", file], "a-new-password\n");
    assert.equal(changed.code, 0, changed.stderr);
    assert.ok(!(await login(server.url, "kim", "kim-password")).signedIn);
    assert.ok((await login(server.url, "KIM", "a-new-password")).signedIn);
  });

  it("20 bad input: clashes, config users, unknown users, short or missing passwords, bad arguments exit 1", async () => {
    const cases: [string[], string | undefined, RegExp][] = [
      [["add", "--username", "KIM"], "password-123", /username is already in use/],
      [["add", "--username", "alice"], "password-123", /username is already in use/],
      [["add", "--username", "other", "--email", "KIM@example.com"], "password-123", /email is already in use/],
      [["add", "--username", "short"], "abc", /at least 8 characters/],
      [["add", "--username", "nopass"], "", /no password on stdin/],
      [["add", "--username", "bad name"], "password-123", /spaces, control or invisible characters/],
      [["add", "--username", "x", "--email", "nope"], "password-123", /valid email/],
      [["add"], "password-123", /needs --username/],
      [["disable", "nobody"], undefined, /no user nobody/],
      [["disable", "alice"], undefined, /config file/],
      [["set-password", "kim"], "", /no password on stdin/],
      [["disable"], undefined, /usage/],
      [["frobnicate"], undefined, /usage/],
      [["list", "--bogus"], undefined, /Unknown option/],
    ];
    for (const [args, input, pattern] of cases) {
      const result = await users([...args, "--config", file], input);
      assert.equal(result.code, 1, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, pattern, args.join(" "));
    }
    const missing = await users(["list", "--config", join(dir, "missing.json")]);
    assert.equal(missing.code, 1);
  });
});
