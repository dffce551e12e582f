import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { createTokenValidator, toResponse } from "@tessera/api";
import { mtlsFetch } from "@tessera/client";
import { accessTokenHash } from "@tessera/protocol";
import { ConfigError, parseConfig } from "@tessera/host";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { makePki, type TestPki } from "./support/certs.ts";
import { pkce } from "./support/fixtures.ts";

const CALLBACK = "http://127.0.0.1/cb";

describe("review: mutual TLS, sender-constrained tokens at the provider, discovery", () => {
  let pki: TestPki;
  /** mTLS on, no certificate header. */
  let host: TestHost;
  /** A certificate header configured behind one trusted proxy at an address that is not the test's. */
  let direct: TestHost;
  /** A certificate header configured behind one trusted proxy (the test itself, at 127.0.0.1). */
  let proxied: TestHost;
  let dpopKey: { privateKey: CryptoKey; jwk: JWK };

  const mtlsFiles = () => ({ enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca });
  const config = (): TestHostConfig => ({
    admin: { role: "admin" },
    apiScopes: [{ name: "api1.read" }],
    apiResources: [{ name: "urn:api1", scopes: ["api1.read"], secret: "api1-secret" }],
    users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice", role: ["admin"] } }],
    clients: [
      { client_id: "tls-san", token_endpoint_auth_method: "tls_client_auth", tls_client_auth_san_dns: "client-a.test", grant_types: ["client_credentials"], scope: "api1.read tessera.admin", tls_client_certificate_bound_access_tokens: true },
      { client_id: "dpop-admin", client_secret: "dpop-admin-secret", grant_types: ["client_credentials"], scope: "tessera.admin api1.read", dpop_bound_access_tokens: true },
      { client_id: "mtls-spa", token_endpoint_auth_method: "none", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access", tls_client_certificate_bound_access_tokens: true },
    ],
  });

  before(async () => {
    pki = makePki();
    host = await createTestHost({ ...config(), mtls: mtlsFiles() }, { listen: true });
    direct = await createTestHost({ ...config(), trustedProxies: 1, trustedProxyAddresses: ["192.0.2.10"], mtls: { ...mtlsFiles(), clientCertificateHeader: "x-client-cert" } }, { listen: true });
    proxied = await createTestHost({ ...config(), trustedProxies: 1, mtls: { ...mtlsFiles(), clientCertificateHeader: "x-client-cert" } }, { listen: true });
    const pair = await generateKeyPair("ES256");
    dpopKey = { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) };
  });
  after(async () => {
    await host.close();
    await direct.close();
    await proxied.close();
    pki.cleanup();
  });

  const form = (body: Record<string, string>) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body).toString() });
  const withCert = (name: "a" | "b") => mtlsFetch({ ...pki.client(name), ca: pki.ca });
  const noCert = () => mtlsFetch({ ca: pki.ca } as never);
  const status = async (response: Response) => ({ status: response.status, error: ((await response.json().catch(() => ({}))) as { error?: string }).error });
  const proof = (htm: string, htu: string, accessToken?: string) =>
    new SignJWT({ htm, htu, jti: randomUUID(), ...(accessToken ? { ath: accessTokenHash(accessToken) } : {}) })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: dpopKey.jwk })
      .setIssuedAt()
      .sign(dpopKey.privateKey);
  /** A client-credentials request for tls-san carrying client-a's certificate in the configured header. */
  const headerCertRequest = (on: TestHost, url = `${on.issuer}/connect/token`, doFetch: typeof fetch = fetch) =>
    doFetch(url, { ...form({ grant_type: "client_credentials", client_id: "tls-san", scope: "api1.read" }), headers: { "content-type": "application/x-www-form-urlencoded", "x-client-cert": encodeURIComponent(pki.client("a").cert) } });

  test("2 certificate header from a direct, untrusted peer: no certificate-based authentication", async () => {
    assert.deepEqual(await status(await headerCertRequest(direct)), { status: 401, error: "invalid_client" });
  });

  test("2 certificate header on the mTLS listener: ignored, the TLS connection's certificate is the only source", async () => {
    for (const on of [direct, proxied]) {
      assert.deepEqual(await status(await headerCertRequest(on, `${on.mtlsUrl}/connect/token`, noCert())), { status: 401, error: "invalid_client" }, "no certificate on the connection");
      assert.deepEqual(await status(await headerCertRequest(on, `${on.mtlsUrl}/connect/token`, withCert("b"))), { status: 401, error: "invalid_client" }, "the connection's certificate wins");
    }
    // The connection's own certificate still works there.
    assert.equal((await withCert("a")(`${proxied.mtlsUrl}/connect/token`, form({ grant_type: "client_credentials", client_id: "tls-san", scope: "api1.read" }))).status, 200);
  });

  test("2 certificate header through a trusted proxy: honoured (and still checked against the client CA)", async () => {
    const response = await headerCertRequest(proxied);
    assert.equal(response.status, 200);
    const forged = await fetch(`${proxied.issuer}/connect/token`, { ...form({ grant_type: "client_credentials", client_id: "tls-san", scope: "api1.read" }), headers: { "content-type": "application/x-www-form-urlencoded", "x-client-cert": encodeURIComponent(pki.client("a-other-ca").cert) } });
    assert.equal(forged.status, 401);
  });

  test("2 forwarded-address headers on the mTLS listener are ignored too (its peers are clients, not the proxy)", async () => {
    const throttled = await createTestHost({ ...config(), trustedProxies: 1, clientAuthThrottling: { window: 60, maxPerClient: 100, maxPerAddress: 3 }, mtls: mtlsFiles() }, { listen: true });
    try {
      const attempt = (i: number) =>
        noCert()(`${throttled.mtlsUrl}/connect/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`nobody-${i}:wrong`).toString("base64")}`, "x-forwarded-for": `198.51.100.${i}` },
          body: "grant_type=client_credentials",
        });
      for (let i = 1; i <= 3; i++) assert.equal((await attempt(i)).status, 401);
      assert.equal((await attempt(4)).status, 429, "every attempt counts against the connection's address");
    } finally {
      await throttled.close();
    }
  });

  /** A client-credentials request for tls-san with the given raw certificate header lines (node:http, so repeated lines stay separate). */
  const rawCertRequest = (on: TestHost, values: string[]) =>
    new Promise<number>((resolveStatus, reject) => {
      const body = new URLSearchParams({ grant_type: "client_credentials", client_id: "tls-san", scope: "api1.read" }).toString();
      const req = httpRequest(`${on.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-client-cert": values.length === 1 ? values[0]! : values } }, (res) => {
        res.resume();
        res.on("end", () => resolveStatus(res.statusCode!));
      });
      req.on("error", reject);
      req.end(body);
    });
  const der = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ""), "base64");

  test("2.5 Forwarded and X-Forwarded-For: only the configured trustedProxyHeader is read, so a passed-through Forwarded cannot spoof the address", async () => {
    const throttling = { window: 60, maxPerClient: 100, maxPerAddress: 3 };
    const xff = await createTestHost({ ...config(), trustedProxies: 1, clientAuthThrottling: throttling, mtls: mtlsFiles() }, { listen: true });
    let rfc7239: TestHost | undefined;
    try {
      const attempt = (on: TestHost, i: number, headers: Record<string, string>) =>
        fetch(`${on.issuer}/connect/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`nobody-${i}:wrong`).toString("base64")}`, ...headers },
          body: "grant_type=client_credentials",
        });
      // The proxy appended the real address to X-Forwarded-For; the client's own Forwarded varies.
      for (let i = 1; i <= 3; i++) assert.equal((await attempt(xff, i, { "x-forwarded-for": "203.0.113.7", forwarded: `for=198.51.100.${i}` })).status, 401);
      assert.equal((await attempt(xff, 4, { "x-forwarded-for": "203.0.113.7", forwarded: "for=198.51.100.4" })).status, 429, "counted against the X-Forwarded-For address");
      // With trustedProxyHeader "forwarded" it is the other way round.
      rfc7239 = await createTestHost({ ...config(), trustedProxies: 1, trustedProxyHeader: "forwarded", clientAuthThrottling: throttling, mtls: mtlsFiles() }, { listen: true });
      for (let i = 1; i <= 3; i++) assert.equal((await attempt(rfc7239!, i, { forwarded: "for=203.0.113.8", "x-forwarded-for": `198.51.100.${i}` })).status, 401);
      assert.equal((await attempt(rfc7239!, 4, { forwarded: "for=203.0.113.8", "x-forwarded-for": "198.51.100.4" })).status, 429, "counted against the Forwarded address");
    } finally {
      await xff.close();
      await rfc7239?.close();
    }
  });

  test("2.6 certificate header with more than one value or certificate, or trailing data: no certificate", async () => {
    const a = pki.client("a").cert;
    const b = pki.client("b").cert;
    assert.equal(await rawCertRequest(proxied, [encodeURIComponent(a)]), 200, "one certificate");
    assert.equal(await rawCertRequest(proxied, [encodeURIComponent(a), encodeURIComponent(b)]), 401, "two header lines");
    assert.equal(await rawCertRequest(proxied, [`${encodeURIComponent(a)}, ${encodeURIComponent(b)}`]), 401, "two values on one line");
    assert.equal(await rawCertRequest(proxied, [encodeURIComponent(a + b)]), 401, "two certificates in one value");
    assert.equal(await rawCertRequest(proxied, [encodeURIComponent(`${a}\ntrailing`)]), 401, "data after the PEM");
    assert.equal(await rawCertRequest(proxied, [der(a).toString("base64")]), 200, "base64 DER");
    assert.equal(await rawCertRequest(proxied, [Buffer.concat([der(a), Buffer.from("trailing")]).toString("base64")]), 401, "data after the DER");
  });

  test("2.7 trustedProxyAddresses: forwarded headers and the certificate header only from those peers (IPv4, IPv6, CIDR)", async () => {
    // direct: trustedProxies 1 but the proxy is 192.0.2.10, not the test at 127.0.0.1.
    assert.deepEqual(await status(await headerCertRequest(direct)), { status: 401, error: "invalid_client" });
    const warnings: string[] = [];
    const logger = { info() {}, error() {}, warn: (_: object, msg?: string) => void warnings.push(msg ?? "") };
    const listed = await createTestHost({ ...config(), trustedProxies: 1, trustedProxyAddresses: ["2001:db8::/32", "127.0.0.0/8"], clientAuthThrottling: { window: 60, maxPerClient: 100, maxPerAddress: 3 }, mtls: { ...mtlsFiles(), clientCertificateHeader: "x-client-cert" } }, { listen: true, logger });
    const unlisted = await createTestHost({ ...config(), trustedProxies: 1, trustedProxyAddresses: ["::1", "10.0.0.0/8"], clientAuthThrottling: { window: 60, maxPerClient: 100, maxPerAddress: 3 }, mtls: mtlsFiles() }, { listen: true });
    try {
      assert.equal((await headerCertRequest(listed)).status, 200, "a listed peer's certificate header counts");
      assert.ok(!warnings.some((w) => w.includes("trustedProxyAddresses")), "no warning with trustedProxyAddresses set");
      const attempt = (on: TestHost, i: number) =>
        fetch(`${on.issuer}/connect/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`nobody-${i}:wrong`).toString("base64")}`, "x-forwarded-for": `198.51.100.${i}` },
          body: "grant_type=client_credentials",
        });
      for (let i = 1; i <= 4; i++) assert.equal((await attempt(listed, i)).status, 401, "a listed peer's forwarded addresses count");
      for (let i = 1; i <= 3; i++) assert.equal((await attempt(unlisted, i)).status, 401);
      assert.equal((await attempt(unlisted, 4)).status, 429, "an unlisted peer's X-Forwarded-For is ignored");
    } finally {
      await listed.close();
      await unlisted.close();
    }
    const warned: string[] = [];
    const open = await createTestHost({ ...config(), trustedProxies: 1, mtls: { ...mtlsFiles(), clientCertificateHeader: "x-client-cert" } }, { logger: { info() {}, error() {}, warn: (_: object, msg?: string) => void warned.push(msg ?? "") } });
    await open.close();
    assert.ok(warned.some((w) => w.includes("trustedProxyAddresses")), "a startup warning without trustedProxyAddresses");
    assert.throws(() => parseConfig({ issuer: "https://id.test", trustedProxies: 1, trustedProxyAddresses: ["10.0.0.0/33", "not-an-ip"] }), (error: unknown) => error instanceof ConfigError && error.problems.map((p) => p.path).join(" ") === "trustedProxyAddresses[0] trustedProxyAddresses[1]");
  });

  test("16.3 mtls.clientCertificateHeader without trustedProxies is a config error naming its JSON path", () => {
    const base = { issuer: "https://id.test", mtls: { enabled: true, cert: "c.pem", key: "k.pem", clientCertificateHeader: "x-client-cert" } };
    assert.throws(() => parseConfig(base), (error: unknown) => error instanceof ConfigError && error.problems.some((p) => p.path === "mtls.clientCertificateHeader" && /trustedProxies/.test(p.message)));
    assert.throws(() => parseConfig({ ...base, trustedProxies: 0 }), ConfigError);
    assert.doesNotThrow(() => parseConfig({ ...base, trustedProxies: 1 }));
    assert.doesNotThrow(() => parseConfig({ ...base, mtls: { ...base.mtls, clientCertificateHeader: null } }));
  });

  test("4 admin API: a DPoP-bound token needs the DPoP scheme and a valid proof", async () => {
    const tokenUrl = `${host.issuer}/connect/token`;
    const issued = await fetch(tokenUrl, {
      ...form({ grant_type: "client_credentials", scope: "tessera.admin" }),
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("dpop-admin:dpop-admin-secret").toString("base64")}`, dpop: await proof("POST", tokenUrl) },
    });
    assert.equal(issued.status, 200);
    const { access_token: token, token_type } = (await issued.json()) as { access_token: string; token_type: string };
    assert.equal(token_type, "DPoP");
    const sessions = `${host.issuer}/admin/api/sessions`;
    assert.equal((await fetch(sessions, { headers: { authorization: `Bearer ${token}` } })).status, 401, "as a plain bearer token");
    assert.equal((await fetch(sessions, { headers: { authorization: `DPoP ${token}` } })).status, 401, "DPoP scheme without a proof");
    assert.equal((await fetch(sessions, { headers: { authorization: `DPoP ${token}`, dpop: await proof("POST", sessions, token) } })).status, 401, "proof for another method");
    assert.equal((await fetch(sessions, { headers: { authorization: `DPoP ${token}`, dpop: await proof("GET", `${host.issuer}/connect/userinfo`, token) } })).status, 401, "proof for another URL");
    assert.equal((await fetch(sessions, { headers: { authorization: `DPoP ${token}`, dpop: await proof("GET", sessions) } })).status, 401, "proof without ath");
    const ok = await fetch(`${sessions}?count=5`, { headers: { authorization: `DPoP ${token}`, dpop: await proof("GET", sessions, token) } });
    assert.equal(ok.status, 200);
    assert.ok(Array.isArray(((await ok.json()) as { sessions: unknown[] }).sessions));
  });

  test("4 admin API: a certificate-bound token needs its certificate", async () => {
    const issued = await withCert("a")(`${host.mtlsUrl}/connect/token`, form({ grant_type: "client_credentials", client_id: "tls-san", scope: "tessera.admin" }));
    assert.equal(issued.status, 200);
    const { access_token: token } = (await issued.json()) as { access_token: string };
    const headers = { authorization: `Bearer ${token}` };
    assert.equal((await fetch(`${host.issuer}/admin/api/sessions`, { headers })).status, 401, "plain listener, no certificate");
    assert.equal((await noCert()(`${host.mtlsUrl}/admin/api/sessions`, { headers })).status, 401, "mTLS listener, no certificate");
    assert.equal((await withCert("b")(`${host.mtlsUrl}/admin/api/sessions`, { headers })).status, 401, "another certificate");
    assert.equal((await withCert("a")(`${host.mtlsUrl}/admin/api/sessions`, { headers })).status, 200, "its certificate");
    // The token-only check of the library cannot see a certificate, so it refuses bound tokens.
    assert.equal(await host.provider.validateAccessToken(token), undefined);
  });

  test("4 userinfo: a certificate-bound token needs its certificate (the provider's own bearer validation)", async () => {
    const spa = await signInSpa();
    const redeemed = await withCert("a")(`${host.mtlsUrl}/connect/token`, form({ grant_type: "authorization_code", client_id: "mtls-spa", code: spa.code, redirect_uri: CALLBACK, code_verifier: spa.verifier }));
    assert.equal(redeemed.status, 200);
    const { access_token: token } = (await redeemed.json()) as { access_token: string };
    assert.equal((await fetch(`${host.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status, 401, "certificate-bound, no certificate");
    assert.equal((await withCert("a")(`${host.mtlsUrl}/connect/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  });

  /** A DPoP-bound admin token of dpop-admin. */
  const dpopAdminToken = async (on: TestHost = host, scope = "tessera.admin"): Promise<string> => {
    const tokenUrl = `${on.issuer}/connect/token`;
    const issued = await fetch(tokenUrl, {
      ...form({ grant_type: "client_credentials", scope }),
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("dpop-admin:dpop-admin-secret").toString("base64")}`, dpop: await proof("POST", tokenUrl) },
    });
    assert.equal(issued.status, 200);
    return ((await issued.json()) as { access_token: string }).access_token;
  };
  /** A DPoP proof whose protected header names `alg` (unsigned: the alg check comes first). */
  const proofWithAlg = (alg: string, htm: string, htu: string) => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
    return `${b64({ typ: "dpop+jwt", alg, jwk: dpopKey.jwk })}.${b64({ htm, htu, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })}.${Buffer.from("sig").toString("base64url")}`;
  };
  /** The auth-params of every challenge in a WWW-Authenticate value, in order (RFC 9110 §11.6.1). */
  const challengeParams = (value: string): string[] => {
    const names: string[] = [];
    const re = /([A-Za-z0-9_-]+)=("(?:[^"\\]|\\.)*"|[^\s,]*)/g;
    for (let m = re.exec(value); m; m = re.exec(value)) names.push(m[1]!);
    assert.equal(value.replace(re, "").replace(/\b(Bearer|DPoP|Basic)\b/g, "").replace(/[\s,]/g, ""), "", `nothing but schemes and auth-params in ${value}`);
    return names;
  };
  const HOSTILE_ALGS = ["\u2603", "x\ny", 'a"b', 'x", error="use_dpop_nonce', "a\\"];

  test("4.4 DPoP proof with a hostile alg at the admin API: a fixed 401 challenge, never a 5xx or injected parameters", async () => {
    const token = await dpopAdminToken();
    const sessions = `${host.issuer}/admin/api/sessions`;
    for (const alg of HOSTILE_ALGS) {
      const response = await fetch(sessions, { headers: { authorization: `DPoP ${token}`, dpop: proofWithAlg(alg, "GET", sessions) } });
      assert.equal(response.status, 401, JSON.stringify(alg));
      const body = (await response.json()) as { error: string; error_description?: string };
      assert.equal(body.error, "invalid_dpop_proof");
      assert.ok(!body.error_description?.includes(alg), "the alg is not echoed");
      const challenge = response.headers.get("www-authenticate") ?? "";
      assert.deepEqual(challengeParams(challenge), ["algs", "error", "error_description"], challenge);
    }
  });

  test("4.5 DPoP proof with a hostile alg at userinfo: a fixed 401 challenge, never a 5xx", async () => {
    const token = await dpopAdminToken();
    const userinfo = `${host.issuer}/connect/userinfo`;
    for (const alg of HOSTILE_ALGS) {
      const response = await fetch(userinfo, { headers: { authorization: `DPoP ${token}`, dpop: proofWithAlg(alg, "GET", userinfo) } });
      const text = await response.text();
      assert.equal(response.status, 401, `${JSON.stringify(alg)}: ${text}`);
      assert.ok(!text.includes("ERR_INVALID_CHAR") && !text.includes("Invalid character"), text);
      assert.equal((JSON.parse(text) as { error: string }).error, "invalid_dpop_proof");
      const challenge = response.headers.get("www-authenticate") ?? "";
      assert.deepEqual(challengeParams(challenge), ["algs", "error", "error_description"], challenge);
    }
  });

  test("4.6 @tessera/api: a hostile DPoP alg gives a well-formed challenge with a fixed description", async () => {
    const token = await dpopAdminToken();
    const validator = createTokenValidator({ issuer: host.issuer, audience: `${host.issuer}/admin/api` });
    const url = "https://api.test/data";
    for (const alg of HOSTILE_ALGS) {
      const result = await validator.validate(new Request(url, { headers: { authorization: `DPoP ${token}`, dpop: proofWithAlg(alg, "GET", url) } }));
      assert.equal(result.ok, false);
      if (result.ok) continue;
      assert.equal(result.error, "invalid_dpop_proof");
      assert.ok(!result.errorDescription?.includes(alg));
      assert.deepEqual(challengeParams(result.wwwAuthenticate), ["algs", "error", "error_description"], result.wwwAuthenticate);
      const response = toResponse(result);
      assert.equal(response.status, 401);
    }
  });

  test("4.8 error descriptions that echo request input keep to RFC 6749 §5.2's characters", async () => {
    const name = 'x\u2603"\\\u0007y';
    const body = `${encodeURIComponent(name)}=1&${encodeURIComponent(name)}=2&grant_type=client_credentials`;
    const response = await fetch(`${host.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    assert.equal(response.status, 400);
    const { error, error_description: description } = (await response.json()) as { error: string; error_description: string };
    assert.equal(error, "invalid_request");
    assert.match(description, /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/, description);
    assert.match(description, /parameter x'y is repeated/);
  });

  test("4.7 admin API insufficient_scope: the token's own scheme, with realm or algs, and scope=\"tessera.admin\"", async () => {
    const sessions = `${host.issuer}/admin/api/sessions`;
    const dpopToken = await dpopAdminToken(host, "api1.read");
    const dpopRefused = await fetch(sessions, { headers: { authorization: `DPoP ${dpopToken}`, dpop: await proof("GET", sessions, dpopToken) } });
    assert.equal(dpopRefused.status, 403);
    assert.equal(((await dpopRefused.json()) as { error: string }).error, "insufficient_scope");
    const dpopChallenge = dpopRefused.headers.get("www-authenticate") ?? "";
    assert.match(dpopChallenge, /^DPoP algs="[^"]+", /);
    assert.deepEqual(challengeParams(dpopChallenge), ["algs", "error", "error_description", "scope"]);
    assert.match(dpopChallenge, /scope="tessera\.admin"/);

    const issued = await withCert("a")(`${host.mtlsUrl}/connect/token`, form({ grant_type: "client_credentials", client_id: "tls-san", scope: "api1.read" }));
    const { access_token: bearerToken } = (await issued.json()) as { access_token: string };
    const bearerRefused = await withCert("a")(`${host.mtlsUrl}/admin/api/sessions`, { headers: { authorization: `Bearer ${bearerToken}` } });
    assert.equal(bearerRefused.status, 403);
    const bearerChallenge = bearerRefused.headers.get("www-authenticate") ?? "";
    assert.ok(bearerChallenge.startsWith(`Bearer realm="${host.issuer}", `), bearerChallenge);
    assert.deepEqual(challengeParams(bearerChallenge), ["realm", "error", "error_description", "scope"]);
    assert.match(bearerChallenge, /scope="tessera\.admin"/);
  });

  /** Signs alice in for mtls-spa and returns the authorization code and its PKCE verifier. */
  async function signInSpa(on: TestHost = host): Promise<{ code: string; verifier: string }> {
    const { verifier, challenge } = pkce();
    const url = new URL(`${on.issuer}/connect/authorize`);
    for (const [k, v] of Object.entries({ client_id: "mtls-spa", redirect_uri: CALLBACK, response_type: "code", scope: "openid offline_access", state: "s", nonce: "n", code_challenge: challenge, code_challenge_method: "S256", prompt: "consent" })) url.searchParams.set(k, v);
    const browser = new TestBrowser();
    const stopAt = (u: URL) => u.href.startsWith(CALLBACK);
    let page = await browser.get(url, { stopAt });
    if (page.query("input[name=password]")) page = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    if (page.query("button[name=decision]")) page = await browser.submitForm(page, { button: "button[name=decision][value=allow]", stopAt });
    assert.ok(page.location, `no redirect to the client: ${page.status} ${page.url}`);
    const code = new URL(page.location).searchParams.get("code");
    assert.ok(code);
    return { code, verifier };
  }

  test("5 public client's refresh token issued over mTLS is bound to that certificate", async () => {
    const { code, verifier } = await signInSpa();
    const token = `${host.mtlsUrl}/connect/token`;
    const redeemed = await withCert("a")(token, form({ grant_type: "authorization_code", client_id: "mtls-spa", code, redirect_uri: CALLBACK, code_verifier: verifier }));
    assert.equal(redeemed.status, 200);
    const { refresh_token: refreshToken } = (await redeemed.json()) as { refresh_token: string };
    assert.ok(refreshToken);
    const refresh = (doFetch: typeof fetch, value = refreshToken) => doFetch(token, form({ grant_type: "refresh_token", client_id: "mtls-spa", refresh_token: value }));
    assert.deepEqual(await status(await refresh(withCert("b"))), { status: 400, error: "invalid_grant" }, "another certificate");
    assert.equal((await refresh(noCert())).status, 400, "no certificate");
    assert.equal((await fetch(`${host.issuer}/connect/token`, form({ grant_type: "refresh_token", client_id: "mtls-spa", refresh_token: refreshToken }))).status, 400, "plain listener");
    const ok = await refresh(withCert("a"));
    assert.equal(ok.status, 200);
    const { refresh_token: rotated } = (await ok.json()) as { refresh_token: string };
    assert.deepEqual(await status(await refresh(withCert("b"), rotated)), { status: 400, error: "invalid_grant" }, "the rotated token keeps the binding");
    assert.equal((await refresh(withCert("a"), rotated)).status, 200);
  });

  test("5.2 a replayed bound refresh token revokes the family only for a caller with the certificate", async () => {
    const { code, verifier } = await signInSpa();
    const token = `${host.mtlsUrl}/connect/token`;
    const redeemed = await withCert("a")(token, form({ grant_type: "authorization_code", client_id: "mtls-spa", code, redirect_uri: CALLBACK, code_verifier: verifier }));
    const { refresh_token: first } = (await redeemed.json()) as { refresh_token: string };
    const refresh = (doFetch: typeof fetch, value: string) => doFetch(token, form({ grant_type: "refresh_token", client_id: "mtls-spa", refresh_token: value }));
    const rotated = await refresh(withCert("a"), first);
    assert.equal(rotated.status, 200);
    const { refresh_token: second } = (await rotated.json()) as { refresh_token: string };
    // Someone without the certificate replays the used token: refused, and the holder keeps its tokens.
    assert.deepEqual(await status(await refresh(withCert("b"), first)), { status: 400, error: "invalid_grant" }, "another certificate");
    assert.equal((await refresh(noCert(), first)).status, 400, "no certificate");
    const stillValid = await refresh(withCert("a"), second);
    assert.equal(stillValid.status, 200, "the family survives a replay by someone who cannot prove the certificate");
    const { refresh_token: third } = (await stillValid.json()) as { refresh_token: string };
    // A replay with the certificate is real reuse: the whole family goes.
    assert.deepEqual(await status(await refresh(withCert("a"), second)), { status: 400, error: "invalid_grant" });
    assert.deepEqual(await status(await refresh(withCert("a"), third)), { status: 400, error: "invalid_grant" }, "family revoked");
  });

  test("16 discovery advertises mTLS methods, bound tokens and aliases only when mTLS is enabled", async () => {
    const on = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    for (const key of ["token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"]) {
      assert.ok((on[key] as string[]).includes("tls_client_auth"), key);
      assert.ok((on[key] as string[]).includes("self_signed_tls_client_auth"), key);
    }
    assert.equal(on.tls_client_certificate_bound_access_tokens, true);
    assert.equal((on.mtls_endpoint_aliases as Record<string, string>).token_endpoint, `${host.mtlsUrl}/connect/token`);

    const off = await createTestHost({ apiScopes: [{ name: "api1.read" }], clients: [{ client_id: "web", client_secret: "web-secret", redirect_uris: [CALLBACK], scope: "openid" }] });
    try {
      const metadata = (await (await off.fetch(new Request(`${off.issuer}/.well-known/openid-configuration`))).json()) as Record<string, unknown>;
      for (const key of ["token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"]) {
        assert.ok(!(metadata[key] as string[]).includes("tls_client_auth"), key);
        assert.ok(!(metadata[key] as string[]).includes("self_signed_tls_client_auth"), key);
        assert.ok((metadata[key] as string[]).includes("client_secret_basic"), key);
      }
      assert.equal(metadata.tls_client_certificate_bound_access_tokens, undefined);
      assert.equal(metadata.mtls_endpoint_aliases, undefined);
    } finally {
      await off.close();
    }
  });

  test("16.2 discovery: tls_client_auth only with mtls.clientCa (self_signed_tls_client_auth needs no CA)", async () => {
    // tls_client_auth needs a CA to check the certificate chain; self_signed_tls_client_auth needs none.
    const noCa = await createTestHost({ apiScopes: [{ name: "api1.read" }], mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey } });
    try {
      const metadata = (await (await noCa.fetch(new Request(`${noCa.issuer}/.well-known/openid-configuration`))).json()) as Record<string, unknown>;
      for (const key of ["token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"]) {
        assert.ok(!(metadata[key] as string[]).includes("tls_client_auth"), `${key} without mtls.clientCa`);
        assert.ok((metadata[key] as string[]).includes("self_signed_tls_client_auth"), key);
      }
    } finally {
      await noCa.close();
    }
  });
});
