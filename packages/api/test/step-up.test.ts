import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { acrSatisfies, createTokenValidator, type TokenValidatorOptions } from "@tessera/api";
import { accessTokenHash } from "@tessera/protocol";
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/** RFC 9470 step-up challenges, against a minimal local issuer (discovery + JWKS) minting tokens with acr/auth_time. */
describe("20 RFC 9470 step-up at the resource server", () => {
  let server: Server;
  let issuer: string;
  let signingKey: CryptoKey;
  let proofKey: CryptoKey;
  let proofJwk: JWK;
  const url = "https://api.test/data";

  before(async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    signingKey = pair.privateKey;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(req.url === "/jwks" ? { keys: [publicJwk] } : { issuer, jwks_uri: `${issuer}/jwks` }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const proof = await generateKeyPair("ES256", { extractable: true });
    proofKey = proof.privateKey;
    proofJwk = await exportJWK(proof.publicKey);
  });
  after(() => server.close());

  const token = (claims: Record<string, unknown>) =>
    new SignJWT({ scope: "api1.read", client_id: "c", ...claims })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
      .setIssuer(issuer)
      .setAudience("urn:api1")
      .setSubject("alice")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(signingKey);
  const validator = (extra: Partial<TokenValidatorOptions>) => createTokenValidator({ issuer, audience: "urn:api1", ...extra });
  const bearer = (value: string) => new Request(url, { headers: { authorization: `Bearer ${value}` } });
  const now = () => Math.floor(Date.now() / 1000);

  test("20 RFC 9470: a token without the required acr gets 401 insufficient_user_authentication with acr_values", async () => {
    const result = await validator({ requiredAcr: "mfa" }).validate(bearer(await token({ acr: "pwd", auth_time: now() })));
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.status, 401);
    assert.equal(result.error, "insufficient_user_authentication");
    assert.match(result.wwwAuthenticate, /^Bearer error="insufficient_user_authentication", error_description="[^"]+", acr_values="mfa"/);
    // Both schemes are offered; the failure parameters go on the scheme the request used.
    assert.match(result.wwwAuthenticate, /, DPoP algs="[^"]+"$/);
    const none = await validator({ requiredAcr: ["mfa", "phr"] }).validate(bearer(await token({})));
    assert.equal(none.ok, false);
    if (!none.ok) assert.match(none.wwwAuthenticate, /acr_values="mfa phr"/);
  });

  test("20 RFC 9470: acr meets the requirement exactly or by rank (phr > mfa > pwd), and exact-only without a hierarchy", async () => {
    const phr = await token({ acr: "phr", auth_time: now() });
    assert.equal((await validator({ requiredAcr: "mfa" }).validate(bearer(phr))).ok, true);
    assert.equal((await validator({ requiredAcr: "mfa" }).validate(bearer(await token({ acr: "mfa" })))).ok, true);
    assert.equal((await validator({ requiredAcr: "phr" }).validate(bearer(await token({ acr: "mfa" })))).ok, false);
    assert.equal((await validator({ requiredAcr: "mfa", acrHierarchy: [] }).validate(bearer(phr))).ok, false);
    assert.equal((await validator({ requiredAcr: "urn:example:gold" }).validate(bearer(await token({ acr: "urn:example:gold" })))).ok, true);
    assert.equal((await validator({ requiredAcr: "urn:example:gold" }).validate(bearer(phr))).ok, false);
    assert.equal(acrSatisfies(["mfa"], ["mfa"]), false, "a non-string acr never satisfies");
  });

  test("20 RFC 9470: maxAge refuses an old or missing auth_time with max_age in the challenge", async () => {
    const old = await validator({ maxAge: 300 }).validate(bearer(await token({ acr: "mfa", auth_time: now() - 3600 })));
    assert.equal(old.ok, false);
    if (!old.ok) {
      assert.equal(old.status, 401);
      assert.match(old.wwwAuthenticate, /error="insufficient_user_authentication", error_description="[^"]+", max_age="300"/);
      assert.doesNotMatch(old.wwwAuthenticate, /acr_values/);
    }
    const missing = await validator({ maxAge: 300 }).validate(bearer(await token({ acr: "mfa" })));
    assert.equal(missing.ok, false);
    assert.equal((await validator({ maxAge: 300 }).validate(bearer(await token({ auth_time: now() - 10 })))).ok, true);
    const both = await validator({ maxAge: 60, requiredAcr: "phr" }).validate(bearer(await token({ acr: "pwd", auth_time: now() - 3600 })));
    assert.equal(both.ok, false);
    if (!both.ok) assert.match(both.wwwAuthenticate, /acr_values="phr", max_age="60"/);
  });

  test("20.m5 RFC 9470: maxAge is exact; the clock tolerance only forgives an auth_time slightly in the future", async () => {
    assert.equal((await validator({ maxAge: 0 }).validate(bearer(await token({ auth_time: now() - 30 })))).ok, false, "maxAge 0 does not accept 30 s");
    assert.equal((await validator({ maxAge: 60 }).validate(bearer(await token({ auth_time: now() - 90 })))).ok, false, "no 60 s added to maxAge");
    assert.equal((await validator({ maxAge: 60 }).validate(bearer(await token({ auth_time: now() + 30 })))).ok, true, "skew into the future is tolerated");
    assert.equal((await validator({ maxAge: 60 }).validate(bearer(await token({ auth_time: now() + 3600 })))).ok, false, "far in the future is not");
  });

  test("20 RFC 9470: the DPoP scheme carries the challenge for a DPoP-bound token", async () => {
    const jkt = await calculateJwkThumbprint(proofJwk);
    const access = await token({ acr: "pwd", auth_time: now(), cnf: { jkt } });
    const proof = await new SignJWT({ htm: "GET", htu: url, jti: crypto.randomUUID(), ath: accessTokenHash(access) })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: proofJwk })
      .setIssuedAt()
      .sign(proofKey);
    const result = await validator({ requiredAcr: "mfa", dpop: { required: true } }).validate(new Request(url, { headers: { authorization: `DPoP ${access}`, dpop: proof } }));
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.wwwAuthenticate, /^DPoP algs="[^"]+", error="insufficient_user_authentication", error_description="[^"]+", acr_values="mfa"$/);
  });

  test("20 RFC 9470: bad options are refused when the validator is made", () => {
    assert.throws(() => validator({ requiredAcr: "a b" }), TypeError);
    assert.throws(() => validator({ requiredAcr: 'x"' }), TypeError);
    assert.throws(() => validator({ maxAge: -1 }), TypeError);
  });
});
