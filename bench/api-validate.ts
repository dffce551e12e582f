/**
 * Validations per second: @tessera/api's createTokenValidator against a raw jose jwtVerify loop over the
 * same token and keys, measured one after the other in this process.
 */
import { createTokenValidator } from "@tessera/api";
import { createTestHost } from "@tessera/testing";
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from "jose";

async function rate(name: string, seconds: number, operation: () => Promise<unknown>): Promise<{ name: string; perSecond: number }> {
  for (let i = 0; i < 500; i++) await operation(); // warm-up
  let count = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) await operation();
    count += 100;
  }
  return { name, perSecond: count / ((performance.now() - started) / 1000) };
}

export async function benchApiValidation(seconds = 3): Promise<string[]> {
  const host = await createTestHost(
    {
      keys: { algorithms: ["RS256"] },
      apiScopes: [{ name: "api1.read" }],
      apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
      clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }],
    },
    { listen: true },
  );
  try {
    const response = await fetch(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` },
      body: "grant_type=client_credentials",
    });
    const { access_token: token } = (await response.json()) as { access_token: string };
    const validator = createTokenValidator({ issuer: host.issuer, audience: "urn:api1", requiredScopes: ["api1.read"] });
    const request = () => new Request("https://api.test/data", { headers: { authorization: `Bearer ${token}` } });
    const first = await validator.validate(request());
    if (!first.ok) throw new Error(`the benchmark token does not validate: ${first.error}`);
    const jwks = createLocalJWKSet((await (await fetch(`${host.issuer}/.well-known/openid-configuration/jwks`)).json()) as JSONWebKeySet);

    const raw = await rate("jose jwtVerify (local JWKS)", seconds, () => jwtVerify(token, jwks, { issuer: host.issuer, audience: "urn:api1", typ: "at+jwt", algorithms: ["RS256"] }));
    const reused = request();
    const ours = await rate("@tessera/api validate (one Request, reused)", seconds, () => validator.validate(reused));
    const fresh = await rate("@tessera/api validate (new Request per call)", seconds, () => validator.validate(request()));
    const line = (r: { name: string; perSecond: number }) => `  ${r.name.padEnd(48)} ${r.perSecond.toFixed(0).padStart(8)} /s   ${(r.perSecond / raw.perSecond).toFixed(2)} × jose`;
    return ["API token validation (RS256 JWT access token, one core, sequential)", line(raw), line(ours), line(fresh)];
  } finally {
    await host.close();
  }
}
