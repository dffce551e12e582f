/**
 * Issue 22 (CONTRACT §8): the packages as published. `npm pack` each library, install the tarballs into a
 * project outside this repository, then use them as a stranger would: plain Node ESM (no TypeScript loader),
 * a TypeScript consumer type-checked with `moduleResolution: nodenext`, and the installed `tessera` bin.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const PACKAGES = ["protocol", "server", "api", "client", "host", "testing"];
const dir = mkdtempSync(join(tmpdir(), "tessera-packages-"));
const project = join(dir, "consumer");
/** No TypeScript hook and no repository on the module path: what a stranger's Node runs. */
const env = { ...process.env, NODE_OPTIONS: "", NODE_PATH: "" };

/**
 * better-sqlite3 compiles from source on this machine (~1 min). Its install script (prebuild-install) first
 * looks for a prebuilt binary in `npm_config_better_sqlite3_local_prebuilds`: the repository's own compiled binary, packed
 * the way prebuild-install names it, is reused there (same Node ABI and platform), and the build is skipped.
 */
async function localPrebuild(): Promise<string | undefined> {
  const module = join(ROOT, "node_modules", "better-sqlite3");
  if (!existsSync(join(module, "build", "Release", "better_sqlite3.node"))) return undefined;
  const { version } = JSON.parse(readFileSync(join(module, "package.json"), "utf8")) as { version: string };
  const prebuilds = join(dir, "prebuilds");
  mkdirSync(prebuilds);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run("tar", ["-czf", join(prebuilds, name), "-C", module, "build/Release/better_sqlite3.node"]);
  return prebuilds;
}

before(async () => {
  // The tarballs hold dist/: build first (incremental; a no-op when npm test has just built).
  await run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.build.json"], { cwd: ROOT });
  await run(process.execPath, [join(ROOT, "packages", "host", "bundle.mjs")], { cwd: ROOT });
  await run("npm", ["pack", "--pack-destination", dir, ...PACKAGES.flatMap((name) => ["-w", `@tessera/${name}`])], { cwd: ROOT, env });
  mkdirSync(project);
  const tarballs = Object.fromEntries(PACKAGES.map((name) => [`@tessera/${name}`, `file:../tessera-${name}-0.1.0.tgz`]));
  const rootManifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { ...tarballs, "@types/node": rootManifest.devDependencies["@types/node"] } }, null, 2));
  const prebuilds = await localPrebuild();
  const started = performance.now();
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: project,
    env: { ...env, ...(prebuilds ? { npm_config_better_sqlite3_local_prebuilds: prebuilds } : {}) },
    timeout: 600_000,
  });
  process.stdout.write(`# npm install of the tarballs outside the repository: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("22.1 packages: every tarball holds compiled JavaScript, declarations and source maps, no tests and no build info", () => {
  for (const name of PACKAGES) {
    const installed = join(project, "node_modules", "@tessera", name);
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { exports: Record<string, Record<string, string>> };
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      for (const condition of ["types", "default"]) assert.ok(existsSync(join(installed, target[condition]!)), `${name} ${subpath} ${condition}: ${target[condition]} is in the tarball`);
      assert.ok(existsSync(join(installed, `${target.default!}.map`)), `${name} ${subpath}: source map`);
    }
    const files = readdirSync(installed, { recursive: true }) as string[];
    assert.ok(!files.some((file) => file.includes(".test.") || file.endsWith(".tsbuildinfo")), `${name}: no tests, no .tsbuildinfo`);
  }
});

test("22.2 packages: plain Node ESM imports @tessera/server, api, client and testing by name and serves discovery", async () => {
  writeFileSync(
    join(project, "use.mjs"),
    `import { createMemoryStore, createProvider } from "@tessera/server";
import { createTokenValidator } from "@tessera/api";
import { tokenAuth } from "@tessera/api/hono";
import { createClientCredentialsFetch } from "@tessera/client";
import { TestBrowser, createTestHost } from "@tessera/testing";
import { ProtocolError } from "@tessera/protocol";

const provider = createProvider({ issuer: "https://idp.example", store: createMemoryStore(), dataKey: Buffer.alloc(32, 7).toString("base64url"), clients: [] });
const discovery = await (await provider.fetch(new Request("https://idp.example/.well-known/openid-configuration"))).json();
await provider.close();
const host = await createTestHost();
const hostDiscovery = await (await host.fetch(new Request(host.issuer + "/.well-known/openid-configuration"))).json();
await host.close();
const validator = createTokenValidator({ issuer: "https://idp.example", audience: "urn:api" });
const loaders = process.execArgv.concat(process.env.NODE_OPTIONS ?? "").filter((arg) => /tsx|ts-node|--import|--loader/.test(arg));
console.log(JSON.stringify({
  issuer: discovery.issuer,
  hostIssuer: hostDiscovery.issuer,
  validator: typeof validator.validate,
  middleware: typeof tokenAuth,
  client: typeof createClientCredentialsFetch,
  browser: typeof TestBrowser,
  error: new ProtocolError("invalid_request").code,
  loaders,
}));
`,
  );
  const { stdout } = await run(process.execPath, ["use.mjs"], { cwd: project, env });
  const result = JSON.parse(stdout) as Record<string, unknown>;
  assert.deepEqual(result, { issuer: "https://idp.example", hostIssuer: "https://idp.test", validator: "function", middleware: "function", client: "function", browser: "function", error: "invalid_request", loaders: [] });
});

test("22.3 packages: a TypeScript consumer type-checks against the installed declarations (moduleResolution nodenext)", async () => {
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] }, files: ["consumer.ts"] }),
  );
  writeFileSync(
    join(project, "consumer.ts"),
    `import { createMemoryStore, createProvider, type Provider } from "@tessera/server";
import { createTokenValidator, type ValidationResult } from "@tessera/api";
import { tokenAuth } from "@tessera/api/hono";
import { createClientCredentialsFetch } from "@tessera/client";
import { createTestHost, type TestHost } from "@tessera/testing";
import { parseConfig, type TesseraConfig } from "@tessera/host";
import { ProtocolError } from "@tessera/protocol";

const provider: Provider = createProvider({ issuer: "https://idp.example", store: createMemoryStore(), dataKey: "k".repeat(43), clients: [] });
const response: Promise<Response> = provider.fetch(new Request("https://idp.example/.well-known/openid-configuration"));
const validator = createTokenValidator({ issuer: "https://idp.example", audience: "urn:api" });
const result: Promise<ValidationResult> = validator.validate(new Request("https://api.example/"));
const host: Promise<TestHost> = createTestHost();
const config: TesseraConfig = parseConfig({ issuer: "https://idp.example", clients: [] });
const error: string = new ProtocolError("invalid_request").code;
void [response, result, host, config, error, tokenAuth, createClientCredentialsFetch];
// A wrong call must fail the check, or this test proves nothing.
// @ts-expect-error issuer is required
createTokenValidator({ audience: "urn:api" });
`,
  );
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const checked = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: project, env }).then(
    () => "",
    (error: { stdout: string }) => error.stdout,
  );
  assert.equal(checked, "", "tsc reports no errors");
});

test("22.4 packages: the installed tessera bin checks a config, with no TypeScript tooling installed", async () => {
  assert.ok(!existsSync(join(project, "node_modules", "tsx")), "tsx is not installed with the packages");
  writeFileSync(join(project, "tessera.config.json"), JSON.stringify({ issuer: "http://localhost:5000", store: { kind: "sqlite", path: "./data/t.db" }, clients: [{ client_id: "web", client_secret: "s", redirect_uris: ["http://localhost:5002/callback"], grant_types: ["authorization_code"] }] }));
  const bin = join(project, "node_modules", ".bin", "tessera");
  const { stdout } = await run(bin, ["check", "--config", "tessera.config.json"], { cwd: project, env });
  assert.equal(stdout.trim(), "tessera.config.json: OK");
  writeFileSync(join(project, "bad.json"), JSON.stringify({ issuer: "https://idp.example", clients: "web" }));
  const failed = await run(bin, ["check", "--config", "bad.json"], { cwd: project, env }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(failed?.code, 1);
  assert.match(failed!.stderr, /config error at clients/);
});

test("22.5 start-up: the installed tessera start on SQLite loads no pg, argon2, undici, node:https or TypeScript loader", async () => {
  // Records every module the ES module loader loads (CommonJS packages reached by import() included).
  writeFileSync(join(project, "record-hooks.mjs"), `import { appendFileSync } from "node:fs";\nexport async function load(url, context, next) { appendFileSync(process.env.RECORD_FILE, url + "\\n"); return next(url, context); }\n`);
  writeFileSync(join(project, "record.mjs"), `import { register } from "node:module";\nregister("./record-hooks.mjs", import.meta.url);\n`);
  writeFileSync(join(project, "start.json"), JSON.stringify({ issuer: "http://127.0.0.1:5000", store: { kind: "sqlite", path: "./start-data/t.db" }, users: [{ sub: "alice", username: "alice", password: "alice" }], clients: [] }));
  const record = join(project, "loaded.txt");
  const bin = join(project, "node_modules", "@tessera", "host", "bin", "tessera.mjs");
  const child = execFile(process.execPath, ["--import", "./record.mjs", bin, "start", "--config", "start.json", "--port", "0"], { cwd: project, env: { ...env, RECORD_FILE: record, LOG_LEVEL: "silent" } });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d;
        if (out.includes("listening on")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`tessera start exited ${code}: ${out}`)));
    });
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  const loaded = readFileSync(record, "utf8").split("\n");
  assert.ok(loaded.some((url) => url.includes("/node_modules/better-sqlite3/")), "the recorder sees the SQLite driver load");
  assert.ok(loaded.some((url) => url.includes("/node_modules/@tessera/host/dist/")), "the compiled host runs");
  for (const lazy of [/\/node_modules\/pg\//, /\/node_modules\/@node-rs\/argon2/, /\/node_modules\/undici\//, /^node:https$/, /tsx/, /\/src\/.*\.tsx?$/]) {
    assert.deepEqual(loaded.filter((url) => lazy.test(url)), [], `not loaded at start: ${lazy}`);
  }
});
