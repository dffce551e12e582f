import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";
import { createTokenValidator } from "@tessera/api";
import { createClientCredentialsFetch, mtlsFetch } from "@tessera/client";
import { certificateThumbprint } from "@tessera/protocol";
import { createTestHost, type TestHost } from "@tessera/testing";
import { decodeJwt, exportJWK } from "jose";
import { makePki, type TestPki } from "./support/certs.ts";

describe("mutual TLS (RFC 8705)", () => {
  let pki: TestPki;
  let host: TestHost;
  let proxied: TestHost;
  let api: Server;
  let apiUrl: string;

  before(async () => {
    pki = makePki();
    const selfJwk = { ...(await exportJWK(new X509Certificate(pki.client("self").cert).publicKey)), kty: "EC" };
    const clients = [
      { client_id: "tls-san", token_endpoint_auth_method: "tls_client_auth" as const, tls_client_auth_san_dns: "client-a.test", grant_types: ["client_credentials" as const], scope: "api1.read", tls_client_certificate_bound_access_tokens: true },
      { client_id: "tls-dn", token_endpoint_auth_method: "tls_client_auth" as const, tls_client_auth_subject_dn: "CN=client-b,O=Tessera Tests", grant_types: ["client_credentials" as const], scope: "api1.read" },
      { client_id: "self", token_endpoint_auth_method: "self_signed_tls_client_auth" as const, jwks: { keys: [selfJwk] }, grant_types: ["client_credentials" as const], scope: "api1.read", tls_client_certificate_bound_access_tokens: true },
    ];
    const common = { apiScopes: [{ name: "api1.read" }], apiResources: [{ name: "urn:api1", scopes: ["api1.read"], secret: "api1-secret" }], clients };
    host = await createTestHost({ ...common, mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca } }, { listen: true });
    proxied = await createTestHost({ ...common, trustedProxies: 1, mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca, clientCertificateHeader: "x-client-cert" } }, { listen: true });

    // An API over mTLS that accepts only certificate-bound tokens presented with their certificate.
    const validator = createTokenValidator({ issuer: host.issuer, audience: "urn:api1" });
    api = createHttpsServer({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, requestCert: true, rejectUnauthorized: false }, async (req, res) => {
      const certificate = (req.socket as TLSSocket).getPeerX509Certificate();
      const result = await validator.validate(new Request(`https://127.0.0.1${req.url}`, { headers: req.headers as Record<string, string> }), { clientCertificate: certificate });
      res.writeHead(result.ok ? 200 : result.status, { "content-type": "application/json" });
      res.end(JSON.stringify(result.ok ? { sub: result.claims.sub } : { error: result.error }));
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    apiUrl = `https://127.0.0.1:${(api.address() as AddressInfo).port}/data`;
  });
  after(async () => {
    api.close();
    await host.close();
    await proxied.close();
    pki.cleanup();
  });

  /** A client-credentials token request on the mTLS listener with a given client certificate (or none). */
  async function tokenOverMtls(on: TestHost, clientId: string, certificate?: { cert: string; key: string }) {
    const doFetch = mtlsFetch({ ...(certificate ?? { cert: "", key: "" }), ca: pki.ca } as { cert: string; key: string; ca: string });
    const plainFetch = mtlsFetch({ ca: pki.ca } as never);
    const response = await (certificate ? doFetch : plainFetch)(`${on.mtlsUrl}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId }).toString(),
    });
    return { status: response.status, body: (await response.json()) as { access_token?: string; error?: string } };
  }

  it("advertises mtls_endpoint_aliases and certificate-bound tokens", async () => {
    const metadata = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as { mtls_endpoint_aliases: Record<string, string>; tls_client_certificate_bound_access_tokens: boolean; token_endpoint_auth_methods_supported: string[] };
    assert.equal(metadata.mtls_endpoint_aliases.token_endpoint, `${host.mtlsUrl}/connect/token`);
    assert.equal(metadata.tls_client_certificate_bound_access_tokens, true);
    assert.ok(metadata.token_endpoint_auth_methods_supported.includes("tls_client_auth"));
    assert.ok(metadata.token_endpoint_auth_methods_supported.includes("self_signed_tls_client_auth"));
  });

  it("tls_client_auth: the right certificate succeeds; none, expired, another CA's and another client's fail", async () => {
    const ok = await tokenOverMtls(host, "tls-san", pki.client("a"));
    assert.equal(ok.status, 200);
    const cnf = decodeJwt(ok.body.access_token!).cnf as Record<string, string>;
    assert.equal(cnf["x5t#S256"], certificateThumbprint(pki.client("a").cert));
    assert.equal((await tokenOverMtls(host, "tls-dn", pki.client("b"))).status, 200, "subject DN match");
    for (const [name, certificate] of [["none", undefined], ["expired", pki.client("a-expired")], ["another CA", pki.client("a-other-ca")], ["another client's", pki.client("b")]] as const) {
      const refused = await tokenOverMtls(host, "tls-san", certificate);
      assert.deepEqual(refused, { status: 401, body: { error: "invalid_client", error_description: refused.body.error_description } }, name);
    }
  });

  it("self_signed_tls_client_auth: the registered certificate succeeds; none, expired and others fail", async () => {
    assert.equal((await tokenOverMtls(host, "self", pki.client("self"))).status, 200);
    for (const certificate of [undefined, pki.client("a"), pki.client("a-expired")]) assert.equal((await tokenOverMtls(host, "self", certificate)).status, 401);
  });

  it("a bound token works at the API with its certificate and fails with another; introspection shows the binding", async () => {
    const bound = createClientCredentialsFetch({ issuer: host.issuer, clientId: "tls-san", tls: { ...pki.client("a"), ca: pki.ca } });
    const response = await bound(apiUrl);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { sub: "tls-san" });
    const token = await bound.getToken();
    const stolen = await mtlsFetch({ ...pki.client("b"), ca: pki.ca })(apiUrl, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(stolen.status, 401);
    const introspection = await fetch(`${host.issuer}/connect/introspect`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${encodeURIComponent("urn:api1")}:api1-secret`).toString("base64")}` },
      body: new URLSearchParams({ token }).toString(),
    });
    const info = (await introspection.json()) as { active: boolean; cnf: Record<string, string> };
    assert.equal(info.active, true);
    assert.equal(info.cnf["x5t#S256"], certificateThumbprint(pki.client("a").cert));
  });

  it("ignores a spoofed certificate header unless one is configured; a configured header is still checked against the CA", async () => {
    const viaHeader = (on: TestHost, certificate: string) =>
      fetch(`${on.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-client-cert": encodeURIComponent(certificate) },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: "tls-san" }).toString(),
      });
    assert.equal((await viaHeader(host, pki.client("a").cert)).status, 401, "no header configured: ignored");
    assert.equal((await viaHeader(proxied, pki.client("a").cert)).status, 200, "configured header (behind a proxy)");
    assert.equal((await viaHeader(proxied, pki.client("a-other-ca").cert)).status, 401, "header certificates are checked against the client CA");
    assert.equal((await viaHeader(proxied, "garbage")).status, 401);
  });
});
