import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { clientIdMetadataDocumentUrl } from "../packages/server/src/clients/metadata-document.ts";
import { ConfigError, parseConfig } from "@tessera/host";
import { createTestHost } from "@tessera/testing";
import { Flow, REDIRECT, RP, baseConfig } from "./support/fixtures.ts";
import { makePki, type TestPki } from "./support/certs.ts";
import { startTestPostgres } from "./support/postgres.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

/** An https server on 127.0.0.1 (certificate from the test CA) answering each path as `routes` says; counts hits. */
class DocumentServer {
  readonly hits = new Map<string, number>();
  readonly routes = new Map<string, { status?: number; headers?: Record<string, string>; body: string }>();
  /** While set, requests under /slow/ wait for it. */
  hold: Promise<void> | undefined;
  private constructor(
    private readonly server: Server,
    readonly base: string,
  ) {}

  static async start(pki: TestPki): Promise<DocumentServer> {
    let self: DocumentServer | undefined;
    const server = createServer({ cert: pki.server.cert, key: pki.server.key }, (req, res) => {
      const path = new URL(req.url ?? "/", "https://x").pathname;
      self!.hits.set(path, (self!.hits.get(path) ?? 0) + 1);
      if (path.startsWith("/slow/") && self!.hold) {
        void self!.hold.then(() => res.writeHead(404).end());
        return;
      }
      const route = self!.routes.get(path);
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(route.status ?? 200, { "content-type": "application/json", ...route.headers });
      res.end(route.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self = new DocumentServer(server, `https://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** Serves a client document at `path` (its client_id the URL unless overridden) and returns the URL. */
  client(path: string, document: Record<string, unknown> = {}, headers: Record<string, string> = {}): string {
    const url = this.base + path;
    this.routes.set(path, { headers, body: JSON.stringify({ client_id: url, client_name: "Demo Tool", redirect_uris: [REDIRECT], scope: "openid profile api1.read", token_endpoint_auth_method: "none", ...document }) });
    return url;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe("19 Client ID Metadata Documents", () => {
  let pki: TestPki;
  let docs: DocumentServer;
  let flow: Flow;
  /** Why documents were refused (the provider's warnings), newest last. */
  const reasons: string[] = [];
  const logger = { info() {}, error() {}, warn: (obj: object) => void reasons.push(String((obj as { reason?: unknown }).reason)) };
  // An operator may allow API scopes to metadata-document clients (only identity scopes by default).
  const config = () => ({ ...baseConfig(), outbound: { allowLoopback: true, ca: pki.paths.ca }, clientIdMetadataDocuments: { enabled: true, allowedScopes: ["openid", "profile", "email", "offline_access", "api1.read"] } });

  before(async () => {
    pki = makePki();
    docs = await DocumentServer.start(pki);
    flow = await Flow.create(config(), undefined, { logger });
  });
  after(async () => {
    await flow.close();
    await docs.close();
    pki.cleanup();
  });

  /** Opens the authorization request; an unknown or refused client shows the error page (never redirects). */
  async function refused(clientId: string, params: Record<string, string> = {}, on = flow, why?: RegExp) {
    const seen = reasons.length;
    const request = await on.authorizeUrl({ client_id: clientId, scope: "openid", ...params });
    const page = await on.go(request.url);
    assert.equal(page.status, 400, page.body.slice(0, 300));
    assert.equal(page.location, undefined, "no redirect to the client");
    if (why) assert.match(reasons.slice(seen).join(" | "), why);
    return page;
  }

  it("19 CIMD: discovery says client_id_metadata_document_supported", async () => {
    assert.equal((await flow.metadata()).client_id_metadata_document_supported, true);
    const off = await Flow.create(baseConfig());
    try {
      assert.equal((await off.metadata()).client_id_metadata_document_supported, undefined);
    } finally {
      await off.close();
    }
  });

  it("19 CIMD: a metadata-document client signs in with code + PKCE, and consent shows its host and path", async () => {
    const clientId = docs.client("/tools/demo.json");
    const host = new URL(clientId).host + "/tools/demo.json";
    const request = await flow.authorizeUrl({ client_id: clientId, scope: "openid profile api1.read" });
    const login = await flow.go(request.url);
    assert.ok(login.query("input[name=password]"), login.body.slice(0, 300));
    assert.match(login.text(), new RegExp(`Demo Tool \\(${host.replace(/\./g, "\\.")}\\)`));
    const consent = await flow.login(login);
    assert.ok(consent.query("button[name=decision][value=allow]"), "consent is asked: the client is not pre-trusted");
    assert.match(consent.text(), new RegExp(`Demo Tool \\(${host.replace(/\./g, "\\.")}\\) is asking for`));
    const back = await flow.browser.submitForm(consent, { button: "button[name=decision][value=allow]", stopAt: (u) => u.origin === RP });
    const code = Flow.response(back).get("code")!;
    const tokenResponse = await flow.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: request.verifier, client_id: clientId });
    assert.equal(tokenResponse.status, 200);
    const tokens = (await tokenResponse.json()) as { access_token: string; id_token: string };
    const claims = await flow.host.provider.validateAccessToken(tokens.access_token);
    assert.equal(claims?.client_id, clientId);
    assert.equal(JSON.parse(Buffer.from(tokens.id_token.split(".")[1]!, "base64url").toString()).aud, clientId);
    assert.equal(docs.hits.get("/tools/demo.json"), 1, "one fetch served the whole flow (cached)");
  });

  it("19 CIMD: a private_key_jwt document client authenticates with keys from its jwks_uri", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    docs.routes.set("/keys/tool.json", { body: JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "tool", alg: "ES256" }] }) });
    const clientId = docs.client("/tools/signed.json", { token_endpoint_auth_method: "private_key_jwt", jwks_uri: `${docs.base}/keys/tool.json`, client_name: "Signed Tool" });
    const request = await flow.authorizeUrl({ client_id: clientId, scope: "openid profile" });
    let page = await flow.go(request.url);
    if (page.query("input[name=password]")) page = await flow.login(page);
    assert.match(page.text(), /Signed Tool \(127\.0\.0\.1:\d+\/tools\/signed\.json\) is asking for/);
    const back = await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]", stopAt: (u) => u.origin === RP });
    const code = Flow.response(back).get("code")!;
    const assertion = (key = pair.privateKey) => new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: "ES256", kid: "tool" }).setIssuer(clientId).setSubject(clientId).setAudience(flow.host.issuer).setIssuedAt().setExpirationTime("1m").sign(key);
    const form = { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: request.verifier, client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" };
    const wrongKey = await flow.token({ ...form, client_assertion: await assertion((await generateKeyPair("ES256")).privateKey) });
    assert.equal(wrongKey.status, 401);
    const response = await flow.token({ ...form, client_assertion: await assertion() });
    assert.equal(response.status, 200, await response.clone().text());
    // Without an assertion a private_key_jwt client is not authenticated.
    const none = await flow.token({ grant_type: "refresh_token", refresh_token: "x", client_id: clientId });
    assert.equal(none.status, 401);
  });

  it("19 CIMD: the token endpoint does not know a client whose document is refused", async () => {
    const clientId = docs.client("/tools/token-mismatch.json", { client_id: "https://elsewhere.example/tool.json" });
    const response = await flow.token({ grant_type: "authorization_code", code: "x", redirect_uri: REDIRECT, code_verifier: "x".repeat(43), client_id: clientId });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error: string }).error, "invalid_client");
  });

  it("19 CIMD: PKCE is required even when the document says otherwise", async () => {
    const clientId = docs.client("/tools/nopkce.json", { require_pkce: false });
    const request = await flow.authorizeUrl({ client_id: clientId, scope: "openid", code_challenge: undefined, code_challenge_method: undefined });
    const page = await flow.go(request.url);
    // Shown on the error page: the redirect URI is not on the client_id URL's origin.
    assert.equal(page.status, 400);
    assert.equal(page.location, undefined);
    assert.match(page.text(), /invalid_request.*code_challenge is required/s);
  });

  it("19 CIMD: a document whose client_id differs from its URL is refused", async () => {
    const clientId = docs.client("/tools/mismatch.json", { client_id: `${docs.base}/tools/other.json` });
    await refused(clientId, {}, flow, /client_id differs/);
    // A trailing-slash or case variant is a different string: refused too.
    docs.client("/tools/Case.json", { client_id: `${docs.base}/tools/case.json` });
    await refused(`${docs.base}/tools/Case.json`, {}, flow, /client_id differs/);
  });

  it("19 CIMD: a redirect_uri the document does not list is refused", async () => {
    const clientId = docs.client("/tools/redirects.json", { redirect_uris: [`${RP}/callback`] });
    await refused(clientId, { redirect_uri: REDIRECT });
    await refused(clientId, { redirect_uri: `${RP}/callback/extra` });
  });

  it("19 CIMD: an unreachable document is refused", async () => {
    const closed = await DocumentServer.start(pki);
    const url = `${closed.base}/tools/gone.json`;
    await closed.close();
    await refused(url, {}, flow, /could not be fetched \(ECONNREFUSED\)/);
    await refused(`${docs.base}/tools/missing.json`, {}, flow, /HTTP 404/);
  });

  it("19 CIMD: an oversized document is refused", async () => {
    const clientId = docs.client("/tools/big.json", { client_name: "x".repeat(6000) });
    await refused(clientId, {}, flow, /too large/);
    // Without content-length too (chunked): the body is cut at the cap.
    docs.routes.set("/tools/chunked.json", { headers: { "transfer-encoding": "chunked" }, body: JSON.stringify({ client_id: `${docs.base}/tools/chunked.json`, redirect_uris: [REDIRECT], client_name: "y".repeat(6000) }) });
    await refused(`${docs.base}/tools/chunked.json`, {}, flow, /too large/);
  });

  it("19 CIMD: a document that is not application/json, not JSON, or a redirect is refused", async () => {
    await refused(docs.client("/tools/html.json", {}, { "content-type": "text/html" }), {}, flow, /not application\/json/);
    const notJson = `${docs.base}/tools/broken.json`;
    docs.routes.set("/tools/broken.json", { body: "{ not json" });
    await refused(notJson, {}, flow, /not valid JSON/);
    const moved = `${docs.base}/tools/moved.json`;
    docs.client("/tools/target.json");
    docs.routes.set("/tools/moved.json", { status: 302, headers: { location: `${docs.base}/tools/target.json` }, body: "" });
    await refused(moved, {}, flow, /redirects are not followed/);
    assert.equal(docs.hits.get("/tools/target.json"), undefined, "the redirect is not followed");
  });

  it("19 CIMD: shared secrets and confidential methods are refused", async () => {
    await refused(docs.client("/tools/secret.json", { client_secret: "s3cret" }), {}, flow, /client_secret/);
    await refused(docs.client("/tools/basic.json", { token_endpoint_auth_method: "client_secret_basic" }), {}, flow, /client_secret_basic is not allowed/);
    await refused(docs.client("/tools/jwt.json", { token_endpoint_auth_method: "client_secret_jwt" }), {}, flow, /client_secret_jwt is not allowed/);
    await refused(docs.client("/tools/symmetric.json", { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }), {}, flow, /RSA, EC or OKP/);
    await refused(docs.client("/tools/nokeys.json", { token_endpoint_auth_method: "private_key_jwt" }), {}, flow, /jwks/);
    await refused(docs.client("/tools/implicit.json", { response_types: ["token"] }), {}, flow, /response_types/);
    await refused(docs.client("/tools/noredirect.json", { redirect_uris: [] }), {}, flow, /no redirect_uris/);
  });

  it("19 CIMD: client_id URLs must follow the draft's rules", async () => {
    for (const bad of ["http://example.com/client", "https://example.com", "https://example.com/", "https://example.com/a#f", "https://user:pw@example.com/a", "https://example.com/a/../b", "https://example.com/a/./b", "https://EXAMPLE.com/a", `https://example.com/${"a".repeat(200)}`]) {
      assert.equal(clientIdMetadataDocumentUrl(bad), undefined, bad);
    }
    assert.equal(clientIdMetadataDocumentUrl("https://example.com/client.json")?.host, "example.com");
    assert.equal(clientIdMetadataDocumentUrl("https://example.com:8443/c?v=1")?.host, "example.com:8443");
  });

  it("19 CIMD: a private-address URL is refused by the outbound policy and never fetched", async () => {
    const strict = await Flow.create({ ...config(), outbound: { allowLoopback: false, ca: pki.paths.ca } }, undefined, { logger });
    try {
      const clientId = docs.client("/tools/private.json");
      await refused(clientId, {}, strict, /may not be reached by outbound requests/);
      assert.equal(docs.hits.get("/tools/private.json"), undefined);
      await refused("https://10.1.2.3/tools/client.json", {}, strict, /may not be reached/);
      await refused("https://[::1]/tools/client.json", {}, strict, /may not be reached/);
      // A name that resolves to loopback is refused where the connection is made.
      await refused(`https://localhost:${new URL(docs.base).port}/tools/private.json`, {}, strict, /resolves to an address outbound requests may not reach/);
    } finally {
      await strict.close();
    }
  });

  it("19 CIMD: when disabled, an https client_id is unknown and nothing is fetched", async () => {
    const off = await Flow.create({ ...baseConfig(), outbound: { allowLoopback: true, ca: pki.paths.ca } });
    try {
      const clientId = docs.client("/tools/off.json");
      await refused(clientId, {}, off);
      assert.equal(docs.hits.get("/tools/off.json"), undefined);
    } finally {
      await off.close();
    }
  });

  it("19 CIMD: fetches are cached within bounds (Cache-Control, minimum and maximum TTL, failures briefly)", async () => {
    let now = Date.now();
    const cached = await Flow.create({ ...config(), clientIdMetadataDocuments: { enabled: true, minCacheTtl: 60, maxCacheTtl: 600, failureCacheTtl: 10, maxCacheEntries: 2 } }, () => now);
    const fetches = (path: string) => docs.hits.get(path) ?? 0;
    const look = async (clientId: string) => {
      const page = await cached.go((await cached.authorizeUrl({ client_id: clientId, scope: "openid" })).url);
      return page.status;
    };
    try {
      // max-age=0 still counts as the 60 s minimum; many lookups, one fetch.
      const short = docs.client("/cache/short.json", {}, { "cache-control": "no-store" });
      for (let i = 0; i < 5; i++) assert.notEqual(await look(short), 400);
      assert.equal(fetches("/cache/short.json"), 1);
      now += 61_000;
      await look(short);
      assert.equal(fetches("/cache/short.json"), 2, "fetched again after the minimum TTL");
      // max-age beyond the maximum is cut to 600 s.
      const long = docs.client("/cache/long.json", {}, { "cache-control": "public, max-age=31536000" });
      await look(long);
      now += 599_000;
      await look(long);
      assert.equal(fetches("/cache/long.json"), 1);
      now += 2_000;
      await look(long);
      assert.equal(fetches("/cache/long.json"), 2, "fetched again after the maximum TTL");
      // A failure is remembered for failureCacheTtl only.
      for (let i = 0; i < 3; i++) assert.equal(await look(`${docs.base}/cache/missing.json`), 400);
      assert.equal(fetches("/cache/missing.json"), 1);
      now += 11_000;
      await look(`${docs.base}/cache/missing.json`);
      assert.equal(fetches("/cache/missing.json"), 2);
      // At most two documents (failures are kept apart): the least recently used one is dropped and fetched again.
      await look(docs.client("/cache/third.json"));
      await look(docs.client("/cache/fourth.json"));
      await look(long);
      assert.equal(fetches("/cache/long.json"), 3, "evicted by the entry bound");
      // Concurrent lookups of a new URL share one fetch.
      const burst = docs.client("/cache/burst.json");
      await Promise.all(Array.from({ length: 5 }, () => look(burst)));
      assert.equal(fetches("/cache/burst.json"), 1);
    } finally {
      await cached.close();
    }
  });

  it("19 CIMD: a config client with an https client_id is never fetched", async () => {
    const clientId = `${docs.base}/tools/configured.json`;
    const configured = await Flow.create({ ...config(), clients: [{ client_id: clientId, redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", scope: "openid" }] });
    try {
      const page = await configured.go((await configured.authorizeUrl({ client_id: clientId, scope: "openid" })).url);
      assert.ok(page.query("input[name=password]"));
      assert.equal(docs.hits.get("/tools/configured.json"), undefined);
    } finally {
      await configured.close();
    }
  });

  it("19 CIMD: the host config takes clientIdMetadataDocuments and outbound.ca, and refuses what does not fit", async () => {
    const base = { issuer: "https://id.example.com", store: { kind: "memory" } };
    assert.deepEqual(parseConfig({ ...base, clientIdMetadataDocuments: { enabled: true, maxCacheEntries: 10 } }).clientIdMetadataDocuments, { enabled: true, maxCacheEntries: 10 });
    for (const bad of [{ enable: true }, { enabled: "yes" }, { minCacheTtl: 100, maxCacheTtl: 10 }, { maxResponseBytes: 10 }]) {
      assert.throws(() => parseConfig({ ...base, clientIdMetadataDocuments: bad }), ConfigError, JSON.stringify(bad));
    }
    await assert.rejects(createTestHost({ outbound: { ca: "/nonexistent/ca.pem" } }), /outbound\.ca/);
  });

  it("19 CIMD: the host trusts NODE_EXTRA_CA_CERTS for documents (no outbound.ca)", async () => {
    const clientId = docs.client("/tools/extra-ca.json");
    const file = join(pki.dir, "extra-ca.json");
    writeFileSync(file, JSON.stringify({ issuer: "http://127.0.0.1:5999", store: { kind: "memory" }, outbound: { allowLoopback: true }, clientIdMetadataDocuments: { enabled: true } }));
    const run = async (env: Record<string, string>) => {
      const script = "import { main } from './packages/host/src/cli.ts'; process.exitCode = await main(process.argv.slice(1));";
      const child = spawn(process.execPath, ["--conditions=@tessera/source", "--import", "tsx", "--input-type=module", "-e", script, "start", "--config", file, "--port", "0"], { cwd: join(import.meta.dirname, ".."), env: { ...process.env, LOG_LEVEL: "silent", ...env } });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = "";
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            const match = /^listening on (\S+)$/m.exec(out);
            if (match) resolve(match[1]!);
          });
          child.once("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
        });
        const authorize = new URL("/connect/authorize", url);
        for (const [k, v] of Object.entries({ client_id: clientId, redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" })) authorize.searchParams.set(k, v);
        return await fetch(authorize, { redirect: "manual" });
      } finally {
        child.kill("SIGTERM");
      }
    };
    const trusted = await run({ NODE_EXTRA_CA_CERTS: pki.paths.ca });
    assert.equal(trusted.status, 302, "on to the login page");
    assert.match(trusted.headers.get("location") ?? "", /\/login\?returnUrl=/);
    const untrusted = await run({});
    assert.equal(untrusted.status, 400, "the document's certificate is not trusted");
  });

  it("19 CIMD: at most maxConcurrentFetches documents are fetched at once", async () => {
    const capped = await Flow.create({ ...config(), clientIdMetadataDocuments: { enabled: true, maxConcurrentFetches: 3, maxConcurrentFetchesPerHost: 10 } }, undefined, { logger });
    let release!: () => void;
    docs.hold = new Promise((resolve) => (release = resolve));
    try {
      const urls = Array.from({ length: 5 }, (_, i) => `${docs.base}/slow/${i}.json`);
      const seen = reasons.length;
      const lookups = urls.map((url) => capped.host.fetch(new Request(`${capped.host.issuer}/connect/authorize?client_id=${encodeURIComponent(url)}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code`)));
      // The lookups past the cap are refused at once, without a fetch; the others wait for the server.
      while (reasons.slice(seen).filter((r) => r === "too many document fetches in flight").length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      release();
      const statuses = (await Promise.all(lookups)).map((r) => r.status);
      assert.deepEqual(statuses, [400, 400, 400, 400, 400]);
      assert.equal(urls.filter((url) => docs.hits.has(new URL(url).pathname)).length, 3);
    } finally {
      release();
      docs.hold = undefined;
      await capped.close();
    }
  });


  it("19 CIMD: a client with a 200-character URL signs in, and is asked for consent again (never remembered), on every store", async () => {
    const postgres = await startTestPostgres();
    const dir = mkdtempSync(join(tmpdir(), "tessera-cimd-"));
    const stores: [string, TestHostStore][] = [["memory", { kind: "memory" }], ["sqlite", { kind: "sqlite", path: join(dir, "cimd.db") }]];
    if (process.env.CI) assert.ok(postgres, "PostgreSQL runs in CI");
    if (postgres) stores.push(["postgres", { kind: "postgres", url: await postgres.createDatabase() }]);
    try {
      const path = "/long/" + "x".repeat(200 - docs.base.length - "/long/".length - ".json".length) + ".json";
      const clientId = docs.client(path);
      assert.equal(clientId.length, 200);
      for (const [name, store] of stores) {
        const stored = await Flow.create({ ...config(), store });
        try {
          const first = await stored.authorizeUrl({ client_id: clientId, scope: "openid profile" });
          const consent = await stored.login(await stored.go(first.url));
          assert.ok(consent.query("button[name=decision][value=allow]"), `${name}: consent asked`);
          const code = Flow.response(await stored.browser.submitForm(consent, { button: "button[name=decision][value=allow]", stopAt: (u) => u.origin === RP })).get("code")!;
          const tokens = await stored.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: first.verifier, client_id: clientId });
          assert.equal(tokens.status, 200, `${name}: tokens`);
          const again = await stored.authorizeUrl({ client_id: clientId, scope: "openid profile" });
          assert.ok((await stored.go(again.url)).query("button[name=decision][value=allow]"), `${name}: consent is asked again`);
        } finally {
          await stored.close();
        }
      }
    } finally {
      await postgres?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

type TestHostStore = { kind: "memory" } | { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };
