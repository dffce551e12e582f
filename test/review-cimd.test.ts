import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ConfigError, parseConfig } from "@tessera/host";
import { resolveOptions } from "../packages/server/src/options.ts";
import { displayName } from "../packages/server/src/clients/metadata-document.ts";
import { addressAllowed } from "../packages/server/src/http/outbound.ts";
import { Flow, REDIRECT, RP, baseConfig } from "./support/fixtures.ts";
import { makePki, type TestPki } from "./support/certs.ts";

const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/** An https server on 127.0.0.1 serving client documents; counts hits; `/slow/` paths wait while `hold` is set. */
class Docs {
  readonly hits = new Map<string, number>();
  readonly routes = new Map<string, { headers?: Record<string, string>; body: string }>();
  hold: Promise<void> | undefined;
  private constructor(
    private readonly server: Server,
    readonly base: string,
  ) {}
  static async start(pki: TestPki): Promise<Docs> {
    let self: Docs | undefined;
    const server = createServer({ cert: pki.server.cert, key: pki.server.key }, (req, res) => {
      const path = new URL(req.url ?? "/", "https://x").pathname;
      self!.hits.set(path, (self!.hits.get(path) ?? 0) + 1);
      const route = self!.routes.get(path);
      const answer = () => (route ? res.writeHead(200, { "content-type": "application/json", ...route.headers }).end(route.body) : res.writeHead(404).end());
      if (path.startsWith("/slow/") && self!.hold) return void self!.hold.then(answer);
      answer();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self = new Docs(server, `https://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }
  client(path: string, document: Record<string, unknown> = {}, headers: Record<string, string> = {}): string {
    const url = this.base + path;
    this.routes.set(path, { headers, body: JSON.stringify({ client_id: url, client_name: "Demo Tool", redirect_uris: [REDIRECT], scope: "openid profile", token_endpoint_auth_method: "none", ...document }) });
    return url;
  }
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe("19 CIMD review fixes", () => {
  let pki: TestPki;
  let docs: Docs;
  let flow: Flow;
  const config = (cimd: Record<string, unknown> = {}) => ({ ...baseConfig(), admin: { role: "admin" }, outbound: { allowLoopback: true, ca: pki.paths.ca }, clientIdMetadataDocuments: { enabled: true, ...cimd } });

  before(async () => {
    pki = makePki();
    docs = await Docs.start(pki);
    flow = await Flow.create(config());
  });
  after(async () => {
    await flow.close();
    await docs.close();
    pki.cleanup();
  });

  /** A direct GET of the authorization endpoint (no browser, no session). */
  function authorize(on: Flow, params: Record<string, string>): Promise<Response> {
    const url = new URL(`${on.host.issuer}/connect/authorize`);
    for (const [k, v] of Object.entries({ redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: CHALLENGE, code_challenge_method: "S256", ...params })) url.searchParams.set(k, v);
    return on.host.fetch(new Request(url));
  }

  /** Signs alice in to a document client through login and consent; returns the tokens. */
  async function signIn(on: Flow, clientId: string, params: Record<string, string> = {}, stop = (u: URL) => u.origin === RP) {
    const request = await on.authorizeUrl({ client_id: clientId, scope: "openid profile", ...params });
    let page = await on.browser.get(request.url, { stopAt: stop });
    if (page.query("input[name=password]")) page = await on.browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt: stop });
    assert.ok(page.query("button[name=decision][value=allow]"), `consent is asked: ${page.status} ${page.body.slice(0, 200)}`);
    const back = await on.browser.submitForm(page, { button: "button[name=decision][value=allow]", stopAt: stop });
    const code = new URL(back.location!).searchParams.get("code")!;
    const response = await on.token({ grant_type: "authorization_code", code, redirect_uri: params.redirect_uri ?? REDIRECT, code_verifier: request.verifier, client_id: clientId });
    assert.equal(response.status, 200);
    return (await response.json()) as { access_token: string; id_token: string };
  }

  it("19.c1 a document's scope is cut to clientIdMetadataDocuments.allowedScopes: no admin token, no API scope by default", async () => {
    const clientId = docs.client("/c1/admin.json", { scope: "openid tessera.admin api1.read" });
    for (const scope of ["openid tessera.admin", "openid api1.read"]) {
      const page = await authorize(flow, { client_id: clientId, scope });
      assert.equal(page.status, 400, scope);
      assert.match(await page.text(), /invalid_scope/);
    }
    // An operator may allow API scopes; the admin scope stays out even if the document asks for it.
    const apis = await Flow.create(config({ allowedScopes: ["openid", "profile", "api1.read"] }));
    try {
      const tokens = await signIn(apis, clientId, { scope: "openid api1.read" });
      const claims = await apis.host.provider.validateAccessToken(tokens.access_token);
      assert.equal(claims?.scope, "openid api1.read");
      const admin = await apis.host.fetch(new Request(`${apis.host.issuer}/admin/api/sessions`, { headers: { authorization: `Bearer ${tokens.access_token}` } }));
      assert.equal(admin.status, 403);
      assert.equal((await authorize(apis, { client_id: clientId, scope: "openid tessera.admin" })).status, 400);
    } finally {
      await apis.close();
    }
    // Tessera's own scopes cannot be allowed at all.
    assert.throws(() => parseConfig({ ...config({ allowedScopes: ["openid", "tessera.admin"] }) }), ConfigError);
    assert.throws(() => parseConfig({ ...config({ allowedScopes: ["openid", "nope"] }) }), ConfigError);
    assert.throws(() => resolveOptions({ issuer: "https://idp.example", clients: [], clientIdMetadataDocuments: { allowedScopes: ["tessera.admin"] } } as never), /tessera\.admin/);
  });

  it("19.c2 authorize errors for a document client go to the error page unless the redirect URI is on the client_id's origin", async () => {
    const clientId = docs.client("/c2/redir.json", { redirect_uris: ["https://phish.example/landing", `${docs.base}/c2/callback`] });
    for (const extra of [{ scope: "nope" }, { scope: "openid", prompt: "none" }, { scope: "openid", response_mode: "bogus" }]) {
      const response = await authorize(flow, { client_id: clientId, redirect_uri: "https://phish.example/landing", ...extra });
      assert.equal(response.status, 400, JSON.stringify(extra));
      assert.equal(response.headers.get("location"), null);
    }
    const same = await authorize(flow, { client_id: clientId, redirect_uri: `${docs.base}/c2/callback`, scope: "nope", state: "s1" });
    assert.equal(same.status, 302);
    const location = new URL(same.headers.get("location")!);
    assert.equal(location.origin + location.pathname, `${docs.base}/c2/callback`);
    assert.equal(location.searchParams.get("error"), "invalid_scope");
    assert.equal(location.searchParams.get("state"), "s1");
    // Registered clients keep the redirect (OAuth 2.0 §4.1.2.1).
    const web = await authorize(flow, { client_id: "web", scope: "nope" });
    assert.equal(web.status, 302);
  });

  it("19.c2 end-session follows a document client's post_logout_redirect_uri only with its valid id_token_hint", async () => {
    const logoutUri = "https://phish.example/login?fake=1";
    const clientId = docs.client("/c2/logout.json", { post_logout_redirect_uris: [logoutUri] });
    const endSession = (extra: Record<string, string>) =>
      flow.host.fetch(new Request(`${flow.host.issuer}/connect/endsession?${new URLSearchParams({ post_logout_redirect_uri: logoutUri, ...extra })}`));
    const bare = await endSession({ client_id: clientId });
    assert.equal(bare.status, 302);
    assert.doesNotMatch(bare.headers.get("location")!, /phish\.example/);
    const tokens = await signIn(flow, clientId);
    const hinted = await endSession({ id_token_hint: tokens.id_token, state: "x" });
    assert.equal(hinted.status, 302);
    assert.equal(hinted.headers.get("location"), `${logoutUri}&state=x`);
  });

  it("19.c3 a document's client_name loses control and bidi characters and is capped; name and host+path are isolated in <bdi>", async () => {
    assert.equal(displayName("GitHub (github.com)\u202e\u2066x\u200f\u0007\u0085\n  y"), "GitHub (github.com)x y");
    assert.equal(displayName("\u202e\u202c"), undefined);
    assert.equal([...displayName("é".repeat(100))!].length, 64);
    const clientId = docs.client("/c3/bidi.json", { client_name: `GitHub\u202e (github.com)\u2066 ${"z".repeat(80)}`, scope: "openid" });
    const request = await flow.authorizeUrl({ client_id: clientId, scope: "openid", prompt: "login" });
    const login = await flow.go(request.url);
    const consent = await flow.login(login);
    for (const page of [login, consent]) {
      assert.ok(!/[\u202a-\u202e\u2066-\u2069\u200e\u200f]/.test(page.body), "no bidi controls on the page");
      assert.match(page.body, /<bdi>GitHub \(github\.com\) z{44}<\/bdi>/);
      assert.match(page.body, new RegExp(`<bdi[^>]*>${new URL(clientId).host.replace(/\./g, "\\.")}/c3/bidi\\.json</bdi>`));
    }
    assert.equal(consent.query("input[name=remember]"), null, "no remember box: a document client is asked every time");
  });

  it("19.c6 a document client with a loopback redirect is asked every time: prompt=none on another port gets consent_required, not a code", async () => {
    const clientId = docs.client("/c6/native.json", { redirect_uris: ["http://127.0.0.1/callback"] });
    const loopback = (u: URL) => u.hostname === "127.0.0.1" && u.protocol === "http:";
    await signIn(flow, clientId, { redirect_uri: "http://127.0.0.1:5555/callback" }, loopback);
    const silent = await flow.authorizeUrl({ client_id: clientId, scope: "openid profile", redirect_uri: "http://127.0.0.1:6666/callback", prompt: "none" });
    const page = await flow.browser.get(silent.url, { stopAt: loopback });
    assert.equal(page.location, undefined, "no code, and no redirect of the error off the client_id's origin");
    assert.equal(page.status, 400);
    assert.match(page.text(), /consent_required/);
    const again = await flow.authorizeUrl({ client_id: clientId, scope: "openid profile", redirect_uri: "http://127.0.0.1:6666/callback" });
    assert.ok((await flow.browser.get(again.url, { stopAt: loopback })).query("button[name=decision][value=allow]"), "consent is shown again");
  });

  it("19.c5 failures are cached apart: junk URLs never evict a good document", async () => {
    const small = await Flow.create(config({ maxCacheEntries: 5 }));
    try {
      const good = docs.client("/c5/good.json");
      const probe = (id: string) => authorize(small, { client_id: id });
      assert.equal((await probe(good)).status, 302, "the good client goes on to login");
      for (let i = 0; i < 8; i++) assert.equal((await probe(`${docs.base}/c5/junk/${i}.json`)).status, 400);
      assert.equal((await probe(good)).status, 302);
      assert.equal(docs.hits.get("/c5/good.json"), 1, "the good document is still cached");
    } finally {
      await small.close();
    }
  });

  it("19.c5 at most maxConcurrentFetchesPerHost fetches run per host; others are refused without a fetch", async () => {
    const per = await Flow.create(config());
    let release!: () => void;
    docs.hold = new Promise((resolve) => (release = resolve));
    try {
      const ids = [1, 2, 3].map((i) => docs.client(`/slow/c5-${i}.json`));
      const slow = ids.slice(0, 2).map((id) => authorize(per, { client_id: id }));
      while ((docs.hits.get("/slow/c5-1.json") ?? 0) + (docs.hits.get("/slow/c5-2.json") ?? 0) < 2) await new Promise((r) => setTimeout(r, 10));
      const third = await authorize(per, { client_id: ids[2]! });
      assert.equal(third.status, 400, "refused while two fetches from the host run");
      assert.equal(docs.hits.get("/slow/c5-3.json"), undefined, "never fetched");
      release();
      for (const response of await Promise.all(slow)) assert.equal(response.status, 302);
      docs.hold = undefined;
      assert.equal((await authorize(per, { client_id: ids[2]! })).status, 302, "fetched once a slot is free (the refusal is not cached)");
    } finally {
      release();
      docs.hold = undefined;
      await per.close();
    }
  });

  it("19.c5 uncached lookups are bounded per client address (maxLookupsPerAddress a minute); cached ones are not", async () => {
    let now = Date.now();
    const limited = await Flow.create({ ...config({ maxLookupsPerAddress: 3 }), trustedProxies: 1 }, () => now);
    try {
      const good = docs.client("/c5/budget.json");
      const from = (address: string, id: string) => {
        const url = new URL(`${limited.host.issuer}/connect/authorize`);
        for (const [k, v] of Object.entries({ client_id: id, redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: CHALLENGE, code_challenge_method: "S256" })) url.searchParams.set(k, v);
        return limited.host.fetch(new Request(url, { headers: { "x-forwarded-for": address } }));
      };
      assert.equal((await from("198.51.100.1", good)).status, 302);
      for (let i = 0; i < 2; i++) assert.equal((await from("198.51.100.1", `${docs.base}/c5/b${i}.json`)).status, 400);
      assert.equal((await from("198.51.100.1", `${docs.base}/c5/b9.json`)).status, 400);
      assert.equal(docs.hits.get("/c5/b9.json"), undefined, "the fourth uncached lookup is refused without a fetch");
      assert.equal((await from("198.51.100.1", good)).status, 302, "a cached document still answers");
      assert.equal((await from("198.51.100.2", `${docs.base}/c5/b9.json`)).status, 400);
      assert.equal(docs.hits.get("/c5/b9.json"), 1, "another address has its own budget");
      now += 60_000;
      assert.equal((await from("198.51.100.1", `${docs.base}/c5/b8.json`)).status, 400);
      assert.equal(docs.hits.get("/c5/b8.json"), 1, "the budget refills");
    } finally {
      await limited.close();
    }
  });

  it("19.c4 a document change of redirect_uris never rides on an earlier consent", async () => {
    const short = await Flow.create(config({ minCacheTtl: 0, maxCacheTtl: 0 }));
    try {
      const clientId = docs.client("/c4/change.json", { scope: "openid" }, { "cache-control": "no-store" });
      await signIn(short, clientId, { scope: "openid" });
      docs.client("/c4/change.json", { scope: "openid", redirect_uris: ["https://rp.test/other"] }, { "cache-control": "no-store" });
      const again = await short.authorizeUrl({ client_id: clientId, scope: "openid", redirect_uri: "https://rp.test/other" });
      const page = await short.go(again.url);
      assert.equal(page.location, undefined);
      assert.ok(page.query("button[name=decision][value=allow]"), "consent is asked for the changed document");
    } finally {
      await short.close();
    }
  });
});

describe("19 CIMD review fixes: outbound address rules", () => {
  const strict = { allowLoopback: false, allowPrivateNetworks: false };
  const loopbackOnly = { allowLoopback: true, allowPrivateNetworks: false };
  it("19.c7 IPv6 outside global unicast, special-purpose blocks and embedded non-public IPv4 are refused", () => {
    const refused = [
      "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:a00:1", "::ffff:a9fe:a9fe", "::7f00:1", "::127.0.0.1", "::", "::1",
      "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:c000:0201::1", "fec0::1", "2001:db8::1", "3fff::1", "100::1", "fc00::1", "fe80::1%eth0", "ff02::1",
      "64:ff9b::7f00:1", "64:ff9b::10.0.0.1", "64:ff9b:1::a00:1", "64:ff9b:1::808:808", "2001::1", "2001:2::1", "2001:10::1", "2001:1ff::1",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2".replace("3fff:fdd2", "80ff:fffe"), // Teredo client 127.0.0.1
      "2001:0:0a00:0001:8000:63bf:f7f7:f7f7", // Teredo server 10.0.0.1
      "5f00::1", "::ffff:192.0.2.1", "0.0.0.0", "192.0.2.1", "198.51.100.7", "203.0.113.9", "192.88.99.1", "127.0.0.1", "not-an-ip",
    ];
    for (const address of refused) assert.equal(addressAllowed(address, strict), false, address);
    const allowed = ["8.8.8.8", "::ffff:8.8.8.8", "::ffff:808:808", "64:ff9b::8.8.8.8", "2002:808:808::1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"];
    for (const address of allowed) assert.equal(addressAllowed(address, strict), true, address);
    // RFC 4380's example: server 65.54.227.120, client 192.0.2.45, a documentation address, so refused.
    assert.equal(addressAllowed("2001:0:4136:e378:8000:63bf:3fff:fdd2", strict), false);
    assert.equal(addressAllowed("2001:0:4136:e378:8000:63bf:f7f7:f7f7", strict), true, "Teredo with public server and client (8.8.8.8)");
    // Loopback in any spelling follows allowLoopback only.
    for (const address of ["::1", "::ffff:7f00:1", "64:ff9b::127.0.0.1", "127.0.0.2"]) assert.equal(addressAllowed(address, loopbackOnly), true, address);
    assert.equal(addressAllowed("fc00::1", loopbackOnly), false);
    assert.equal(addressAllowed("fc00::1", { allowLoopback: false, allowPrivateNetworks: true }), true);
  });
});

describe("19 CIMD review fixes: RFC 8707 in the device flow", () => {
  const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
  it("19.c9 resource at device authorization is validated (invalid_target) and carried to the access and refresh tokens", async () => {
    const config = baseConfig();
    config.deviceFlow = { lifetime: 600, interval: 1, userCodeLength: 8 };
    config.apiResources = [...config.apiResources!, { name: "urn:api2", scopes: ["api1.read"] }];
    config.clients = [{ client_id: "tv", token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT, "refresh_token"], scope: "openid offline_access api1.read" }, ...config.clients!];
    let now = Date.now();
    const flow = await Flow.create(config, () => now);
    const post = async (path: string, fields: Record<string, string>) => {
      const response = await flow.host.fetch(new Request(`${flow.host.issuer}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() }));
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    try {
      const unknown = await post("/connect/deviceauthorization", { client_id: "tv", scope: "openid api1.read", resource: "urn:not-configured" });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error, "invalid_target");
      const started = await post("/connect/deviceauthorization", { client_id: "tv", scope: "openid offline_access api1.read", resource: "urn:api1" });
      assert.equal(started.status, 200);
      let page = await flow.browser.get(started.body.verification_uri!);
      page = await flow.browser.submitForm(page, { fields: { user_code: started.body.user_code! } });
      if (page.query("input[name=username]")) page = await flow.browser.submitForm(page, { fields: { username: "alice", password: "alice" } });
      await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]" });
      now += 2000;
      const wrong = await post("/connect/token", { grant_type: DEVICE_GRANT, device_code: started.body.device_code!, client_id: "tv", resource: "urn:api2" });
      assert.equal(wrong.body.error, "invalid_target", "only an indicated resource may be picked");
      now += 2000;
      const tokens = await post("/connect/token", { grant_type: DEVICE_GRANT, device_code: started.body.device_code!, client_id: "tv" });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      const aud = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).aud;
      assert.equal(aud(tokens.body.access_token!), "urn:api1", "only the indicated resource, not urn:api2 which also owns api1.read");
      const refreshed = await post("/connect/token", { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token!, client_id: "tv" });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.equal(aud(refreshed.body.access_token!), "urn:api1");
      const other = await post("/connect/token", { grant_type: "refresh_token", refresh_token: refreshed.body.refresh_token!, client_id: "tv", resource: "urn:api2" });
      assert.equal(other.body.error, "invalid_target", "the refresh token covers only the indicated resource");
    } finally {
      await flow.close();
    }
  });
});

describe("19 CIMD review fixes: RFC 9728 §3.3", () => {
  it("19.c8 the origin-level metadata path answers only for a resource without a path, or when opted in", async () => {
    const { protectedResourceMetadata } = await import("@tessera/api");
    const a = protectedResourceMetadata({ resource: "https://api.example/mcp", authorizationServers: ["https://idp.example"] });
    const b = protectedResourceMetadata({ resource: "https://api.example/other", authorizationServers: ["https://other-idp.example"] });
    for (const handler of [a, b]) {
      assert.equal(handler(new Request("https://api.example/.well-known/oauth-protected-resource")).status, 404);
      assert.ok(!handler.paths.includes("/.well-known/oauth-protected-resource"), "two resources of one origin never collide");
    }
    const root = protectedResourceMetadata({ resource: "https://api.example", authorizationServers: ["https://idp.example"] });
    const document = (await root(new Request("https://api.example/.well-known/oauth-protected-resource")).json()) as { resource: string };
    assert.equal(document.resource, "https://api.example");
    const compatible = protectedResourceMetadata({ resource: "https://api.example/mcp", authorizationServers: ["https://idp.example"], serveAtOriginRoot: true });
    assert.equal(compatible(new Request("https://api.example/.well-known/oauth-protected-resource")).status, 200);
  });
});
