import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { ConfigError, parseConfig } from "@tessera/host";
import { createMemoryStore, createProvider } from "@tessera/server";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { SignJWT, calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { pkce } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

/** Regression tests for the attacker review of FAPI 2.0 support (issue 17, findings f1-f10). */

const ISSUER = "https://idp.test";
const CB = "https://rp.test/cb";
const DEVICE = "urn:ietf:params:oauth:grant-type:device_code";

interface ClientKeys {
  es: CryptoKey;
  jwks: { keys: JWK[] };
}

async function clientKeys(): Promise<ClientKeys> {
  const es = await generateKeyPair("ES256", { extractable: true });
  return { es: es.privateKey, jwks: { keys: [{ ...(await exportJWK(es.publicKey)), kid: "es" }] } };
}

interface DpopKey {
  priv: CryptoKey;
  jwk: JWK;
  alg: string;
}

async function dpopKey(kind: "ec" | "rsa" = "ec"): Promise<DpopKey> {
  const pair = kind === "ec" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { priv: pair.privateKey as unknown as CryptoKey, jwk: await exportJWK(pair.publicKey), alg: kind === "ec" ? "ES256" : "RS256" };
}

const form = (body: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(body).toString(),
});

const ath = (token: string) => createHash("sha256").update(token).digest("base64url");

/** A host with a fapi2 client "fapi" (private_key_jwt, ES256) and a plain confidential client; its clock is `clock`. */
class Fixture {
  offset = 0;
  host!: TestHost;
  keys!: ClientKeys;

  readonly clock = () => Date.now() + this.offset;
  now = () => Math.floor(this.clock() / 1000);

  static async create(extra: Partial<TestHostConfig> = {}, extraClients: TestHostConfig["clients"] = [], keys?: ClientKeys): Promise<Fixture> {
    const fixture = new Fixture();
    fixture.keys = keys ?? (await clientKeys());
    fixture.host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"], secret: "api1-secret" }],
        users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice" } }],
        keys: { algorithms: ["ES256", "RS256"] },
        clients: [
          {
            client_id: "fapi",
            security_profile: "fapi2",
            token_endpoint_auth_method: "private_key_jwt",
            jwks: fixture.keys.jwks,
            redirect_uris: [CB],
            grant_types: ["authorization_code", "refresh_token", "client_credentials"],
            scope: "openid offline_access api1.read",
            access_token_format: "reference",
          },
          { client_id: "plain", client_secret: "plain-secret", token_endpoint_auth_method: "client_secret_post", redirect_uris: [CB], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access api1.read" },
          ...(extraClients ?? []),
        ],
        ...extra,
      },
      { clock: fixture.clock },
    );
    return fixture;
  }

  async assertion(opts: { iat?: number; nbf?: number; clientId?: string } = {}): Promise<Record<string, string>> {
    const t = this.now();
    const clientId = opts.clientId ?? "fapi";
    const payload: Record<string, unknown> = { jti: randomUUID(), iss: clientId, sub: clientId, aud: ISSUER, exp: t + 60, iat: opts.iat ?? t };
    if (opts.nbf !== undefined) payload.nbf = opts.nbf;
    const jwt = await new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: "es" }).sign(this.keys.es);
    return { client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: jwt };
  }

  async proof(key: DpopKey, htm: string, path: string, opts: { iatOffset?: number; nbfOffset?: number; accessToken?: string; alg?: string } = {}): Promise<string> {
    const t = this.now();
    const payload: Record<string, unknown> = { jti: randomUUID(), htm, htu: ISSUER + path, iat: t + (opts.iatOffset ?? 0) };
    if (opts.nbfOffset !== undefined) payload.nbf = t + opts.nbfOffset;
    if (opts.accessToken) payload.ath = ath(opts.accessToken);
    return new SignJWT(payload).setProtectedHeader({ typ: "dpop+jwt", alg: opts.alg ?? key.alg, jwk: key.jwk }).sign(key.priv);
  }

  async call(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const response = await this.host.fetch(new Request(ISSUER + path, init));
    const text = await response.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: response.status, body, headers: response.headers };
  }

  /** Pushes an authorization request for "fapi" (optionally with a DPoP proof); the request_uri and PKCE verifier. */
  async push(opts: { scope?: string; dpop?: DpopKey; dpopAlg?: string; extra?: Record<string, string> } = {}): Promise<{ status: number; body: Record<string, unknown>; requestUri: string; verifier: string }> {
    const { verifier, challenge } = pkce();
    const headers: Record<string, string> = opts.dpop ? { dpop: await this.proof(opts.dpop, "POST", "/connect/par", { alg: opts.dpopAlg }) } : {};
    const response = await this.call("/connect/par", form({ client_id: "fapi", response_type: "code", redirect_uri: CB, scope: opts.scope ?? "openid", code_challenge: challenge, code_challenge_method: "S256", state: "s", ...(opts.extra ?? {}), ...(await this.assertion()) }, headers));
    return { ...response, requestUri: String(response.body.request_uri), verifier };
  }

  authorizeUrl(requestUri: string): string {
    return `${ISSUER}/connect/authorize?client_id=fapi&request_uri=${encodeURIComponent(requestUri)}`;
  }

  browser(): TestBrowser {
    return new TestBrowser({ handlers: { [ISSUER]: this.host.fetch }, clock: this.clock });
  }

  /** PAR, login, code. */
  async code(opts: { scope?: string; dpop?: DpopKey } = {}): Promise<{ code: string; verifier: string }> {
    const pushed = await this.push(opts);
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    const stopAt = (u: URL) => u.href.startsWith(CB);
    const browser = this.browser();
    const page = await browser.get(this.authorizeUrl(pushed.requestUri), { stopAt });
    const location = page.location?.startsWith(CB) ? page.location : (await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt })).location;
    const code = new URL(location!).searchParams.get("code");
    assert.ok(code, `no code in ${location}`);
    return { code, verifier: pushed.verifier };
  }

  async redeem(code: string, verifier: string, key?: DpopKey, proofOpts: { iatOffset?: number; nbfOffset?: number } = {}) {
    const headers: Record<string, string> = key ? { dpop: await this.proof(key, "POST", "/connect/token", proofOpts) } : {};
    return this.call("/connect/token", form({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: CB, ...(await this.assertion()) }, headers));
  }

  async refresh(refreshToken: string, key?: DpopKey) {
    const headers: Record<string, string> = key ? { dpop: await this.proof(key, "POST", "/connect/token") } : {};
    return this.call("/connect/token", form({ grant_type: "refresh_token", refresh_token: refreshToken, ...(await this.assertion()) }, headers));
  }

  async introspect(token: string): Promise<boolean> {
    const r = await this.call("/connect/introspect", form({ token, client_id: "urn:api1", client_secret: "api1-secret" }));
    return r.body.active === true;
  }
}

describe("17 FAPI 2.0 attacker review: JWT clocks and algorithms", () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.create();
  });
  after(() => f.host.close());

  it("17.f1 DPoP: a proof with iat 8 s ahead is accepted at PAR, token and userinfo; nbf 2 s ahead too; iat 20 s ahead is refused", async () => {
    const key = await dpopKey();
    const pushed = await f.call("/connect/par", form({ client_id: "fapi", response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", ...(await f.assertion()) }, { dpop: await f.proof(key, "POST", "/connect/par", { iatOffset: 8 }) }));
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    const { code, verifier } = await f.code({ dpop: key });
    const ahead = await f.redeem(code, verifier, key, { iatOffset: 20 });
    assert.equal(ahead.status, 400);
    assert.equal(ahead.body.error, "invalid_dpop_proof");
    const tokens = await f.redeem(code, verifier, key, { iatOffset: 8 });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const at = String(tokens.body.access_token);
    const userinfo = await f.call("/connect/userinfo", { headers: { authorization: `DPoP ${at}`, dpop: await f.proof(key, "GET", "/connect/userinfo", { accessToken: at, iatOffset: 8 }) } });
    assert.equal(userinfo.status, 200, JSON.stringify(userinfo.body));
    const nbf = await f.call("/connect/userinfo", { headers: { authorization: `DPoP ${at}`, dpop: await f.proof(key, "GET", "/connect/userinfo", { accessToken: at, nbfOffset: 2 }) } });
    assert.equal(nbf.status, 200, JSON.stringify(nbf.body));
  });

  it("17.f3 DPoP §5.4.1: an RS256 proof from a fapi2 client is refused at PAR and at userinfo (for its token); ES256 works", async () => {
    const rsa = await dpopKey("rsa");
    const pushed = await f.push({ dpop: rsa, dpopAlg: "RS256" });
    assert.equal(pushed.status, 400, JSON.stringify(pushed.body));
    assert.equal(pushed.body.error, "invalid_dpop_proof");
    const ps = { ...rsa, alg: "PS256" };
    const { code, verifier } = await f.code({ dpop: ps });
    const tokens = await f.redeem(code, verifier, ps);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const at = String(tokens.body.access_token);
    const rs = await f.call("/connect/userinfo", { headers: { authorization: `DPoP ${at}`, dpop: await f.proof(rsa, "GET", "/connect/userinfo", { accessToken: at, alg: "RS256" }) } });
    assert.equal(rs.status, 401);
    assert.match(rs.headers.get("www-authenticate") ?? "", /invalid_dpop_proof/);
    assert.doesNotMatch(rs.headers.get("www-authenticate") ?? "", /RS256/);
    const psOk = await f.call("/connect/userinfo", { headers: { authorization: `DPoP ${at}`, dpop: await f.proof(ps, "GET", "/connect/userinfo", { accessToken: at }) } });
    assert.equal(psOk.status, 200, JSON.stringify(psOk.body));
  });

  it("17.f4 a client assertion or request object with iat more than 30 s ahead is refused (no nbf needed); 8 s ahead is accepted", async () => {
    const par = async (auth: Record<string, string>, params: Record<string, string> = { response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" }) =>
      f.call("/connect/par", form({ client_id: "fapi", ...params, ...auth }));
    const t = f.now();
    const farAhead = await par(await f.assertion({ iat: t + 3600 }));
    assert.equal(farAhead.status, 401);
    assert.equal(farAhead.body.error, "invalid_client");
    assert.equal((await par(await f.assertion({ iat: t + 45 }))).status, 401);
    assert.equal((await par(await f.assertion({ iat: t + 8, nbf: t + 8 }))).status, 201);
    const requestObject = (iat: number) =>
      new SignJWT({ client_id: "fapi", response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", iss: "fapi", aud: ISSUER, iat, exp: t + 300 })
        .setProtectedHeader({ alg: "ES256", kid: "es", typ: "oauth-authz-req+jwt" })
        .sign(f.keys.es);
    const object = await par(await f.assertion(), { request: await requestObject(t + 200) });
    assert.equal(object.status, 400, JSON.stringify(object.body));
    assert.equal(object.body.error, "invalid_request_object");
    assert.equal((await par(await f.assertion(), { request: await requestObject(t + 8) })).status, 201);
  });
});

describe("17 FAPI 2.0 attacker review: grants and refresh tokens", () => {
  let f: Fixture;
  const proto = Object.getPrototypeOf(createMemoryStore().grants) as { get(key: string): Promise<unknown> };
  const originalGet = proto.get;
  /** Runs once, inside the next read of `key`: a concurrent request landing mid-refresh. */
  let interleave: { key: string; run: () => Promise<void> } | undefined;
  before(async () => {
    proto.get = async function (this: unknown, key: string) {
      const found = await originalGet.call(this, key);
      const hook = interleave;
      if (hook && found && key === hook.key) {
        interleave = undefined;
        await hook.run();
      }
      return found;
    };
    f = await Fixture.create();
  });
  after(async () => {
    proto.get = originalGet;
    await f.host.close();
  });

  it("17.f2 a fapi2 client may list only authorization_code, refresh_token and client_credentials (no device_code, no extension grant)", () => {
    const jwks = { keys: [{ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pOyStikYjKIWI5a0" }] };
    const client = (grant_types: string[]) => ({ client_id: "f", security_profile: "fapi2" as const, token_endpoint_auth_method: "private_key_jwt" as const, jwks, redirect_uris: ["https://rp.example/cb"], grant_types });
    assert.throws(
      () => parseConfig({ issuer: "https://id.example", keys: { algorithms: ["PS256"] }, clients: [client(["authorization_code", DEVICE])] }),
      (error: unknown) => error instanceof ConfigError && error.problems.some((p) => p.path === "clients[0].grant_types[1]" && /FAPI 2.0/.test(p.message)),
    );
    parseConfig({ issuer: "https://id.example", keys: { algorithms: ["PS256"] }, clients: [client(["authorization_code", "refresh_token", "client_credentials"])] });
    const grant = { validate: async () => ({}), issue: async () => ({ access_token: "x", token_type: "Bearer" as const, expires_in: 1 }) };
    assert.throws(
      () => createProvider({ issuer: "https://id.example", store: createMemoryStore(), dataKey: randomBytes(32), keys: { algorithms: ["ES256"] }, grants: { "urn:example:custom": grant }, clients: [client(["authorization_code", "urn:example:custom"])] }),
      /grant_types: FAPI 2.0 .*urn:example:custom/,
    );
  });

  it("17.f9 a fapi2 (confidential) client's refresh token is not bound to the DPoP key: another key refreshes (new tokens bound to it); a proof is still required", async () => {
    const key = await dpopKey();
    const { code, verifier } = await f.code({ scope: "openid offline_access api1.read", dpop: key });
    const tokens = await f.redeem(code, verifier, key);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const rt = String(tokens.body.refresh_token);
    const other = await dpopKey();
    const refreshed = await f.refresh(rt, other);
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.token_type, "DPoP");
    assert.equal(refreshed.body.refresh_token, rt);
    const intro = await f.call("/connect/introspect", form({ token: String(refreshed.body.access_token), client_id: "urn:api1", client_secret: "api1-secret" }));
    assert.equal((intro.body.cnf as { jkt?: string }).jkt, await calculateJwkThumbprint(other.jwk));
    const bearer = await f.refresh(rt);
    assert.equal(bearer.status, 400);
    assert.equal(bearer.body.error, "invalid_request");
  });

  it("17.f5 a refresh racing a revocation (no rotation, fapi2) answers invalid_grant and leaves no live token", async () => {
    const key = await dpopKey();
    const { code, verifier } = await f.code({ scope: "openid offline_access api1.read", dpop: key });
    const tokens = await f.redeem(code, verifier, key);
    const rt = String(tokens.body.refresh_token);
    let revoked = 0;
    interleave = {
      key: createHash("sha256").update(rt).digest("base64url"),
      run: async () => {
        revoked = (await f.call("/connect/revocation", form({ token: rt, ...(await f.assertion()) }))).status;
      },
    };
    const raced = await f.refresh(rt, key);
    assert.equal(revoked, 200);
    assert.equal(raced.status, 400, JSON.stringify(raced.body));
    assert.equal(raced.body.error, "invalid_grant");
    assert.equal((await f.refresh(rt, key)).body.error, "invalid_grant");
    assert.equal(await f.introspect(String(tokens.body.access_token)), false);
  });

  it("17.f5 a refresh racing a revocation (rotation, plain client: issue-then-consume already guards it) answers invalid_grant", async () => {
    const { verifier, challenge } = pkce();
    const stopAt = (u: URL) => u.href.startsWith(CB);
    const browser = f.browser();
    const page = await browser.get(`${ISSUER}/connect/authorize?${new URLSearchParams({ client_id: "plain", response_type: "code", redirect_uri: CB, scope: "openid offline_access api1.read", code_challenge: challenge, code_challenge_method: "S256" })}`, { stopAt });
    const back = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    const code = new URL(back.location!).searchParams.get("code")!;
    const auth = { client_id: "plain", client_secret: "plain-secret" };
    const tokens = await f.call("/connect/token", form({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: CB, ...auth }));
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const rt = String(tokens.body.refresh_token);
    interleave = {
      key: createHash("sha256").update(rt).digest("base64url"),
      run: async () => {
        assert.equal((await f.call("/connect/revocation", form({ token: rt, ...auth }))).status, 200);
      },
    };
    const raced = await f.call("/connect/token", form({ grant_type: "refresh_token", refresh_token: rt, ...auth }));
    assert.equal(raced.status, 400, JSON.stringify(raced.body));
    assert.equal(raced.body.error, "invalid_grant");
    assert.equal(interleave, undefined);
  });
});

describe("17 FAPI 2.0 attacker review: the library", () => {
  it("17.f6 createProvider: a fapi2 client without id_token_signed_response_alg signs with the first FAPI algorithm configured, and is refused when there is none", async () => {
    const keys = await clientKeys();
    const client = { client_id: "fapi", security_profile: "fapi2" as const, token_endpoint_auth_method: "private_key_jwt" as const, jwks: keys.jwks, redirect_uris: [CB], grant_types: ["client_credentials"], scope: "api1.read" };
    const options = { issuer: ISSUER, store: createMemoryStore(), dataKey: randomBytes(32), apiScopes: [{ name: "api1.read" }], clients: [client] };
    assert.throws(() => createProvider(options), /FAPI 2\.0 \(§5\.4\.1\).*keys\.algorithms/);
    const provider = createProvider({ ...options, keys: { algorithms: ["RS256", "ES256"] } });
    try {
      const t = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ jti: randomUUID(), iss: "fapi", sub: "fapi", aud: ISSUER, iat: t, exp: t + 60 }).setProtectedHeader({ alg: "ES256", kid: "es" }).sign(keys.es);
      const key = await dpopKey();
      const proof = await new SignJWT({ jti: randomUUID(), htm: "POST", htu: `${ISSUER}/connect/token`, iat: t }).setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk: key.jwk }).sign(key.priv);
      const response = await provider.fetch(new Request(`${ISSUER}/connect/token`, form({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion }, { dpop: proof })));
      const body = (await response.json()) as Record<string, string>;
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.equal(decodeProtectedHeader(body.access_token!).alg, "ES256");
    } finally {
      await provider.close();
    }
  });
});

describe("17 FAPI 2.0 attacker review: pushed requests", () => {
  it("17.f7 with par.requestUriLifetime 600 a fapi2 client's request_uri expires_in 599 (below 600, §5.3.2.2); other clients keep 600", async () => {
    const f = await Fixture.create({ par: { requestUriLifetime: 600 } });
    try {
      const pushed = await f.push();
      assert.equal(pushed.status, 201);
      assert.equal(pushed.body.expires_in, 599);
      const plain = await f.call("/connect/par", form({ client_id: "plain", client_secret: "plain-secret", response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" }));
      assert.equal(plain.status, 201, JSON.stringify(plain.body));
      assert.equal(plain.body.expires_in, 600);
      // The stored expiry follows: 599 s later the request_uri is gone.
      f.offset = 599_000;
      const late = await f.host.fetch(new Request(f.authorizeUrl(pushed.requestUri), { redirect: "manual" }));
      assert.equal(late.status, 400);
    } finally {
      await f.host.close();
    }
  });
});

describe("17 FAPI 2.0 attacker review: a request_uri is used up when the authorization completes", () => {
  let f: Fixture;
  const stopAt = (u: URL) => u.href.startsWith(CB);
  before(async () => {
    f = await Fixture.create();
  });
  after(() => f.host.close());

  /** Loads the authorize URL in a new browser: the login page. */
  const visit = async (requestUri: string) => {
    const browser = f.browser();
    const page = await browser.get(f.authorizeUrl(requestUri), { stopAt });
    assert.equal(page.status, 200, "the login page");
    return { browser, page };
  };
  const login = async (v: Awaited<ReturnType<typeof visit>>) => new URL((await v.browser.submitForm(v.page, { fields: { username: "alice", password: "alice" }, stopAt })).location!);

  it("17.f8 a request_uri loaded twice before login still works; the first completion gets the code, the other and any later visit are refused", async () => {
    const pushed = await f.push();
    const preloader = await visit(pushed.requestUri);
    const user = await visit(pushed.requestUri);
    const callback = await login(user);
    assert.ok(callback.searchParams.get("code"), callback.href);
    assert.equal(callback.searchParams.get("state"), "s");
    const tokens = await f.redeem(callback.searchParams.get("code")!, pushed.verifier, await dpopKey());
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    // The other interaction on the same push ends with an error to the client, not a second code.
    const second = await login(preloader);
    assert.equal(second.searchParams.get("code"), null);
    assert.equal(second.searchParams.get("error"), "invalid_request_uri");
    const replay = await f.host.fetch(new Request(f.authorizeUrl(pushed.requestUri), { redirect: "manual" }));
    assert.equal(replay.status, 400);
    assert.match(await replay.text(), /invalid_request_uri/);
  });

  it("17.f8 a login slower than the request_uri's lifetime completes; the expired request_uri cannot start another", async () => {
    const pushed = await f.push();
    const v = await visit(pushed.requestUri);
    f.offset += 120_000;
    try {
      const late = await f.host.fetch(new Request(f.authorizeUrl(pushed.requestUri), { redirect: "manual" }));
      assert.equal(late.status, 400);
      assert.ok((await login(v)).searchParams.get("code"));
    } finally {
      f.offset -= 120_000;
    }
  });

  it("17.f8 an error sent to the client (prompt=none without a session) uses the request_uri up", async () => {
    const pushed = await f.push({ extra: { prompt: "none" } });
    const first = await f.host.fetch(new Request(f.authorizeUrl(pushed.requestUri), { redirect: "manual" }));
    assert.equal(first.status, 302);
    assert.equal(new URL(first.headers.get("location")!).searchParams.get("error"), "login_required");
    const again = await f.host.fetch(new Request(f.authorizeUrl(pushed.requestUri), { redirect: "manual" }));
    assert.equal(again.status, 400);
  });
});

const postgres = await startTestPostgres();
after(() => postgres?.close());

describe("17 FAPI 2.0 attacker review: two processes on one PostgreSQL", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  it("17.f8 two hosts completing logins on one pushed request at once: exactly one gets a code", async () => {
    const keys = await clientKeys();
    const shared = { store: { kind: "postgres" as const, url: await postgres!.createDatabase() }, dataKey: randomBytes(32).toString("base64url") };
    const a = await Fixture.create(shared, [], keys);
    const b = await Fixture.create(shared, [], keys);
    try {
      const stopAt = (u: URL) => u.href.startsWith(CB);
      for (let round = 0; round < 3; round++) {
        const pushed = await a.push();
        const visits = await Promise.all(
          [a, b].map(async (host) => {
            const browser = host.browser();
            return { browser, page: await browser.get(host.authorizeUrl(pushed.requestUri), { stopAt }) };
          }),
        );
        const callbacks = await Promise.all(visits.map(async (v) => new URL((await v.browser.submitForm(v.page, { fields: { username: "alice", password: "alice" }, stopAt })).location!)));
        const codes = callbacks.filter((c) => c.searchParams.get("code"));
        assert.equal(codes.length, 1, callbacks.map((c) => c.search).join(" | "));
        assert.equal(callbacks.find((c) => !c.searchParams.get("code"))!.searchParams.get("error"), "invalid_request_uri");
      }
    } finally {
      await Promise.all([a.host.close(), b.host.close()]);
    }
  });
});

describe("17 FAPI 2.0 attacker review: redirects after a POST", () => {
  it("17.f10 the login form POST and a POSTed authorization request answer 303 (RFC 9110 §15.4.4, FAPI 2.0 SP §5.3.2.2); GET redirects stay 302", async () => {
    const f = await Fixture.create();
    try {
      const params = { client_id: "plain", response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", state: "p" };
      const browser = f.browser();
      const toCallback = (u: URL) => u.pathname.endsWith("/connect/authorize/callback") || u.href.startsWith(CB);
      const get = await f.host.fetch(new Request(`${ISSUER}/connect/authorize?${new URLSearchParams(params)}`, { redirect: "manual" }));
      assert.equal(get.status, 302);
      const page = await browser.get(`${ISSUER}/connect/authorize?${new URLSearchParams(params)}`, { stopAt: toCallback });
      const loggedIn = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt: toCallback });
      assert.equal(loggedIn.status, 303, "the login POST's redirect");
      const posted = await browser.post(`${ISSUER}/connect/authorize`, params, { stopAt: (u) => u.href.startsWith(CB) });
      assert.equal(posted.status, 303, "the authorization response to a POST");
      assert.ok(new URL(posted.location!).searchParams.get("code"));
      const again = await browser.get(`${ISSUER}/connect/authorize?${new URLSearchParams(params)}`, { stopAt: (u) => u.href.startsWith(CB) });
      assert.equal(again.status, 302, "the authorization response to a GET");
    } finally {
      await f.host.close();
    }
  });
});
