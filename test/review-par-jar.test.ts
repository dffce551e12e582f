import assert from "node:assert/strict";
import { KeyObject, randomUUID, sign as signBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createMemoryStore, createPostgresStore, createProvider, createSqliteStore, type Store } from "@tessera/server";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { pkce } from "./support/fixtures.ts";
import { makePki } from "./support/certs.ts";
import { startTestPostgres } from "./support/postgres.ts";

const ISSUER = "https://idp.test";
const CB = "http://127.0.0.1/cb";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DATA_KEY = Buffer.alloc(32, 17).toString("base64url");
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

type Provider = ReturnType<typeof createProvider>;

const pair = await generateKeyPair("ES256", { extractable: true });
const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
const rsaPair = await generateKeyPair("PS256", { extractable: true });
const rsaJwk: JWK = { ...(await exportJWK(rsaPair.publicKey)), kid: "r1", alg: "PS256", use: "sig" };

function authorizeParams(extra: Record<string, string> = {}): Record<string, string> {
  return { response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", state: "s1", ...extra };
}

/** A JWS with any header at all (jose refuses odd header values), signed ES256 with the client's key. */
function signRaw(header: Record<string, unknown>, payload: Record<string, unknown>, key: CryptoKey = pair.privateKey): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode(header)}.${encode(payload)}`;
  const signature = signBytes("sha256", Buffer.from(input), { key: KeyObject.from(key), dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

/** A request object of client `pkj`: `claims` override the defaults (undefined drops one). */
async function requestObject(claims: Record<string, unknown> = {}, header: Record<string, unknown> = { typ: "oauth-authz-req+jwt" }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const all: Record<string, unknown> = { iss: "pkj", aud: ISSUER, iat: now, exp: now + 300, jti: randomUUID(), ...authorizeParams({ prompt: "none" }), ...claims };
  for (const [name, value] of Object.entries(all)) if (value === undefined) delete all[name];
  return new SignJWT(all as JWTPayload).setProtectedHeader({ alg: "ES256", kid: "k1", ...header }).sign(pair.privateKey);
}

/** A client assertion of `pkj`; `claims` are added, `header` replaces the protected header. */
function assertion(claims: Record<string, unknown> = {}, header: Record<string, unknown> = { alg: "ES256", kid: "k1" }): string {
  const now = Math.floor(Date.now() / 1000);
  return signRaw(header, { iss: "pkj", sub: "pkj", aud: ISSUER, iat: now, exp: now + 60, jti: randomUUID(), ...claims });
}

function newProvider(options: Partial<Parameters<typeof createProvider>[0]> = {}): Provider {
  return createProvider({
    issuer: ISSUER,
    store: createMemoryStore(),
    dataKey: DATA_KEY,
    clients: [
      { client_id: "pkj", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwk, rsaJwk] } },
      { client_id: "pinned", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwk, rsaJwk] }, request_object_signing_alg: "PS256" },
      { client_id: "conf", client_secret: "conf-secret", redirect_uris: [CB], scope: "openid" },
      { client_id: "conf2", client_secret: "conf2-secret", redirect_uris: [CB], scope: "openid" },
      { client_id: "public", token_endpoint_auth_method: "none", redirect_uris: [CB], scope: "openid" },
    ],
    // The failure throttle would answer 429 after ten refused assertions: these tests count refusals.
    clientAuthThrottling: false,
    ...options,
  });
}

const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
});

async function authorizeGet(provider: Provider, query: Record<string, string>, address = "198.51.100.1"): Promise<Response> {
  return provider.fetch(new Request(`${ISSUER}/connect/authorize?${new URLSearchParams(query)}`), { clientAddress: address });
}

/** The error of an authorization response: a redirect's `error` and `error_description`, or an error page's text. */
async function errorOf(response: Response): Promise<{ status: number; error: string | null; description: string }> {
  if (response.status === 302 || response.status === 303) {
    const location = new URL(response.headers.get("location")!);
    return { status: response.status, error: location.searchParams.get("error"), description: location.searchParams.get("error_description") ?? "" };
  }
  const text = await response.text();
  let json: { error?: string; error_description?: string } | undefined;
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    json = undefined;
  }
  return { status: response.status, error: json?.error ?? /invalid_[a-z_]+|temporarily_unavailable|login_required/.exec(text)?.[0] ?? null, description: json?.error_description ?? text };
}

async function token(provider: Provider, clientAssertion: string): Promise<{ status: number; error: string | null; description: string }> {
  const response = await provider.fetch(new Request(`${ISSUER}/connect/token`, form({ grant_type: "authorization_code", code: "not-a-code", redirect_uri: CB, code_verifier: "v".repeat(43), client_id: "pkj", client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion })));
  return errorOf(response);
}

async function pushWithAssertion(provider: Provider, clientAssertion: string): Promise<{ status: number; error: string | null; description: string }> {
  return errorOf(await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ ...authorizeParams(), client_id: "pkj", client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion }))));
}

describe("17 PAR/JAR attacker review", () => {
  it("17.r1 a request object with sub, used at authorize, is refused as client_assertion at token and at PAR (invalid_client)", async () => {
    const provider = newProvider();
    try {
      const object = await requestObject({ sub: "pkj" });
      const used = await errorOf(await authorizeGet(provider, { client_id: "pkj", request: object }));
      assert.equal(used.error, "login_required", "the object itself is a good request object");
      const atToken = await token(provider, object);
      assert.deepEqual([atToken.status, atToken.error], [401, "invalid_client"]);
      const atPar = await pushWithAssertion(provider, object);
      assert.deepEqual([atPar.status, atPar.error], [401, "invalid_client"]);
      // A fresh, never used object (other jti) is refused too: its typ and its authorization parameters.
      const fresh = await token(provider, await requestObject({ sub: "pkj" }));
      assert.deepEqual([fresh.status, fresh.error], [401, "invalid_client"]);
    } finally {
      await provider.close();
    }
  });

  it("17.r1 an assertion's typ is absent, JWT or client-authentication+jwt; any other (a request object's) or a non-string is invalid_client", async () => {
    const provider = newProvider();
    try {
      for (const typ of [undefined, "JWT", "jwt", "client-authentication+jwt", "application/client-authentication+jwt"]) {
        const header = { alg: "ES256", kid: "k1", ...(typ === undefined ? {} : { typ }) };
        const result = await token(provider, assertion({}, header));
        assert.deepEqual([result.status, result.error], [400, "invalid_grant"], `typ ${typ}: authenticated, then the bad code`);
      }
      for (const typ of ["oauth-authz-req+jwt", "application/oauth-authz-req+jwt", "dpop+jwt", "at+jwt", "logout+jwt", "", 1, null, {}, ["JWT"], true]) {
        const result = await token(provider, assertion({}, { alg: "ES256", kid: "k1", typ }));
        assert.deepEqual([result.status, result.error], [401, "invalid_client"], `typ ${JSON.stringify(typ)}`);
      }
    } finally {
      await provider.close();
    }
  });

  it("17.r1 an assertion carrying response_type or redirect_uri is invalid_client; scope and client_id alone are accepted", async () => {
    const provider = newProvider();
    try {
      for (const claims of [{ response_type: "code" }, { redirect_uri: CB }, { response_type: "code", redirect_uri: CB, scope: "openid" }]) {
        const result = await token(provider, assertion(claims, { alg: "ES256", kid: "k1", typ: "JWT" }));
        assert.deepEqual([result.status, result.error], [401, "invalid_client"], JSON.stringify(claims));
      }
      const lenient = await token(provider, assertion({ scope: "openid", client_id: "pkj" }));
      assert.deepEqual([lenient.status, lenient.error], [400, "invalid_grant"]);
      // A jti must be a string (RFC 7519 §4.1.7), never a 5xx.
      for (const jti of [42, { toString: 1 }, ["a"], ""]) {
        const result = await token(provider, assertion({ jti }));
        assert.deepEqual([result.status, result.error], [401, "invalid_client"], JSON.stringify(jti));
      }
    } finally {
      await provider.close();
    }
  });

  it("17.r1 one used-jti record for every JWT a client signs: an assertion's jti refuses a request object, and an object's jti an assertion", async () => {
    const provider = newProvider();
    try {
      const jti = randomUUID();
      const first = await token(provider, assertion({ jti }));
      assert.deepEqual([first.status, first.error], [400, "invalid_grant"], "the assertion authenticated");
      const object = await errorOf(await authorizeGet(provider, { client_id: "pkj", request: await requestObject({ jti }) }));
      assert.equal(object.error, "invalid_request_object", "the assertion's jti is used");
      assert.match(object.description, /already used/);

      // The other way: a JWT shaped as an assertion (no typ, no authorization parameters) presented as a
      // request object first (the authorization request it makes is bad, but its jti is recorded).
      const jwt = assertion();
      const asObject = await authorizeGet(provider, { client_id: "pkj", request: jwt });
      assert.ok(asObject.status < 500);
      const replayed = await token(provider, jwt);
      assert.deepEqual([replayed.status, replayed.error], [401, "invalid_client"]);
    } finally {
      await provider.close();
    }
  });

  it("17.r2 an anonymous flood filling the total does not block a confidential client's pushes, nor do they count in its address's bucket", async () => {
    const store = createMemoryStore();
    const provider = newProvider({ store, interaction: { maxPending: 10, maxPendingPerAddress: 5 } });
    try {
      const anonymous = (address: string) => provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: "public", ...authorizeParams() })), { clientAddress: address });
      const confidential = (id: string, secret: string, address: string) => provider.fetch(new Request(`${ISSUER}/connect/par`, form(authorizeParams(), { authorization: basic(id, secret) })), { clientAddress: address });
      // Many /64s of one /48: the total fills, then the hard ceiling refuses everything anonymous.
      let refused = 0;
      for (let i = 0; i < 40; i++) if ((await anonymous(`2001:db8:1:${i.toString(16)}::1`)).status === 429) refused++;
      assert.ok(refused > 0, "the anonymous flood reached the total");
      assert.equal((await anonymous("2001:db8:1:ff::1")).status, 429);
      const uris: string[] = [];
      for (let i = 0; i < 8; i++) {
        const response = await confidential(i % 2 ? "conf" : "conf2", i % 2 ? "conf-secret" : "conf2-secret", "2001:db8:1:1::1");
        assert.equal(response.status, 201, `confidential push ${i}`);
        uris.push(((await response.json()) as { request_uri: string }).request_uri);
      }
      // Past the per-address cap (5) from one address, none of the backend's pushes was evicted.
      for (const [i, requestUri] of uris.entries()) {
        const result = await errorOf(await authorizeGet(provider, { client_id: i % 2 ? "conf" : "conf2", request_uri: requestUri }));
        assert.notEqual(result.error, "invalid_request_uri", `push ${i} is still there`);
      }
      assert.equal((await anonymous("2001:db8:1:fe::1")).status, 429, "the confidential pushes did not make room for anonymous ones");
    } finally {
      await provider.close();
    }
  });

  it("17.r2 a confidential client past par.maxPendingPerClient evicts its own oldest (within one second), not another client's", async () => {
    let now = 1_800_000_000_000;
    const provider = newProvider({ par: { maxPendingPerClient: 3 }, clock: () => now });
    try {
      const pushAs = async (id: string) => {
        const response = await provider.fetch(new Request(`${ISSUER}/connect/par`, form(authorizeParams(), { authorization: basic(id, `${id}-secret`) })), { clientAddress: "203.0.113.7" });
        assert.equal(response.status, 201);
        return ((await response.json()) as { request_uri: string }).request_uri;
      };
      const other = await pushAs("conf2");
      const own: string[] = [];
      for (let i = 0; i < 6; i++) {
        now += 100; // six pushes within one second
        own.push(await pushAs("conf"));
      }
      const live = async (id: string, requestUri: string) => (await errorOf(await authorizeGet(provider, { client_id: id, request_uri: requestUri }))).error !== "invalid_request_uri";
      const kept = [];
      for (const requestUri of own) kept.push(await live("conf", requestUri));
      assert.deepEqual(kept, [false, false, false, true, true, true], "the three oldest went, to the millisecond");
      assert.ok(await live("conf2", other), "another client's push is untouched");
    } finally {
      await provider.close();
    }
  });
});

it("17.r2 a private_key_jwt client known by its metadata document (anyone can publish one) counts as public: address buckets, not a client bucket", async () => {
  const pki = makePki();
  let clientId = "";
  const documents = createHttpsServer({ cert: pki.server.cert, key: pki.server.key }, (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ client_id: clientId, client_name: "Tool", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwk] } }));
  });
  await new Promise<void>((resolve) => documents.listen(0, "127.0.0.1", resolve));
  clientId = `https://127.0.0.1:${(documents.address() as AddressInfo).port}/client.json`;
  const store = createMemoryStore();
  const provider = newProvider({ store, interaction: { maxPendingPerAddress: 2 }, clientIdMetadataDocuments: { enabled: true }, outbound: { allowLoopback: true, ca: pki.ca } });
  try {
    for (let i = 0; i < 5; i++) {
      const now = Math.floor(Date.now() / 1000);
      const clientAssertion = signRaw({ alg: "ES256", kid: "k1" }, { iss: clientId, sub: clientId, aud: ISSUER, exp: now + 60, jti: randomUUID() });
      const response = await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: clientId, client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion, ...authorizeParams() })), { clientAddress: "203.0.113.20" });
      assert.equal(response.status, 201, await response.clone().text());
    }
    assert.equal((await store.grants.findAll({ kind: "par", clientId }, 100)).length, 2, "the address's cap applies");
  } finally {
    await provider.close();
    documents.close();
    documents.closeAllConnections();
  }
});

// Oldest-first to the millisecond relies on each store's findAll order (created second, then key).
const dir = mkdtempSync(join(tmpdir(), "tessera-review-par-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const postgres = await startTestPostgres();
after(() => postgres?.close());
const stores: [string, () => Promise<Store>, string | false][] = [
  ["memory", async () => createMemoryStore(), false],
  ["sqlite", () => createSqliteStore(join(dir, "order.db")), false],
  ["postgres", async () => createPostgresStore(await postgres!.createDatabase()), postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)"],
];
for (const [storeName, open, skip] of stores) {
  it(`17.r2 on the ${storeName} store an address bucket evicts oldest first within one second (and within one millisecond)`, { skip }, async () => {
    let now = 1_800_000_000_000;
    const provider = newProvider({ store: await open(), interaction: { maxPendingPerAddress: 3 }, clock: () => now });
    try {
      const pushOne = async () => {
        const response = await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: "public", ...authorizeParams() })), { clientAddress: "203.0.113.9" });
        assert.equal(response.status, 201);
        return ((await response.json()) as { request_uri: string }).request_uri;
      };
      const uris: string[] = [];
      for (let i = 0; i < 10; i++) {
        if (i < 5) now += 37; // then five in the same millisecond
        uris.push(await pushOne());
      }
      const kept = [];
      for (const requestUri of uris) kept.push((await errorOf(await authorizeGet(provider, { client_id: "public", request_uri: requestUri }))).error !== "invalid_request_uri");
      assert.deepEqual(kept, [false, false, false, false, false, false, false, true, true, true]);
    } finally {
      await provider.close();
    }
  });
}

describe("17 PAR/JAR attacker review: malformed headers, descriptions, sizes", () => {
  const odd: unknown[] = [1, null, {}, ["JWT"], true, { toString: 1 }, ""];
  const headers: Record<string, unknown>[] = [
    ...odd.map((typ) => ({ alg: "ES256", kid: "k1", typ })),
    ...odd.map((alg) => ({ alg, kid: "k1" })),
    ...odd.map((kid) => ({ alg: "ES256", kid })),
    ...[1, null, {}, "b64", [1], ["b64"], ["exp"], [], ["typ"], { toString: 1 }].map((crit) => ({ alg: "ES256", kid: "k1", crit })),
    ...[false, "false", 1, null, { toString: 1 }].flatMap((b64) => [{ alg: "ES256", kid: "k1", b64 }, { alg: "ES256", kid: "k1", b64, crit: ["b64"] }]),
  ];

  it("17.r3 odd typ, alg, kid, crit and b64 header values in request objects, client assertions and DPoP proofs are 4xx, never a 5xx", async () => {
    const provider = newProvider();
    try {
      const now = Math.floor(Date.now() / 1000);
      const dpopJwk = await exportJWK(pair.publicKey);
      for (const header of headers) {
        const label = JSON.stringify(header);
        const object = signRaw(header, { iss: "pkj", aud: ISSUER, exp: now + 120, jti: randomUUID(), ...authorizeParams({ prompt: "none" }) });
        const atAuthorize = await errorOf(await authorizeGet(provider, { client_id: "pkj", request: object }));
        assert.ok(atAuthorize.status < 500, `authorize ${label}: ${atAuthorize.status}`);
        if (typeof header.typ !== "undefined" && header.typ !== "JWT") assert.equal(atAuthorize.error, "invalid_request_object", `authorize ${label}`);
        const atPar = await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: "pkj", client_assertion_type: ASSERTION_TYPE, client_assertion: assertion(), request: object })));
        assert.ok(atPar.status < 500, `PAR ${label}: ${atPar.status}`);
        const atToken = await token(provider, assertion({}, header));
        assert.ok(atToken.status < 500, `assertion ${label}: ${atToken.status}`);
        const proof = signRaw({ typ: "dpop+jwt", jwk: dpopJwk, ...header }, { htm: "POST", htu: `${ISSUER}/connect/token`, iat: now, jti: randomUUID() });
        for (const path of ["/connect/token", "/connect/par"]) {
          const response = await provider.fetch(new Request(`${ISSUER}${path}`, form({ grant_type: "authorization_code", code: "x", redirect_uri: CB, code_verifier: "v".repeat(43), client_id: "public", ...authorizeParams() }, { dpop: proof })));
          assert.ok(response.status < 500, `DPoP at ${path} ${label}: ${response.status}`);
        }
      }
      for (const jwkValue of [1, null, "x", [], {}, { kty: 1 }, { kty: "EC", crv: {}, x: 1, y: null }, { toString: 1 }]) {
        const proof = signRaw({ typ: "dpop+jwt", alg: "ES256", jwk: jwkValue }, { htm: "POST", htu: `${ISSUER}/connect/token`, iat: now, jti: randomUUID() });
        const response = await provider.fetch(new Request(`${ISSUER}/connect/token`, form({ grant_type: "authorization_code", code: "x", redirect_uri: CB, code_verifier: "v".repeat(43), client_id: "public" }, { dpop: proof })));
        assert.equal(response.status, 400, `DPoP jwk ${JSON.stringify(jwkValue)}`);
      }
    } finally {
      await provider.close();
    }
  });

  it("17.r4 invalid_request_object descriptions are fixed: no header text echoed, no pinned algorithm or key registration told", async () => {
    const provider = newProvider();
    try {
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: "pkj", aud: ISSUER, exp: now + 120, ...authorizeParams() };
      const phishing = "Your account is locked, call +1-555-0100";
      const descriptions: string[] = [];
      for (const header of [{ alg: phishing }, { alg: "HS256" }, { alg: "ES256", typ: phishing }, { alg: "ES256", kid: phishing }]) {
        const result = await errorOf(await authorizeGet(provider, { client_id: "pkj", request: signRaw(header, claims) }));
        assert.equal(result.error, "invalid_request_object");
        assert.equal(result.status, 302, "redirected to the single registered redirect_uri");
        descriptions.push(result.description);
      }
      // The pinned client (PS256) sent an ES256 object: refused, and its configuration not told.
      const pinned = await errorOf(await authorizeGet(provider, { client_id: "pinned", request: signRaw({ alg: "ES256", kid: "k1" }, { ...claims, iss: "pinned" }) }));
      assert.equal(pinned.error, "invalid_request_object");
      descriptions.push(pinned.description);
      // A client without registered keys: the same description as a bad signature.
      const noKeys = await errorOf(await authorizeGet(provider, { client_id: "conf", request: signRaw({ alg: "ES256", kid: "k1" }, { ...claims, iss: "conf" }) }));
      const badSignature = await errorOf(await authorizeGet(provider, { client_id: "pkj", request: signRaw({ alg: "ES256", kid: "k1" }, claims, rsaPair.privateKey) }));
      assert.equal(noKeys.error, "invalid_request_object");
      assert.equal(noKeys.description, badSignature.description);
      descriptions.push(noKeys.description);
      for (const description of descriptions) {
        assert.doesNotMatch(description, /555|locked|HS256|PS256|ES256|jwks|registered keys/, description);
      }
      assert.equal(descriptions[0], descriptions[1], "an unknown and a refused algorithm read the same");
      assert.equal(descriptions[1], descriptions[4], "a globally refused and a client-refused algorithm read the same");
    } finally {
      await provider.close();
    }
  });

  it("17.r5 a large request object (past maxParameterLength) is accepted at authorize and PAR; past maxRequestObjectLength it is a 400", async () => {
    const provider = newProvider();
    try {
      // An id_token_hint-sized claim this provider does not read, plus the signature: about 7 KB.
      const large = await requestObject({ padding: "p".repeat(6500) });
      assert.ok(large.length > 4096 && large.length < 16384);
      assert.equal((await errorOf(await authorizeGet(provider, { client_id: "pkj", request: large }))).error, "login_required");
      const pushed = await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: "pkj", client_assertion_type: ASSERTION_TYPE, client_assertion: assertion(), request: await requestObject({ padding: "p".repeat(6500) }) })));
      assert.equal(pushed.status, 201);
      // POST at authorize too.
      const posted = await provider.fetch(new Request(`${ISSUER}/connect/authorize`, form({ client_id: "pkj", request: await requestObject({ padding: "p".repeat(6500) }) })));
      assert.equal((await errorOf(posted)).error, "login_required");

      const oversize = await requestObject({ padding: "p".repeat(17000) });
      assert.ok(oversize.length > 16384);
      const refusedGet = await errorOf(await authorizeGet(provider, { client_id: "pkj", request: oversize }));
      assert.deepEqual([refusedGet.status, refusedGet.error], [400, "invalid_request"]);
      const refusedPost = await errorOf(await provider.fetch(new Request(`${ISSUER}/connect/authorize`, form({ client_id: "pkj", request: oversize }))));
      assert.deepEqual([refusedPost.status, refusedPost.error], [400, "invalid_request"]);
      const refusedPar = await errorOf(await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: "pkj", client_assertion_type: ASSERTION_TYPE, client_assertion: assertion(), request: oversize }))));
      assert.deepEqual([refusedPar.status, refusedPar.error], [400, "invalid_request"]);
      // Other parameters keep maxParameterLength.
      const longState = await errorOf(await authorizeGet(provider, { client_id: "pkj", ...authorizeParams({ state: "s".repeat(5000) }) }));
      assert.deepEqual([longState.status, longState.error], [400, "invalid_request"]);
      // What is stored stays within 8 KiB: an object whose parameters are larger is refused, never a 5xx.
      const heavy = await provider.fetch(new Request(`${ISSUER}/connect/par`, form({ client_id: "pkj", client_assertion_type: ASSERTION_TYPE, client_assertion: assertion(), request: await requestObject({ state: "s".repeat(5000), nonce: "n".repeat(5000) }) })));
      assert.deepEqual([heavy.status, (await errorOf(heavy)).error], [400, "invalid_request"]);
    } finally {
      await provider.close();
    }
  });

  it("17.r5 the host config takes limits.maxRequestObjectLength and par.maxPendingPerClient, and refuses bad values", async () => {
    const { parseConfig, ConfigError } = await import("../packages/host/src/config.ts");
    const base = { issuer: "https://idp.test", store: { kind: "memory" } };
    parseConfig({ ...base, limits: { maxRequestObjectLength: 32768 }, par: { maxPendingPerClient: 500 } });
    assert.throws(() => parseConfig({ ...base, limits: { maxRequestObjectLength: 10 } }), ConfigError);
    assert.throws(() => parseConfig({ ...base, par: { maxPendingPerClient: 0 } }), ConfigError);
    assert.throws(() => parseConfig({ ...base, par: { maxPendingPerClient: "many" } }), ConfigError);
  });
});
