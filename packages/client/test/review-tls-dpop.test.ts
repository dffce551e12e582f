import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createClientCredentialsFetch } from "@tessera/client";
import { certificateThumbprint } from "@tessera/protocol";
import { createTestHost, type TestHost } from "@tessera/testing";
import { decodeJwt } from "jose";
import { makePki, type TestPki } from "../../../test/support/certs.ts";

let pki: TestPki;
let host: TestHost;
before(async () => {
  pki = makePki();
  host = await createTestHost(
    {
      apiScopes: [{ name: "api1.read" }],
      clients: [
        { client_id: "tls-dpop", token_endpoint_auth_method: "tls_client_auth", tls_client_auth_san_dns: "client-a.test", grant_types: ["client_credentials"], scope: "api1.read", dpop_bound_access_tokens: true, tls_client_certificate_bound_access_tokens: true },
      ],
      mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca },
      dpop: { requireNonce: true },
    },
    { listen: true },
  );
});
after(async () => {
  await host.close();
  pki.cleanup();
});

test("7.3 @tessera/client with tls and dpop together gets certificate- and DPoP-bound tokens from the mTLS alias", async () => {
  const clientFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "tls-dpop", tls: { ...pki.client("a"), ca: pki.ca }, dpop: true, scope: "api1.read" });
  const cnf = decodeJwt(await clientFetch.getToken()).cnf as Record<string, string>;
  assert.equal(cnf["x5t#S256"], certificateThumbprint(pki.client("a").cert));
  assert.ok(cnf.jkt, "the token is DPoP-bound");
});
