import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTokenValidator } from "@tessera/api";
import { certificateThumbprint } from "@tessera/protocol";
import { createMemoryStore, createProvider, type ExtensionGrant, type Provider, type TesseraEvent } from "@tessera/server";
import { createTestHost, type TestHost } from "@tessera/testing";
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from "jose";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";

const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS = "urn:ietf:params:oauth:token-type:access_token";
const JWT = "urn:ietf:params:oauth:token-type:jwt";
const DOWNSTREAM = "https://downstream.test";

function config() {
  const c = baseConfig();
  c.apiScopes = [{ name: "api1.read" }, { name: "api1.write" }, { name: "downstream.read" }, { name: "downstream.write" }];
  c.apiResources = [
    { name: "urn:api1", scopes: ["api1.read", "api1.write"], secret: "api1-secret" },
    { name: DOWNSTREAM, scopes: ["downstream.read", "downstream.write"], secret: "downstream-secret" },
  ];
  const userScopes = "openid profile offline_access api1.read downstream.read downstream.write";
  c.clients = [
    { client_id: "app", client_secret: "app-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: userScopes },
    { client_id: "ref-app", client_secret: "ref-app-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code"], scope: userScopes, access_token_format: "reference" },
    { client_id: "gateway", client_secret: "gateway-secret", grant_types: [GRANT, "client_credentials", "refresh_token"], scope: "api1.read downstream.read" },
    { client_id: "impersonator", client_secret: "impersonator-secret", grant_types: [GRANT], scope: "api1.read downstream.read downstream.write", token_exchange_allow_impersonation: true },
    { client_id: "service", client_secret: "service-secret", grant_types: ["client_credentials", GRANT], scope: "api1.read downstream.read" },
    { client_id: "ref-gateway", client_secret: "ref-gateway-secret", grant_types: [GRANT, "client_credentials"], scope: "downstream.read", access_token_format: "reference" },
    { client_id: "nope", client_secret: "nope-secret", grant_types: ["client_credentials"], scope: "downstream.read" },
    { client_id: "public", token_endpoint_auth_method: "none", redirect_uris: [CALLBACK], grant_types: ["authorization_code", GRANT], scope: "openid downstream.read" },
  ];
  return c;
}

const basic = (id: string) => `Basic ${Buffer.from(`${id}:${id}-secret`).toString("base64")}`;

describe("18 token exchange (RFC 8693)", () => {
  let host: TestHost;
  let offset = 0;
  const events: TesseraEvent[] = [];
  let alice: string;
  let bob: string;
  let aliceReference: string;

  before(async () => {
    host = await createTestHost(config(), { listen: true, clock: () => Date.now() + offset, events: (e) => events.push(e) });
    const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
    alice = (await codeFlow(app, { scope: "openid profile offline_access api1.read downstream.read downstream.write" })).access_token;
    bob = (await codeFlow(app, { scope: "openid api1.read downstream.read", username: "bob", password: "bob-password" })).access_token;
    const refApp = await discover(host, "ref-app", oidc.ClientSecretBasic("ref-app-secret"));
    aliceReference = (await codeFlow(refApp, { scope: "openid api1.read downstream.read" })).access_token;
  });
  after(() => host?.close());

  const post = (path: string, fields: Record<string, string> | URLSearchParams, client?: string, headers: Record<string, string> = {}) =>
    fetch(`${host.issuer}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(client ? { authorization: basic(client) } : {}), ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  const exchange = (fields: Record<string, string> | URLSearchParams, client = "gateway", headers: Record<string, string> = {}) => post("/connect/token", fields, client, headers);
  const clientToken = async (client: string) => ((await (await post("/connect/token", { grant_type: "client_credentials" }, client)).json()) as { access_token: string }).access_token;
  const ok = async (response: Response) => {
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 200, JSON.stringify(body));
    return body as { access_token: string; token_type: string; expires_in: number; scope: string; issued_token_type: string; refresh_token?: string };
  };
  const errorOf = async (response: Response) => {
    assert.equal(response.status, 400);
    return ((await response.json()) as { error: string }).error;
  };

  it("18 token exchange: discovery lists the grant type", async () => {
    const metadata = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as { grant_types_supported: string[] };
    assert.ok(metadata.grant_types_supported.includes(GRANT));
  });

  it("18 token exchange: delegation with the client's own actor token puts act { sub } in a token for one resource, with no refresh token", async () => {
    const body = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: await clientToken("gateway"), actor_token_type: ACCESS, audience: DOWNSTREAM }));
    assert.equal(body.issued_token_type, ACCESS);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.scope, "downstream.read", "within the subject token's, the client's and the resource's scopes");
    assert.equal(body.refresh_token, undefined);
    assert.ok(body.expires_in > 0);
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.sub, "1");
    assert.equal(claims.client_id, "gateway");
    assert.equal(claims.aud, DOWNSTREAM);
    assert.deepEqual(claims.act, { sub: "gateway" });
    assert.equal(typeof claims.sid, "string", "the new token continues the user's session");
  });

  it("18 token exchange: delegation with a client_credentials actor token, and nested act for a delegated subject token", async () => {
    const gatewayToken = await clientToken("gateway");
    const first = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: gatewayToken, actor_token_type: JWT, resource: DOWNSTREAM }));
    assert.deepEqual(decodeJwt(first.access_token).act, { sub: "gateway" });
    const serviceToken = await clientToken("service");
    const second = await ok(await exchange({ grant_type: GRANT, subject_token: first.access_token, subject_token_type: ACCESS, actor_token: serviceToken, actor_token_type: ACCESS }, "service"));
    const claims = decodeJwt(second.access_token);
    assert.equal(claims.sub, "1");
    assert.deepEqual(claims.act, { sub: "service", act: { sub: "gateway" } }, "the least recent actor is nested deepest (RFC 8693 §4.1)");
    assert.equal(second.scope, "downstream.read", "never wider than the subject token");
  });

  it("18 token exchange: impersonation only for clients allowed to", async () => {
    const refused = await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: DOWNSTREAM });
    assert.equal(await errorOf(refused), "invalid_request");
    const body = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator"));
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.sub, "1");
    assert.equal(claims.client_id, "impersonator");
    assert.equal(claims.act, undefined);
    assert.equal(body.scope, "downstream.read downstream.write");
  });

  it("18 token exchange: downscoping to a scope subset and one resource; wider scopes and unknown or several targets refused", async () => {
    const narrow = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, scope: "downstream.read" }, "impersonator"));
    assert.equal(narrow.scope, "downstream.read");
    assert.equal(decodeJwt(narrow.access_token).aud, DOWNSTREAM, "the audience follows the granted scope");
    const api1 = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: "urn:api1" }, "impersonator"));
    assert.equal(api1.scope, "api1.read");
    assert.equal(decodeJwt(api1.access_token).aud, "urn:api1");
    const base = { grant_type: GRANT, subject_token: bob, subject_token_type: ACCESS };
    assert.equal(await errorOf(await exchange({ ...base, scope: "downstream.write" }, "impersonator")), "invalid_scope", "bob's token lacks downstream.write");
    assert.equal(await errorOf(await exchange({ ...base, actor_token: await clientToken("gateway"), actor_token_type: ACCESS, scope: "api1.write" })), "invalid_scope", "neither the token nor the client has it");
    assert.equal(await errorOf(await exchange({ ...base, scope: "api1.read", audience: DOWNSTREAM }, "impersonator")), "invalid_scope", "a scope of another resource");
    assert.equal(await errorOf(await exchange({ ...base, audience: "https://unknown.test" }, "impersonator")), "invalid_target");
    assert.equal(await errorOf(await exchange({ ...base, resource: "not a uri" }, "impersonator")), "invalid_target");
    const two = new URLSearchParams({ ...base });
    two.append("audience", "urn:api1");
    two.append("audience", DOWNSTREAM);
    assert.equal(await errorOf(await exchange(two, "impersonator")), "invalid_target", "one API resource per exchange");
  });

  it("18 token exchange: a reference subject token of this server is accepted, but not as a JWT", async () => {
    const body = await ok(await exchange({ grant_type: GRANT, subject_token: aliceReference, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator"));
    assert.equal(decodeJwt(body.access_token).sub, "1");
    assert.equal(await errorOf(await exchange({ grant_type: GRANT, subject_token: aliceReference, subject_token_type: JWT }, "impersonator")), "invalid_request");
  });

  it("18 token exchange: malformed requests are invalid_request; clients that may not exchange get unauthorized_client", async () => {
    const base = { grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS };
    const cases: [Record<string, string>, string, string][] = [
      [{ grant_type: GRANT, subject_token_type: ACCESS }, "impersonator", "invalid_request"],
      [{ grant_type: GRANT, subject_token: alice }, "impersonator", "invalid_request"],
      [{ ...base, subject_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }, "impersonator", "invalid_request"],
      [{ ...base, requested_token_type: "urn:ietf:params:oauth:token-type:id_token" }, "impersonator", "invalid_request"],
      [{ ...base, actor_token_type: ACCESS }, "impersonator", "invalid_request"],
      [{ ...base, actor_token: "garbage" , actor_token_type: ACCESS }, "gateway", "invalid_request"],
      [{ ...base, subject_token: "not-a-token-of-ours" }, "impersonator", "invalid_request"],
      [base, "nope", "unauthorized_client"],
    ];
    for (const [fields, client, error] of cases) assert.equal(await errorOf(await exchange(fields, client)), error, JSON.stringify(fields));
    const publicClient = await fetch(`${host.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ ...base, client_id: "public" }).toString() });
    assert.equal(await errorOf(publicClient), "unauthorized_client");
  });

  it("18 token exchange: the result is DPoP-bound when the request carries a proof", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = await exportJWK(publicKey);
    const proof = await new SignJWT({ htm: "POST", htu: `${host.issuer}/connect/token`, jti: randomUUID() }).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk }).setIssuedAt().sign(privateKey);
    const body = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator", { dpop: proof }));
    assert.equal(body.token_type, "DPoP");
    assert.deepEqual(decodeJwt(body.access_token).cnf, { jkt: await calculateJwkThumbprint(jwk) });
  });

  it("18 token exchange: each exchange emits token.exchanged", async () => {
    const gatewayToken = await clientToken("gateway");
    events.length = 0;
    await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: gatewayToken, actor_token_type: ACCESS, audience: DOWNSTREAM }));
    const event = events.find((e) => e.type === "token.exchanged");
    assert.ok(event);
    const { at: _at, ...rest } = event as TesseraEvent & { at: string };
    assert.deepEqual(rest, { type: "token.exchanged", clientId: "gateway", sub: "1", subjectClientId: "app", actor: "gateway", impersonation: false, audience: DOWNSTREAM, scope: "downstream.read", tokenType: "Bearer" });
    assert.ok(!JSON.stringify(events).includes(alice), "no token in events");
  });

  it("18 token exchange: @tessera/api's validator at the downstream API accepts the exchanged token and refuses one for another audience", async () => {
    const validator = createTokenValidator({ issuer: host.issuer, audience: DOWNSTREAM, requiredScopes: ["downstream.read"] });
    const gatewayToken = await clientToken("gateway");
    const exchanged = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: gatewayToken, actor_token_type: ACCESS, audience: DOWNSTREAM }));
    const call = (token: string) => validator.validate(new Request(`${DOWNSTREAM}/orders`, { headers: { authorization: `Bearer ${token}` } }));
    const result = await call(exchanged.access_token);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.claims.sub, "1");
    assert.deepEqual(result.claims.act, { sub: "gateway" });
    const forApi1 = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: "urn:api1" }, "impersonator"));
    assert.equal((await call(forApi1.access_token)).ok, false);
  });

  it("18 token exchange: an exchanged reference token carries act through introspection to @tessera/api", async () => {
    const actorToken = await clientToken("ref-gateway");
    const exchanged = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: actorToken, actor_token_type: ACCESS, audience: DOWNSTREAM }, "ref-gateway"));
    assert.ok(!exchanged.access_token.includes("."), "a reference token");
    const validator = createTokenValidator({ issuer: host.issuer, audience: DOWNSTREAM, requiredScopes: ["downstream.read"], introspection: { clientId: DOWNSTREAM, clientSecret: "downstream-secret", cacheTtl: 0 } });
    const result = await validator.validate(new Request(`${DOWNSTREAM}/orders`, { headers: { authorization: `Bearer ${exchanged.access_token}` } }));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.claims.sub, "1");
    assert.equal(result.claims.client_id, "ref-gateway");
    assert.deepEqual(result.claims.act, { sub: "ref-gateway" });
  });

  it("18 token exchange: openid-client performs the exchange as a generic grant", async () => {
    const gateway = await discover(host, "gateway", oidc.ClientSecretBasic("gateway-secret"));
    const tokens = await oidc.genericGrantRequest(gateway, GRANT, { subject_token: alice, subject_token_type: ACCESS, actor_token: await clientToken("gateway"), actor_token_type: ACCESS, audience: DOWNSTREAM });
    assert.equal(tokens.issued_token_type, ACCESS);
    assert.equal(tokens.scope, "downstream.read");
  });

  it("18 token exchange: a revoked subject token is refused with invalid_request; the exchanged token is revocable by its client", async () => {
    const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
    const token = (await codeFlow(app, { scope: "openid downstream.read" })).access_token;
    const exchanged = await ok(await exchange({ grant_type: GRANT, subject_token: token, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator"));
    assert.equal((await post("/connect/revocation", { token }, "app")).status, 200);
    assert.equal(await errorOf(await exchange({ grant_type: GRANT, subject_token: token, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator")), "invalid_request");
    // The exchanged token is revocable too: its client revokes it.
    assert.equal((await post("/connect/revocation", { token: exchanged.access_token }, "impersonator")).status, 200);
    assert.equal(await host.provider.validateAccessToken(exchanged.access_token), undefined);
  });

  it("18 token exchange: the new token never outlives the subject token, and an expired subject token is refused with invalid_request", async () => {
    offset = 3000 * 1000;
    try {
      const body = await ok(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator"));
      assert.ok(body.expires_in <= 600, `expires_in ${body.expires_in}`);
      assert.ok(decodeJwt(body.access_token).exp! <= decodeJwt(alice).exp!);
      offset = 3700 * 1000;
      assert.equal(await errorOf(await exchange({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, audience: DOWNSTREAM }, "impersonator")), "invalid_request");
    } finally {
      offset = 0;
    }
  });
});

describe("18 token exchange policy and may_act", () => {
  const ISSUER = "https://exchange.test";
  let provider: Provider;
  const policyCalls: { client: string; kind: string; audience?: string }[] = [];
  /** A test-only grant that mints a client token carrying `may_act` (RFC 8693 §4.4). */
  const mint: ExtensionGrant<{ mayAct: string }> = {
    async validate(request) {
      return { mayAct: request.params.get("may_act_sub") ?? "gateway" };
    },
    issue: (v, request) => request.issueTokens({ subject: "batch-user", scopes: ["downstream.read"], ...(v.mayAct === "none" ? {} : { mayAct: { sub: v.mayAct } }) }),
  };
  before(() => {
    provider = createProvider({
      issuer: ISSUER,
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      apiScopes: [{ name: "api1.read" }, { name: "downstream.read" }],
      apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }, { name: DOWNSTREAM, scopes: ["downstream.read"] }],
      clients: [
        { client_id: "minter", client_secret: "minter-secret", grant_types: ["urn:test:mint"], scope: "downstream.read" },
        { client_id: "gateway", client_secret: "gateway-secret", grant_types: [GRANT, "client_credentials"], scope: "api1.read downstream.read" },
        { client_id: "service", client_secret: "service-secret", grant_types: ["client_credentials", GRANT], scope: "api1.read downstream.read" },
        { client_id: "bound", client_secret: "bound-secret", grant_types: [GRANT, "client_credentials"], scope: "downstream.read", tls_client_certificate_bound_access_tokens: true },
      ],
      mtls: {},
      grants: { "urn:test:mint": mint },
      tokenExchange: {
        policy(context) {
          policyCalls.push({ client: context.client.clientId, kind: context.kind, ...(context.audience ? { audience: context.audience } : {}) });
          if (context.client.clientId === "gateway" && context.audience === "urn:api1") return { deny: "the gateway may only call the downstream API" };
          return { audience: context.audience ?? DOWNSTREAM, claims: { route: "/orders", act: { sub: "forged" }, sub: "forged", iss: "https://evil.test" } };
        },
      },
    });
  });
  after(() => provider.close());

  const token = async (fields: Record<string, string>, client: string, certificate?: X509Certificate) => {
    const response = await provider.fetch(
      new Request(`${ISSUER}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client) }, body: new URLSearchParams(fields).toString() }),
      certificate ? { clientCertificate: { certificate, chainVerified: false }, mtlsListener: true } : undefined,
    );
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  it("18 token exchange: the policy picks the audience, maps claims and denies with invalid_target", async () => {
    const subject = (await token({ grant_type: "urn:test:mint" }, "minter")).body.access_token!;
    const actor = (await token({ grant_type: "client_credentials" }, "gateway")).body.access_token!;
    const exchanged = await token({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, actor_token: actor, actor_token_type: ACCESS }, "gateway");
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
    const claims = decodeJwt(exchanged.body.access_token!);
    assert.equal(claims.aud, DOWNSTREAM, "the policy's default audience");
    assert.equal(claims.route, "/orders");
    assert.deepEqual(claims.act, { sub: "gateway" }, "the policy cannot forge act");
    assert.equal(claims.sub, "batch-user");
    assert.equal(claims.iss, ISSUER);
    assert.deepEqual(policyCalls.at(-1), { client: "gateway", kind: "delegation" });
    const denied = await token({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, actor_token: actor, actor_token_type: ACCESS, audience: "urn:api1" }, "gateway");
    assert.equal(denied.status, 400);
    assert.equal(denied.body.error, "invalid_target");
    assert.equal(denied.body.error_description, "the gateway may only call the downstream API");
  });

  it("18 token exchange: may_act in the subject token names the only actor allowed", async () => {
    const subject = (await token({ grant_type: "urn:test:mint", may_act_sub: "gateway" }, "minter")).body.access_token!;
    const service = (await token({ grant_type: "client_credentials" }, "service")).body.access_token!;
    const refused = await token({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, actor_token: service, actor_token_type: ACCESS }, "service");
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, "invalid_request");
    const gateway = (await token({ grant_type: "client_credentials" }, "gateway")).body.access_token!;
    assert.equal((await token({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, actor_token: gateway, actor_token_type: ACCESS }, "gateway")).status, 200);
  });

  it("18 token exchange: a client with certificate-bound tokens gets the exchanged token bound to its certificate (RFC 8705 §3)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-exchange-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "1", "-subj", "/CN=bound"], { cwd: dir, stdio: "ignore" });
      const certificate = new X509Certificate(readFileSync(join(dir, "c.pem")));
      const subject = (await token({ grant_type: "urn:test:mint", may_act_sub: "none" }, "minter")).body.access_token!;
      const actor = (await token({ grant_type: "client_credentials" }, "bound", certificate)).body.access_token!;
      const fields = { grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, actor_token: actor, actor_token_type: ACCESS };
      const exchanged = await token(fields, "bound", certificate);
      assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
      assert.deepEqual(decodeJwt(exchanged.body.access_token!).cnf, { "x5t#S256": certificateThumbprint(certificate) });
      assert.equal(exchanged.body.token_type, "Bearer");
      assert.equal((await token(fields, "bound")).body.error, "invalid_request", "without its certificate");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("18 token exchange: tokenExchange.enabled false removes the grant", async () => {
    const off = createProvider({ issuer: ISSUER, store: createMemoryStore(), dataKey: randomBytes(32), clients: [], tokenExchange: { enabled: false } });
    try {
      assert.ok(!off.metadata().grant_types_supported?.includes(GRANT));
    } finally {
      await off.close();
    }
    assert.throws(() => createProvider({ issuer: ISSUER, store: createMemoryStore(), dataKey: randomBytes(32), clients: [], grants: { [GRANT]: mint } }), /built in/);
  });
});
