import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTokenValidator, type TokenValidatorOptions } from "@tessera/api";
import { createTestHost, type TestHost } from "@tessera/testing";
import { SignJWT, generateKeyPair, type JSONWebKeySet } from "jose";

/** The Tessera the tests validate against: JWT and reference clients, two APIs. */
function config() {
  return {
    apiScopes: [{ name: "api1.read" }, { name: "api1.write" }, { name: "api2" }],
    apiResources: [
      { name: "urn:api1", scopes: ["api1.read", "api1.write"], secret: "api1-secret" },
      { name: "https://api2.test", scopes: ["api2"], secret: "api2-secret" },
    ],
    clients: [
      { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials" as const], scope: "api1.read api1.write api2" },
      { client_id: "narrow", client_secret: "narrow-secret", grant_types: ["client_credentials" as const], scope: "api1.write" },
      { client_id: "ref", client_secret: "ref-secret", grant_types: ["client_credentials" as const], scope: "api1.read", access_token_format: "reference" as const },
    ],
  };
}

async function tokenFrom(host: TestHost, client: string, extra: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${host.issuer}/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString("base64")}` },
    body: new URLSearchParams({ grant_type: "client_credentials", ...extra }).toString(),
  });
  const body = (await response.json()) as { access_token: string };
  return body.access_token;
}

const request = (token?: string, scheme = "Bearer") => new Request("https://api.test/data", { headers: token ? { authorization: `${scheme} ${token}` } : {} });

describe("createTokenValidator against a running Tessera", () => {
  let host: TestHost;
  let other: TestHost;
  let jwksFetches = 0;
  let introspections = 0;
  const countingFetch: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith("/jwks")) jwksFetches++;
    if (url.endsWith("/introspect")) introspections++;
    return fetch(input, init);
  };
  const validator = (extra: Partial<TokenValidatorOptions> = {}) =>
    createTokenValidator({ issuer: host.issuer, audience: "urn:api1", requiredScopes: ["api1.read"], introspection: { clientId: "urn:api1", clientSecret: "api1-secret", cacheTtl: 0 }, fetch: countingFetch, ...extra });

  before(async () => {
    host = await createTestHost(config(), { listen: true });
    other = await createTestHost(config(), { listen: true });
  });
  after(async () => {
    await host.close();
    await other.close();
  });

  it("accepts a valid JWT and reports its claims and scopes", async () => {
    const result = await validator().validate(request(await tokenFrom(host, "worker")));
    assert.equal(result.ok, true);
    if (!result.ok) return;
    assert.equal(result.tokenType, "Bearer");
    assert.equal(result.claims.client_id, "worker");
    assert.deepEqual(result.scopes, ["api1.read", "api1.write", "api2"]);
  });

  it("answers a missing token with 401 and bare Bearer and DPoP challenges", async () => {
    const result = await validator().validate(request());
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.status, 401);
    assert.match(result.wwwAuthenticate, /^Bearer, DPoP algs="[^"]+"$/);
  });

  it("refuses expired and not-yet-valid tokens (clock skew aside)", async () => {
    const token = await tokenFrom(host, "worker");
    const late = await validator({ clock: () => Date.now() + 3600_000 + 120_000 }).validate(request(token));
    assert.equal(late.ok, false);
    if (!late.ok) assert.match(late.wwwAuthenticate, /error="invalid_token"/);
    const early = await validator({ clock: () => Date.now() - 600_000 }).validate(request(token));
    assert.equal(early.ok, false);
    const skewed = await validator({ clock: () => Date.now() + 3600_000 + 30_000 }).validate(request(token));
    assert.equal(skewed.ok, true, "within the 60 s tolerance");
  });

  it("refuses a token of another issuer and a token for another audience", async () => {
    assert.equal((await validator().validate(request(await tokenFrom(other, "worker")))).ok, false);
    const forApi2 = await tokenFrom(host, "worker", { resource: "https://api2.test" });
    const result = await validator().validate(request(forApi2));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.status, 401);
  });

  it("answers a missing scope with 403 insufficient_scope and the scope needed", async () => {
    const result = await validator().validate(request(await tokenFrom(host, "narrow")));
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.status, 403);
    assert.equal(result.error, "insufficient_scope");
    assert.match(result.wwwAuthenticate, /scope="api1.read"/);
  });

  it("refuses alg none and HS256 signed with the public key", async () => {
    const token = await tokenFrom(host, "worker");
    const [, payload] = token.split(".");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url")}.${payload}.`;
    assert.equal((await validator().validate(request(none))).ok, false);
    const jwks = (await (await fetch(`${host.issuer}/.well-known/openid-configuration/jwks`)).json()) as JSONWebKeySet;
    const publicKey = jwks.keys[0]!;
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString()) as Record<string, unknown>;
    const confused = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: publicKey.kid }).sign(new TextEncoder().encode(JSON.stringify(publicKey)));
    const result = await validator().validate(request(confused));
    assert.equal(result.ok, false);
  });

  it("refetches the JWKS once for an unknown key, then refuses; and rate-limits refetches", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const forged = await new SignJWT({ scope: "api1.read", client_id: "worker" })
      .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: "not-a-tessera-key" })
      .setIssuer(host.issuer)
      .setAudience("urn:api1")
      .setSubject("worker")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    const eager = validator({ jwksCooldown: 0 });
    assert.equal((await eager.validate(request(await tokenFrom(host, "worker")))).ok, true);
    const before = jwksFetches;
    assert.equal((await eager.validate(request(forged))).ok, false);
    assert.equal(jwksFetches - before, 1, "one refetch for the unknown kid");
    const limited = validator();
    assert.equal((await limited.validate(request(await tokenFrom(host, "worker")))).ok, true);
    const start = jwksFetches;
    for (let i = 0; i < 3; i++) assert.equal((await limited.validate(request(forged))).ok, false);
    assert.equal(jwksFetches - start, 0, "within the cooldown no refetch happens");
  });

  it("accepts an active reference token by introspection and refuses it once revoked", async () => {
    const token = await tokenFrom(host, "ref");
    assert.doesNotMatch(token, /\./);
    const result = await validator().validate(request(token));
    assert.equal(result.ok, true);
    if (result.ok) assert.equal(result.claims.client_id, "ref");
    await fetch(`${host.issuer}/connect/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("ref:ref-secret").toString("base64")}` },
      body: new URLSearchParams({ token }).toString(),
    });
    assert.equal((await validator().validate(request(token))).ok, false);
  });

  it("caches introspection results briefly", async () => {
    const token = await tokenFrom(host, "ref");
    const cached = validator({ introspection: { clientId: "urn:api1", clientSecret: "api1-secret", cacheTtl: 60 } });
    const start = introspections;
    for (let i = 0; i < 3; i++) assert.equal((await cached.validate(request(token))).ok, true);
    assert.equal(introspections - start, 1);
  });

  it("refuses malformed headers and reference tokens when introspection is not configured", async () => {
    assert.equal((await validator().validate(new Request("https://api.test/", { headers: { authorization: "Basic abc" } }))).ok, false);
    assert.equal((await validator().validate(new Request("https://api.test/", { headers: { authorization: "Bearer a b" } }))).ok, false);
    const noIntrospection = createTokenValidator({ issuer: host.issuer, audience: "urn:api1" });
    assert.equal((await noIntrospection.validate(request("opaque-token"))).ok, false);
  });
});
