import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { ProtocolError, createMemoryStore, createProvider, type ExtensionGrant, type GrantClient, type Provider, type TesseraEvent } from "@tessera/server";
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from "jose";

const ISSUER = "https://ext.test";
const GRANT = "urn:example:grant:partner-assertion";

/** What a partner system vouches for: a shared test value per user (a stand-in for a signed assertion). */
const PARTNER_ASSERTIONS: Record<string, string> = { "assertion-for-alice": "alice", "assertion-for-bob": "bob" };

interface PartnerValidated {
  subject: string;
  scopes: string[];
  audience?: string;
}

/** An extension grant written as an embedder would, against the public API only. */
function partnerGrant(seen: GrantClient[]): ExtensionGrant<PartnerValidated> {
  return {
    repeatableParameters: ["audience"],
    async validate(request) {
      seen.push(request.client);
      const assertion = request.params.get("assertion");
      if (!assertion) throw new ProtocolError("invalid_request", "assertion is missing");
      if (assertion === "explode") throw new Error("a bug in the grant");
      const subject = PARTNER_ASSERTIONS[assertion];
      if (!subject) throw new ProtocolError("invalid_grant", "the assertion is not valid");
      const audiences = request.params.getAll("audience");
      if (audiences.length > 1) throw new ProtocolError("invalid_target", "one audience at a time");
      const audience = audiences[0];
      if (audience !== undefined && !request.apiResources.some((r) => r.name === audience)) throw new ProtocolError("invalid_target", `unknown audience ${audience}`);
      const scopes = (request.params.get("scope") ?? "api1.read").split(" ");
      return { subject, scopes, audience };
    },
    issue(validated, request) {
      return request.issueTokens({ subject: validated.subject, scopes: validated.scopes, audience: validated.audience, claims: { partner: "acme", iss: "https://evil.test", sub: "root" }, lifetime: 120 });
    },
  };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

describe("18 extension grant", () => {
  let provider: Provider;
  const seenClients: GrantClient[] = [];
  const events: TesseraEvent[] = [];
  before(() => {
    provider = createProvider({
      issuer: ISSUER,
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      apiScopes: [{ name: "api1.read" }, { name: "api1.write" }],
      apiResources: [{ name: "urn:api1", scopes: ["api1.read", "api1.write"] }],
      clients: [
        { client_id: "partner", client_secret: "partner-secret", grant_types: [GRANT], scope: "api1.read", partner_tier: "gold" },
        { client_id: "other", client_secret: "other-secret", grant_types: ["client_credentials"], scope: "api1.read" },
      ],
      grants: { [GRANT]: partnerGrant(seenClients) },
      events: (event) => events.push(event),
    });
  });
  after(() => provider.close());

  const token = (fields: Record<string, string> | URLSearchParams, client = "partner", headers: Record<string, string> = {}) =>
    provider.fetch(
      new Request(`${ISSUER}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client, `${client}-secret`), ...headers },
        body: new URLSearchParams(fields).toString(),
      }),
    );

  it("18 extension grant: a grant defined outside the library issues tokens through the public API", async () => {
    const response = await token({ grant_type: GRANT, assertion: "assertion-for-alice", audience: "urn:api1" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("cache-control"), "no-store");
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.scope, "api1.read");
    assert.equal(body.expires_in, 120);
    assert.equal(body.refresh_token, undefined);
    const claims = decodeJwt(String(body.access_token));
    assert.equal(claims.sub, "alice");
    assert.equal(claims.iss, ISSUER, "a grant cannot override protocol claims");
    assert.equal(claims.client_id, "partner");
    assert.equal(claims.aud, "urn:api1");
    assert.equal(claims.partner, "acme");
    assert.equal((await provider.validateAccessToken(String(body.access_token)))?.sub, "alice");
    // The grant saw a read-only client view without the secret, with its extension metadata.
    const client = seenClients.at(-1)!;
    assert.equal(client.clientId, "partner");
    assert.equal(client.metadata.partner_tier, "gold");
    assert.equal("client_secret" in client.metadata, false);
    assert.ok(Object.isFrozen(client));
    const issued = events.find((e) => e.type === "token.issued" && e.grantType === GRANT);
    assert.deepEqual(issued && { ...issued, at: undefined }, { type: "token.issued", grantType: GRANT, clientId: "partner", sub: "alice", scope: "api1.read", tokenType: "Bearer", refreshToken: false, at: undefined });
  });

  it("18 extension grant: a user token it issues is revocable at the revocation endpoint", async () => {
    const body = (await (await token({ grant_type: GRANT, assertion: "assertion-for-bob" })).json()) as { access_token: string };
    assert.equal((await provider.validateAccessToken(body.access_token))?.sub, "bob");
    const revoked = await provider.fetch(
      new Request(`${ISSUER}/connect/revocation`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("partner", "partner-secret") }, body: new URLSearchParams({ token: body.access_token }).toString() }),
    );
    assert.equal(revoked.status, 200);
    assert.equal(await provider.validateAccessToken(body.access_token), undefined);
  });

  it("18 extension grant: tokens are DPoP-bound when the request carries a proof", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = await exportJWK(publicKey);
    const proof = await new SignJWT({ htm: "POST", htu: `${ISSUER}/connect/token`, jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
      .setIssuedAt()
      .sign(privateKey);
    const response = await token({ grant_type: GRANT, assertion: "assertion-for-alice" }, "partner", { dpop: proof });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { access_token: string; token_type: string };
    assert.equal(body.token_type, "DPoP");
    assert.deepEqual(decodeJwt(body.access_token).cnf, { jkt: await calculateJwkThumbprint(jwk) });
  });

  it("18 extension grant: discovery lists it with the built-in grants", async () => {
    const metadata = (await (await provider.fetch(new Request(`${ISSUER}/.well-known/openid-configuration`))).json()) as { grant_types_supported: string[] };
    for (const grantType of ["authorization_code", "refresh_token", "client_credentials", GRANT]) assert.ok(metadata.grant_types_supported.includes(grantType), grantType);
  });

  it("18 extension grant: errors it throws become RFC 6749 §5.2 responses; a bug is a server_error", async () => {
    const cases: [Record<string, string>, number, string][] = [
      [{ grant_type: GRANT }, 400, "invalid_request"],
      [{ grant_type: GRANT, assertion: "forged" }, 400, "invalid_grant"],
      [{ grant_type: GRANT, assertion: "assertion-for-alice", audience: "urn:nope" }, 400, "invalid_target"],
      [{ grant_type: GRANT, assertion: "assertion-for-alice", scope: "api1.write" }, 400, "invalid_scope"],
      [{ grant_type: GRANT, assertion: "explode" }, 500, "server_error"],
    ];
    for (const [fields, status, error] of cases) {
      const response = await token(fields);
      assert.equal(response.status, status, error);
      assert.equal(((await response.json()) as { error: string }).error, error);
    }
  });

  it("18 extension grant: only its declared parameters may repeat", async () => {
    const twoAudiences = new URLSearchParams([["grant_type", GRANT], ["assertion", "assertion-for-alice"], ["audience", "urn:api1"], ["audience", "urn:api2"]]);
    assert.equal(((await (await token(twoAudiences)).json()) as { error: string }).error, "invalid_target", "the grant sees both values");
    const twoAssertions = new URLSearchParams([["grant_type", GRANT], ["assertion", "assertion-for-alice"], ["assertion", "assertion-for-bob"]]);
    const refused = await token(twoAssertions);
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: string }).error, "invalid_request");
    const ccWithAudiences = new URLSearchParams([["grant_type", "client_credentials"], ["audience", "a"], ["audience", "b"]]);
    assert.equal(((await (await token(ccWithAudiences, "other")).json()) as { error: string }).error, "invalid_request", "built-in grants keep refusing repeats");
  });

  it("18 extension grant: a client that does not list it gets unauthorized_client", async () => {
    const response = await token({ grant_type: GRANT, assertion: "assertion-for-alice" }, "other");
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, "unauthorized_client");
    assert.equal((await token({ grant_type: "client_credentials" }, "other")).status, 200, "built-ins keep working");
  });

  it("18 extension grant: createProvider refuses to replace a built-in grant or a malformed one", () => {
    const options = { issuer: ISSUER, store: createMemoryStore(), dataKey: randomBytes(32), clients: [] };
    const grant = partnerGrant([]);
    for (const builtIn of ["authorization_code", "refresh_token", "client_credentials"]) {
      assert.throws(() => createProvider({ ...options, grants: { [builtIn]: grant } }), /built in/);
    }
    assert.throws(() => createProvider({ ...options, grants: { "bad name": grant } }), /not a grant type/);
    assert.throws(() => createProvider({ ...options, grants: { [GRANT]: { ...grant, repeatableParameters: ["client_id"] } } }), /repeatable/);
  });
});
