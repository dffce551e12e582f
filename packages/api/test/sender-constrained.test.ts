import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTokenValidator, type TokenValidatorOptions } from "@tessera/api";
import { accessTokenHash, certificateThumbprint } from "@tessera/protocol";
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/**
 * A minimal local issuer (discovery + JWKS) that mints RFC 9068 tokens with `cnf` confirmations, so the
 * API-side checks are tested before the provider issues bound tokens itself.
 */
describe("sender-constrained tokens (DPoP, mTLS)", () => {
  let server: Server;
  let issuer: string;
  let signingKey: CryptoKey;
  let proofKey: CryptoKey;
  let proofJwk: JWK;
  let jkt: string;
  let otherProofKey: CryptoKey;
  let otherProofJwk: JWK;
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
    jkt = await calculateJwkThumbprint(proofJwk);
    const other = await generateKeyPair("ES256", { extractable: true });
    otherProofKey = other.privateKey;
    otherProofJwk = await exportJWK(other.publicKey);
  });
  after(() => server.close());

  const accessToken = (cnf: Record<string, string>) =>
    new SignJWT({ scope: "api1.read", client_id: "c", cnf })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
      .setIssuer(issuer)
      .setAudience("urn:api1")
      .setSubject("c")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(signingKey);
  const proof = (token: string, overrides: { htm?: string; htu?: string; iat?: number; jti?: string; ath?: string; nonce?: string; key?: CryptoKey; jwk?: JWK; alg?: string; typ?: string } = {}) =>
    new SignJWT({ htm: overrides.htm ?? "GET", htu: overrides.htu ?? url, jti: overrides.jti ?? crypto.randomUUID(), ath: overrides.ath ?? accessTokenHash(token), ...(overrides.nonce ? { nonce: overrides.nonce } : {}) })
      .setProtectedHeader({ alg: overrides.alg ?? "ES256", typ: overrides.typ ?? "dpop+jwt", jwk: overrides.jwk ?? proofJwk })
      .setIssuedAt(overrides.iat ?? Math.floor(Date.now() / 1000))
      .sign(overrides.key ?? proofKey);
  const validator = (extra: Partial<TokenValidatorOptions> = {}) => createTokenValidator({ issuer, audience: "urn:api1", dpop: {}, ...extra });
  const dpopRequest = (token: string, proofValue?: string, scheme = "DPoP", target = url) =>
    new Request(target, { headers: { authorization: `${scheme} ${token}`, ...(proofValue ? { dpop: proofValue } : {}) } });

  it("accepts a DPoP-bound token with a valid proof, as tokenType DPoP", async () => {
    const token = await accessToken({ jkt });
    const result = await validator().validate(dpopRequest(token, await proof(token)));
    assert.equal(result.ok, true);
    if (result.ok) assert.equal(result.tokenType, "DPoP");
  });

  it("17.f1 DPoP clock leeway: a proof with iat 8 s ahead or nbf 2 s ahead is accepted (FAPI 2.0 SP §5.3.2.1-14), 20 s ahead only with dpop.clockTolerance 30", async () => {
    const token = await accessToken({ jkt });
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await validator().validate(dpopRequest(token, await proof(token, { iat: now + 8 })))).ok, true);
    const nbf = await new SignJWT({ htm: "GET", htu: url, jti: crypto.randomUUID(), ath: accessTokenHash(token), nbf: now + 2 })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: proofJwk })
      .setIssuedAt(now)
      .sign(proofKey);
    assert.equal((await validator().validate(dpopRequest(token, nbf))).ok, true);
    const ahead = await validator().validate(dpopRequest(token, await proof(token, { iat: now + 20 })));
    assert.equal(ahead.ok, false);
    if (!ahead.ok) assert.equal(ahead.error, "invalid_dpop_proof");
    assert.equal((await validator({ dpop: { clockTolerance: 30 } }).validate(dpopRequest(token, await proof(token, { iat: now + 20 })))).ok, true);
  });

  it("refuses the bad-proof list with invalid_dpop_proof or invalid_token", async () => {
    const token = await accessToken({ jkt });
    const v = validator();
    const now = Math.floor(Date.now() / 1000);
    const privateJwk = await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey);
    const cases: [string, Request][] = [
      ["Bearer scheme for a bound token", dpopRequest(token, await proof(token), "Bearer")],
      ["no proof", dpopRequest(token)],
      ["two proofs", dpopRequest(token, `${await proof(token)}, ${await proof(token)}`)],
      ["wrong htm", dpopRequest(token, await proof(token, { htm: "POST" }))],
      ["wrong htu", dpopRequest(token, await proof(token, { htu: "https://api.test/other" }))],
      ["stale iat", dpopRequest(token, await proof(token, { iat: now - 3600 }))],
      ["future iat", dpopRequest(token, await proof(token, { iat: now + 3600 }))],
      ["ath of another token", dpopRequest(token, await proof(token, { ath: accessTokenHash("other") }))],
      ["another key than cnf.jkt", dpopRequest(token, await proof(token, { key: otherProofKey, jwk: otherProofJwk }))],
      ["private key material in jwk", dpopRequest(token, await proof(token, { jwk: privateJwk, key: otherProofKey }))],
      ["wrong typ", dpopRequest(token, await proof(token, { typ: "JWT" }))],
      ["HS256 proof", dpopRequest(token, await proof(token, { alg: "HS256", key: new TextEncoder().encode("x".repeat(32)) as never }))],
      ["garbage proof", dpopRequest(token, "not-a-jwt")],
    ];
    for (const [name, request] of cases) {
      const result = await v.validate(request);
      assert.equal(result.ok, false, name);
      if (!result.ok) {
        assert.equal(result.status, 401, name);
        assert.match(result.wwwAuthenticate, /DPoP/, name);
      }
    }
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk: proofJwk })).toString("base64url");
    const body = Buffer.from(JSON.stringify({ htm: "GET", htu: url, jti: "n", iat: now, ath: accessTokenHash(token) })).toString("base64url");
    assert.equal((await v.validate(dpopRequest(token, `${header}.${body}.`))).ok, false, "alg none");
  });

  it("refuses a replayed proof", async () => {
    const token = await accessToken({ jkt });
    const v = validator();
    const once = await proof(token);
    assert.equal((await v.validate(dpopRequest(token, once))).ok, true);
    const replay = await v.validate(dpopRequest(token, once));
    assert.equal(replay.ok, false);
    if (!replay.ok) assert.equal(replay.error, "invalid_dpop_proof");
  });

  it("ignores the query when matching htu", async () => {
    const token = await accessToken({ jkt });
    assert.equal((await validator().validate(dpopRequest(token, await proof(token), "DPoP", `${url}?page=2`))).ok, true);
  });

  it("asks for a nonce when required, and accepts the retry carrying it", async () => {
    const token = await accessToken({ jkt });
    const v = validator({ dpop: { requireNonce: true } });
    const first = await v.validate(dpopRequest(token, await proof(token)));
    assert.equal(first.ok, false);
    if (first.ok) return;
    assert.equal(first.error, "use_dpop_nonce");
    assert.ok(first.dpopNonce);
    assert.equal((await v.validate(dpopRequest(token, await proof(token, { nonce: "forged.nonce" })))).ok, false);
    const retry = await v.validate(dpopRequest(token, await proof(token, { nonce: first.dpopNonce })));
    assert.equal(retry.ok, true);
  });

  it("requires DPoP when configured, and refuses the DPoP scheme for unbound tokens", async () => {
    const bearerToken = await accessToken({});
    const strict = validator({ dpop: { required: true } });
    const bearer = await strict.validate(new Request(url, { headers: { authorization: `Bearer ${bearerToken}` } }));
    assert.equal(bearer.ok, false);
    if (!bearer.ok) assert.match(bearer.wwwAuthenticate, /^DPoP/);
    assert.equal((await validator().validate(dpopRequest(bearerToken, await proof(bearerToken)))).ok, false);
  });

  describe("certificate-bound tokens (RFC 8705)", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-cert-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const makeCertificate = (name: string) => {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.pem`), "-days", "1", "-subj", `/CN=${name}`], { stdio: "ignore" });
      return readFileSync(join(dir, `${name}.pem`), "utf8");
    };

    it("accepts the bound certificate and refuses another or none", async () => {
      const pem = makeCertificate("client");
      const otherPem = makeCertificate("other");
      const thumbprint = certificateThumbprint(pem);
      assert.equal(thumbprint, createHash("sha256").update(new X509Certificate(pem).raw).digest("base64url"));
      const token = await accessToken({ "x5t#S256": thumbprint });
      const v = createTokenValidator({ issuer, audience: "urn:api1" });
      const bearer = new Request(url, { headers: { authorization: `Bearer ${token}` } });
      assert.equal((await v.validate(bearer, { clientCertificate: pem })).ok, true);
      assert.equal((await v.validate(bearer, { clientCertificate: new X509Certificate(pem) })).ok, true);
      assert.equal((await v.validate(bearer, { clientCertificate: otherPem })).ok, false);
      assert.equal((await v.validate(bearer)).ok, false);
      assert.equal((await v.validate(bearer, { clientCertificate: "not a certificate" })).ok, false);
    });
  });
});
