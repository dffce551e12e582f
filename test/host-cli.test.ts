import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { verify } from "@node-rs/argon2";
import { TestBrowser } from "@tessera/testing";
import { pkce } from "./support/fixtures.ts";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "packages", "host", "bin", "tessera.mjs");
// The bin runs the compiled CLI, bundled (dist/tessera.mjs): bring both up to date with the sources first
// (tsc -b is incremental, ~0.5 s; the bundle ~0.2 s).
execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
execFileSync(process.execPath, [join(ROOT, "packages", "host", "bundle.mjs")], { cwd: ROOT, stdio: "inherit" });

function run(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env } });
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

/** Starts `tessera start`, resolving once it logged its listening line. */
function start(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; output: () => string; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "start", ...args], { env: { ...process.env, ...env } });
    let out = "";
    const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d;
      const match = /^listening on (\S+)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, output: () => out, exited });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (out += d));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before listening:\n${out}`));
    });
  });
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-cli-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const minimalConfig = (port: number) => ({
  issuer: `http://127.0.0.1:${port}`,
  port,
  store: { kind: "sqlite", path: "./state/tessera.db" },
  users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice" } }],
  clients: [{ client_id: "spa", token_endpoint_auth_method: "none", redirect_uris: ["http://127.0.0.1/cb"], scope: "openid profile" }],
});

describe("tessera check", () => {
  it("accepts the repository's demo config", async () => {
    const result = await run(["check", "--config", join(import.meta.dirname, "..", "tessera.config.json")]);
    assert.equal(result.code, 0, result.stderr);
  });

  it("lists every problem with its JSON path and exits 1", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        issuer: "not a url",
        colour: "blue",
        keys: { algorithms: ["HS256"] },
        users: [{ sub: "1", username: "a" }],
        clients: [
          { client_id: "c", redirect_uris: ["https://ok.test/cb", "/relative"], scope: "openid nope", token_endpoint_auth_method: "client_secret_basic", extra: 1 },
        ],
      }),
    );
    const result = await run(["check", "--config", file]);
    assert.equal(result.code, 1);
    for (const path of ["(root): unknown key \"colour\"", "issuer:", "keys.algorithms[0]:", "clients[0]: unknown key \"extra\"", "clients[0].redirect_uris[1]:"]) {
      assert.ok(result.stderr.includes(`config error at ${path}`), `missing ${path} in:\n${result.stderr}`);
    }
  });

  it("reports semantic problems with their paths", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ issuer: "https://id.test", users: [{ sub: "1", username: "a" }], clients: [{ client_id: "c", redirect_uris: ["https://ok.test/cb"], scope: "openid nope", token_endpoint_auth_method: "client_secret_basic" }] }));
    const result = await run(["check", "--config", file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /config error at clients\[0\]\.scope: unknown scope nope/);
    assert.match(result.stderr, /config error at clients\[0\]\.client_secret: client_secret_basic needs a client_secret/);
    assert.match(result.stderr, /config error at users\[0\]: give exactly one of password and password_hash/);
  });

  it("accepts the contract's example config", async () => {
    const result = await run(["check", "--config", join(import.meta.dirname, "support", "contract-example.json")]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /warning/);
  });

  it("exits non-zero, saying why, when the PostgreSQL database is unreachable at start", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "pg.json"), JSON.stringify({ issuer: "https://id.test", port: 0, store: { kind: "postgres", url: "postgres://tessera@127.0.0.1:9/none" } }));
    const result = await run(["start", "--config", join(dir, "pg.json")], { env: { TESSERA_DATA_KEY: "x".repeat(43) } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot start: .*ECONNREFUSED|cannot start/);
  });

  it("rejects a file that is not JSON", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "x.json"), "{ nope");
    const result = await run(["check", "--config", join(dir, "x.json")]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /not valid JSON/);
  });
});

describe("tessera hash-password", () => {
  it("prints an argon2id hash of the password read on stdin", async () => {
    const result = await run(["hash-password"], { input: "correct horse\n" });
    assert.equal(result.code, 0, result.stderr);
    const hash = result.stdout.trim();
    assert.match(hash, /^\$argon2id\$/);
    assert.equal(await verify(hash, "correct horse"), true);
    assert.equal(await verify(hash, "correct horse\n"), false);
  });
});

describe("tessera start", () => {
  it("refuses to start with a bad config, naming the problem", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "c.json"), JSON.stringify({ issuer: "https://id.test", clients: [{ client_id: "x" }] }));
    const result = await run(["start", "--config", join(dir, "c.json")]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /clients\[0\]\.redirect_uris/);
  });

  it("serves, stops cleanly on SIGTERM, and keeps sessions and keys across a restart", async () => {
    const dir = tempDir();
    const port = await freePort();
    const file = join(dir, "tessera.config.json");
    writeFileSync(file, JSON.stringify(minimalConfig(port)));
    const first = await start(["--config", file], {});
    assert.equal(first.url, `http://localhost:${port}`);
    const issuer = `http://127.0.0.1:${port}`;
    const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    assert.equal(metadata.issuer, issuer);
    const jwks1 = await (await fetch(metadata.jwks_uri!)).json();

    // The data key was generated into the data folder, readable by the owner only.
    const keyFile = join(dir, "state", "data-key");
    assert.equal(Buffer.from(readFileSync(keyFile, "utf8").trim(), "base64url").length, 32);
    assert.equal(statSync(keyFile).mode & 0o077, 0);

    const browser = new TestBrowser();
    const stopAt = (u: URL) => u.href.startsWith("http://127.0.0.1/cb");
    const authorize = () => {
      const url = new URL(metadata.authorization_endpoint!);
      const { challenge } = pkce();
      url.search = new URLSearchParams({ client_id: "spa", redirect_uri: "http://127.0.0.1/cb", response_type: "code", scope: "openid", code_challenge: challenge, code_challenge_method: "S256", prompt: "none" }).toString();
      return url;
    };
    const before = await browser.get(authorize(), { stopAt });
    assert.equal(new URL(before.location!).searchParams.get("error"), "login_required");
    const loginUrl = new URL(metadata.authorization_endpoint!);
    loginUrl.search = authorize().search.replace("&prompt=none", "");
    const loginPage = await browser.get(loginUrl, { stopAt });
    const signedIn = await browser.submitForm(loginPage, { fields: { username: "alice", password: "alice" }, stopAt });
    assert.ok(new URL(signedIn.location!).searchParams.get("code"));

    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0);

    const second = await start(["--config", file], {});
    try {
      const jwks2 = await (await fetch(metadata.jwks_uri!)).json();
      assert.deepEqual(jwks2, jwks1);
      const after = await browser.get(authorize(), { stopAt });
      assert.ok(new URL(after.location!).searchParams.get("code"), "the session survived the restart");
    } finally {
      second.child.kill("SIGINT");
      assert.equal(await second.exited, 0);
    }
  });

  it("22.10 start-up: runs as one bundled module and loads Node's fetch internals only with the first request, which it answers", async () => {
    const dir = tempDir();
    const port = await freePort();
    const file = join(dir, "tessera.config.json");
    writeFileSync(file, JSON.stringify(minimalConfig(port)));
    // The probe records every module the ES module loader loads, and on SIGUSR2 writes Node's list of its
    // built-in modules loaded so far (Node's fetch internals are built-in: internal/deps/undici).
    const report = join(dir, "builtins.json");
    const modules = join(dir, "modules.txt");
    writeFileSync(join(dir, "hooks.mjs"), `import { appendFileSync } from "node:fs";\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(modules)}, url + "\\n"); return next(url, context); }\n`);
    const probe = join(dir, "probe.mjs");
    writeFileSync(
      probe,
      `import { writeFileSync } from "node:fs";\nimport { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n` +
        `process.on("SIGUSR2", () => writeFileSync(${JSON.stringify(report)}, JSON.stringify(process.moduleLoadList)));\n`,
    );
    const loaded = async (child: ChildProcess): Promise<string[]> => {
      rmSync(report, { force: true });
      child.kill("SIGUSR2");
      for (let i = 0; i < 200; i++) {
        try {
          return JSON.parse(readFileSync(report, "utf8")) as string[];
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
      throw new Error("no module report");
    };
    const child = spawn(process.execPath, ["--import", probe, BIN, "start", "--config", file], { env: { ...process.env, LOG_LEVEL: "silent" } });
    const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => {
          out += d;
          if (out.includes("listening on")) resolve();
        });
        void exited.then((code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const atStart = await loaded(child);
      assert.ok(atStart.includes("NativeModule http"), "the report lists built-in modules");
      const own = readFileSync(modules, "utf8").split("\n").filter((url) => url.startsWith(`file://${join(ROOT, "packages")}`));
      assert.deepEqual(own.map((url) => url.slice(`file://${ROOT}`.length)), ["/packages/host/bin/tessera.mjs", "/packages/host/dist/tessera.mjs"], "the bin and its bundle, no other module of Tessera's");
      assert.deepEqual(atStart.filter((name) => name.includes("undici")), [], "no fetch internals before the first request");
      // Requests that arrive together while the adapter loads are all answered, bodies included.
      const base = `http://127.0.0.1:${port}`;
      const [discovery, token, login] = await Promise.all([
        fetch(`${base}/.well-known/openid-configuration`),
        fetch(`${base}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=authorization_code&code=nope&client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier=" + "v".repeat(43) }),
        fetch(`${base}/login`),
      ]);
      assert.equal(discovery.status, 200);
      assert.equal(((await discovery.json()) as { issuer: string }).issuer, base);
      assert.equal(token.status, 400);
      assert.equal(((await token.json()) as { error: string }).error, "invalid_grant", "the form body reached the token endpoint");
      assert.equal(login.status, 200);
      assert.ok((await loaded(child)).some((name) => name.includes("undici")), "the fetch internals load with the first request");
    } finally {
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    }
  });

  it("takes PORT and TESSERA_ISSUER from the environment", async () => {
    const dir = tempDir();
    const port = await freePort();
    const file = join(dir, "tessera.config.json");
    writeFileSync(file, JSON.stringify({ ...minimalConfig(1), store: { kind: "memory" } }));
    const server = await start([], { TESSERA_CONFIG: file, PORT: String(port), TESSERA_ISSUER: `http://127.0.0.1:${port}/idp` });
    try {
      const metadata = (await (await fetch(`http://127.0.0.1:${port}/idp/.well-known/openid-configuration`)).json()) as Record<string, string>;
      assert.equal(metadata.issuer, `http://127.0.0.1:${port}/idp`);
      assert.equal(metadata.token_endpoint, `http://127.0.0.1:${port}/idp/connect/token`);
      const login = await fetch(`http://127.0.0.1:${port}/idp/login`);
      assert.equal(login.status, 200);
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });
});
