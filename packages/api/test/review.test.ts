import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect, type AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createMemoryReplayCache, createTokenValidator, type TokenValidator, type TokenValidatorOptions } from "@tessera/api";
import { requireToken } from "@tessera/api/express";
import { tokenHook } from "@tessera/api/fastify";
import { tokenAuth } from "@tessera/api/hono";
import { mtlsFetch } from "@tessera/client";
import { accessTokenHash, certificateThumbprint } from "@tessera/protocol";
import { createTestHost, type TestHost } from "@tessera/testing";
import express from "express";
import Fastify, { type FastifyInstance } from "fastify";
import { Hono } from "hono";
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { makePki, type TestPki } from "../../../test/support/certs.ts";

const API = "https://api.test/data";

interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function proofKey(): Promise<ProofKey> {
  const pair = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  return { privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** An RFC 9449 proof for `htm` `htu`, with `ath` when a token is given. */
function dpopProof(key: ProofKey, htm: string, htu: string, extra: { accessToken?: string; nonce?: string; ath?: string } = {}): Promise<string> {
  return new SignJWT({
    htm,
    htu,
    jti: crypto.randomUUID(),
    ...(extra.accessToken ? { ath: extra.ath ?? accessTokenHash(extra.accessToken) } : {}),
    ...(extra.nonce ? { nonce: extra.nonce } : {}),
  })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: key.jwk })
    .setIssuedAt()
    .sign(key.privateKey);
}

/** A client-credentials token from the provider, DPoP-bound when a proof key is given. */
async function clientToken(host: TestHost, client: string, key?: ProofKey): Promise<{ access_token: string; token_type: string }> {
  const tokenEndpoint = `${host.issuer}/connect/token`;
  const response = await fetch(tokenEndpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString("base64")}`,
      ...(key ? { dpop: await dpopProof(key, "POST", tokenEndpoint) } : {}),
    },
    body: "grant_type=client_credentials",
  });
  assert.equal(response.status, 200, `token for ${client}`);
  return (await response.json()) as { access_token: string; token_type: string };
}

/** One raw HTTP/1.1 request over a socket (so targets and Host headers reach the app exactly as written). */
function rawRequest(port: number, target: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => (data += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(data)?.[1];
      if (!status) return reject(new Error(`no HTTP response to ${target}: ${JSON.stringify(data)}`));
      resolve({ status: Number(status), body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
    const lines = [`GET ${target} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`), "Connection: close", "", ""];
    socket.write(lines.join("\r\n"));
  });
}

/** An Express app and a Fastify app behind `hook`, both listening on 127.0.0.1; `run` gets their ports. */
async function withServers(makeExpress: (app: express.Express) => void, makeFastify: (fastify: FastifyInstance) => void, run: (ports: { express: number; fastify: number }) => Promise<void>, http: { insecureHTTPParser?: boolean } = {}): Promise<void> {
  const app = express();
  makeExpress(app);
  const server: Server = createHttpServer(http, app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const fastify = Fastify({ http });
  makeFastify(fastify);
  await fastify.listen({ port: 0, host: "127.0.0.1" });
  try {
    await run({ express: (server.address() as AddressInfo).port, fastify: (fastify.server.address() as AddressInfo).port });
  } finally {
    server.close();
    await fastify.close();
  }
}

const config = () => ({
  apiScopes: [{ name: "api1.read" }],
  apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
  clients: [
    { client_id: "bound", client_secret: "bound-secret", grant_types: ["client_credentials" as const], scope: "api1.read", dpop_bound_access_tokens: true },
    { client_id: "plain", client_secret: "plain-secret", grant_types: ["client_credentials" as const], scope: "api1.read" },
  ],
});

describe("review: @tessera/api", () => {
  let host: TestHost;
  let key: ProofKey;
  let other: ProofKey;
  let bound: string;
  let plain: string;
  const validator = (extra: Partial<TokenValidatorOptions> = {}) => createTokenValidator({ issuer: host.issuer, audience: "urn:api1", requiredScopes: ["api1.read"], ...extra });
  const call = (scheme: string, token: string, proof?: string, url = API) => new Request(url, { headers: { authorization: `${scheme} ${token}`, ...(proof ? { dpop: proof } : {}) } });

  before(async () => {
    host = await createTestHost(config(), { listen: true });
    key = await proofKey();
    other = await proofKey();
    const issued = await clientToken(host, "bound", key);
    assert.equal(issued.token_type, "DPoP");
    bound = issued.access_token;
    assert.equal((decodeJwt(bound).cnf as { jkt: string }).jkt, key.jkt);
    plain = (await clientToken(host, "plain")).access_token;
  });
  after(() => host.close());

  test("9.1 default validator (no dpop option) accepts a DPoP-bound token with the DPoP scheme and a valid proof", async () => {
    const result = await validator().validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })));
    assert.equal(result.ok, true, result.ok ? "" : `${result.error}: ${result.errorDescription}`);
    if (result.ok) {
      assert.equal(result.tokenType, "DPoP");
      assert.equal(result.claims.sub, "bound");
    }
  });

  test("9.2 default validator still accepts Bearer for tokens that are not sender-constrained", async () => {
    const result = await validator().validate(call("Bearer", plain));
    assert.equal(result.ok, true);
    if (result.ok) assert.equal(result.tokenType, "Bearer");
  });

  test("9.3 default validator refuses a DPoP-bound token as Bearer, and DPoP requests with a bad or missing proof", async () => {
    const v = validator();
    const cases: [string, Request][] = [
      ["bound token as Bearer", call("Bearer", bound)],
      ["bound token as Bearer with a proof", call("Bearer", bound, await dpopProof(key, "GET", API, { accessToken: bound }))],
      ["no proof", call("DPoP", bound)],
      ["wrong htm", call("DPoP", bound, await dpopProof(key, "POST", API, { accessToken: bound }))],
      ["wrong htu", call("DPoP", bound, await dpopProof(key, "GET", "https://api.test/other", { accessToken: bound }))],
      ["ath of another token", call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound, ath: accessTokenHash(plain) }))],
      ["a key other than cnf.jkt", call("DPoP", bound, await dpopProof(other, "GET", API, { accessToken: bound }))],
      ["unbound token with the DPoP scheme", call("DPoP", plain, await dpopProof(key, "GET", API, { accessToken: plain }))],
    ];
    for (const [name, request] of cases) {
      const result = await v.validate(request);
      assert.equal(result.ok, false, name);
      if (result.ok) continue;
      assert.equal(result.status, 401, name);
      assert.match(result.wwwAuthenticate, /DPoP algs="[^"]+", error="(invalid_token|invalid_dpop_proof)"/, name);
    }
    const replayed = await dpopProof(key, "GET", API, { accessToken: bound });
    assert.equal((await v.validate(call("DPoP", bound, replayed))).ok, true);
    assert.equal((await v.validate(call("DPoP", bound, replayed))).ok, false, "replayed proof");
  });

  test("9.4 dpop.required refuses Bearer and accepts DPoP; a missing token is challenged with both schemes by default", async () => {
    const strict = validator({ dpop: { required: true } });
    const refused = await strict.validate(call("Bearer", plain));
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.wwwAuthenticate, /^DPoP algs="[^"]+", error="invalid_token"/);
    assert.equal((await strict.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })))).ok, true);
    const missing = await validator().validate(new Request(API));
    assert.equal(missing.ok, false);
    if (!missing.ok) assert.match(missing.wwwAuthenticate, /^Bearer, DPoP algs="[^"]+"$/);
  });

  test("17.c DPoP nonces made with one dpop.nonceSecret are accepted by every validator sharing it", async () => {
    const secret = "a-shared-nonce-secret-of-32-bytes!";
    const first = validator({ dpop: { requireNonce: true, nonceSecret: secret } });
    const second = validator({ dpop: { requireNonce: true, nonceSecret: secret } });
    const stranger = validator({ dpop: { requireNonce: true, nonceSecret: "another-secret-that-is-long-enough" } });
    const challenge = await first.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })));
    assert.equal(challenge.ok, false);
    if (challenge.ok) return;
    assert.equal(challenge.error, "use_dpop_nonce");
    const nonce = challenge.dpopNonce!;
    const accepted = await second.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound, nonce })));
    assert.equal(accepted.ok, true, accepted.ok ? "" : `${accepted.error}: ${accepted.errorDescription}`);
    const refused = await stranger.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound, nonce })));
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.equal(refused.error, "use_dpop_nonce");
    assert.throws(() => validator({ dpop: { nonceSecret: "short" } }), TypeError);
  });

  test("17.b adapters build the DPoP htu from a configured baseUrl, not from the Host header", async () => {
    const v = validator();
    const app = express();
    app.get("/data", requireToken(v, { baseUrl: "https://api.example.com" }), (req, res) => res.json({ sub: req.auth!.claims.sub }));
    app.get("/host", requireToken(v), (req, res) => res.json({ sub: req.auth!.claims.sub }));
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const fastify = Fastify();
    fastify.get("/data", { preHandler: tokenHook(v, { baseUrl: "https://api.example.com/" }) }, async (request) => ({ sub: request.auth!.claims.sub }));
    await fastify.listen({ port: 0, host: "127.0.0.1" });
    try {
      for (const local of [`http://127.0.0.1:${(server.address() as AddressInfo).port}`, `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`]) {
        const send = async (path: string, htu: string, headers: Record<string, string> = {}) =>
          fetch(`${local}${path}`, { headers: { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", htu, { accessToken: bound }), ...headers } });
        assert.equal((await send("/data", "https://api.example.com/data")).status, 200, `${local}: htu from baseUrl`);
        assert.equal((await send("/data", `${local}/data`)).status, 401, `${local}: htu from the Host header is not the public URL`);
        assert.equal((await send("/data", "http://evil.test/data", { host: "evil.test" })).status, 401, `${local}: a forged Host header does not change htu`);
      }
      // Without baseUrl the URL still comes from the request (Host header), as before.
      const local = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const plainHost = await fetch(`${local}/host`, { headers: { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", `${local}/host`, { accessToken: bound }) } });
      assert.equal(plainHost.status, 200);
      assert.throws(() => requireToken(v, { baseUrl: "not a url" }), TypeError);
    } finally {
      server.close();
      await fastify.close();
    }
  });

  test("17.f adapters refuse targets that would resolve onto another path (//host, dot segments) or are not URLs (asterisk-form)", async () => {
    const v = validator();
    const base = "https://api.example.com";
    await withServers(
      (app) => app.use(requireToken(v, { baseUrl: base }), (req, res) => res.json({ path: req.originalUrl })),
      (fastify) => fastify.get("/*", { preHandler: tokenHook(v, { baseUrl: base }) }, async (request) => ({ path: request.url })),
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          const send = async (target: string, htu: string) =>
            rawRequest(port, target, "api.example.com", { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", htu, { accessToken: bound }) });
          // Before: each of these was checked as https://api.example.com/data, though the router serves another path.
          for (const target of ["//evil.com/data", "/a/%2e%2e/data", "/a/%2E./data", "/a/.%2e/data", "/a/../data", "/./data", "/a/%2e/../data", "*"]) {
            const response = await send(target, `${base}/data`);
            assert.equal(response.status, 400, `${port} ${target}`);
            assert.equal((JSON.parse(response.body) as { error: string }).error, "invalid_request", `${port} ${target}`);
          }
          const fine = await send("/data?x=1", `${base}/data`);
          assert.equal(fine.status, 200, `${port}: an ordinary target`);
          assert.equal((JSON.parse(fine.body) as { path: string }).path, "/data?x=1");
          assert.equal((await send("/a..b/.c/data", `${base}/a..b/.c/data`)).status, 200, `${port}: dots inside segments are not dot segments`);
        }
      },
    );
    // Without baseUrl the same rules hold (the URL is the request's own origin plus the raw target).
    await withServers(
      (app) => app.use(requireToken(v), (req, res) => res.json({ path: req.originalUrl })),
      (fastify) => fastify.get("/*", { preHandler: tokenHook(v) }, async (request) => ({ path: request.url })),
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          const origin = `http://127.0.0.1:${port}`;
          const send = async (target: string, htu: string) => rawRequest(port, target, `127.0.0.1:${port}`, { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", htu, { accessToken: bound }) });
          assert.equal((await send("/a/%2e%2e/data", `${origin}/data`)).status, 400, `${port}: dot segments without baseUrl`);
          assert.equal((await send("//evil.com/data", `${origin}//evil.com/data`)).status, 400, `${port}: a leading // without baseUrl`);
          assert.equal((await send("/data", `${origin}/data`)).status, 200, `${port}: an ordinary target without baseUrl`);
        }
      },
    );
    // A backslash never reaches the app through Node's strict parser; with the lenient one it must still be refused.
    await withServers(
      (app) => app.use(requireToken(v, { baseUrl: base }), (req, res) => res.json({ path: req.originalUrl })),
      (fastify) => fastify.get("/*", { preHandler: tokenHook(v, { baseUrl: base }) }, async (request) => ({ path: request.url })),
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          for (const target of ["/a\\..\\data", "/\\evil.com/data"]) {
            const response = await rawRequest(port, target, "api.example.com", { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", `${base}/data`, { accessToken: bound }) });
            assert.equal(response.status, 400, `${port} ${target}`);
          }
        }
      },
      { insecureHTTPParser: true },
    );
  });

  test("17.g a Host header no URL can be built from is a 400 invalid_request, not a 500", async () => {
    const v = validator();
    await withServers(
      (app) => {
        app.get("/data", requireToken(v), (req, res) => res.json({ sub: req.auth!.claims.sub }));
        app.get("/based", requireToken(v, { baseUrl: "https://api.example.com" }), (req, res) => res.json({ sub: req.auth!.claims.sub }));
      },
      (fastify) => {
        fastify.get("/data", { preHandler: tokenHook(v) }, async (request) => ({ sub: request.auth!.claims.sub }));
        fastify.get("/based", { preHandler: tokenHook(v, { baseUrl: "https://api.example.com" }) }, async (request) => ({ sub: request.auth!.claims.sub }));
      },
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          for (const host of ["a b", "[", "x:99999", "", "x:1:2", "a/b", "a@b", "[::1"]) {
            const response = await rawRequest(port, "/data", host, { authorization: `Bearer ${plain}` });
            assert.equal(response.status, 400, `${port} Host ${JSON.stringify(host)}`);
            assert.equal((JSON.parse(response.body) as { error: string }).error, "invalid_request", `${port} Host ${JSON.stringify(host)}`);
          }
          assert.equal((await rawRequest(port, "/data", `127.0.0.1:${port}`, { authorization: `Bearer ${plain}` })).status, 200, `${port}: a good Host`);
          assert.equal((await rawRequest(port, "/data", "[::1]:8080", { authorization: `Bearer ${plain}` })).status, 200, `${port}: an IPv6 Host`);
          // With baseUrl the Host header plays no part.
          assert.equal((await rawRequest(port, "/based", "a b", { authorization: `Bearer ${plain}` })).status, 200, `${port}: baseUrl ignores Host`);
        }
      },
    );
  });

  test("17.j a Host header with underscores in its labels or one trailing dot is a valid host", async () => {
    const v = validator();
    await withServers(
      (app) => app.get("/data", requireToken(v), (req, res) => res.json({ sub: req.auth!.claims.sub })),
      (fastify) => fastify.get("/data", { preHandler: tokenHook(v) }, async (request) => ({ sub: request.auth!.claims.sub })),
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          for (const host of ["my_api:3000", "my_api", "_svc.my_api.internal", "example.com.", "example.com.:8443"]) {
            const response = await rawRequest(port, "/data", host, { authorization: `Bearer ${plain}` });
            assert.equal(response.status, 200, `${port} Host ${JSON.stringify(host)}: ${response.body}`);
          }
          // The DPoP htu is built on that host.
          const proof = await dpopProof(key, "GET", "http://my_api:3000/data", { accessToken: bound });
          assert.equal((await rawRequest(port, "/data", "my_api:3000", { authorization: `DPoP ${bound}`, dpop: proof })).status, 200, `${port}: htu on an underscore host`);
          for (const host of ["my api", "a b", "example.com..", ".example.com", "a..b", "[my_api]", "[::1]x", "my_api:65536", "_:"]) {
            const response = await rawRequest(port, "/data", host, { authorization: `Bearer ${plain}` });
            assert.equal(response.status, 400, `${port} Host ${JSON.stringify(host)}`);
            assert.equal((JSON.parse(response.body) as { error: string }).error, "invalid_request", `${port} Host ${JSON.stringify(host)}`);
          }
        }
      },
    );
  });

  test("17.j absolute-form request targets are accepted (RFC 9112 §3.2.2): on baseUrl, or on their own authority instead of Host", async () => {
    const v = validator();
    const base = "https://api.example.com";
    await withServers(
      (app) => app.use(requireToken(v, { baseUrl: base }), (req, res) => res.json({ sub: req.auth!.claims.sub, path: req.path })),
      (fastify) => fastify.get("/*", { preHandler: tokenHook(v, { baseUrl: base }) }, async (request) => ({ sub: request.auth!.claims.sub, path: `/${(request.params as { "*": string })["*"]}` })),
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          const send = async (target: string, htu: string) => rawRequest(port, target, "api.example.com", { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", htu, { accessToken: bound }) });
          for (const target of ["http://other.test/data", "https://api.example.com/data?x=1", "HTTP://other.test:8080/data"]) {
            const response = await send(target, `${base}/data`);
            assert.equal(response.status, 200, `${port} ${target}: ${response.body}`);
            assert.deepEqual(JSON.parse(response.body), { sub: "bound", path: "/data" }, `${port} ${target}: the router serves the path htu names`);
          }
          assert.equal((await send("http://other.test/data", "http://other.test/data")).status, 401, `${port}: with baseUrl the target's authority plays no part`);
          // Fastify routes each of these (on another path than a URL parser would give); the adapters refuse them.
          for (const target of ["http://other.test//data", "http://other.test/a/../data", "http://other.test/a/%2e%2e/data", "http://other.test", "http://other.test?x=/data", "http://u@other.test/data", "ftp://other.test/data"]) {
            const response = await send(target, `${base}/data`);
            assert.equal(response.status, 400, `${port} ${target}: ${response.body}`);
            assert.equal((JSON.parse(response.body) as { error: string }).error, "invalid_request", `${port} ${target}`);
          }
          // Node's parser or the framework may refuse these before the adapter runs: a 400 either way.
          for (const target of ["http://other.test:99999/data", "http:///data", "http:/data"]) assert.equal((await send(target, `${base}/data`)).status, 400, `${port} ${target}`);
        }
      },
    );
    await withServers(
      (app) => app.use(requireToken(v), (req, res) => res.json({ sub: req.auth!.claims.sub, path: req.path })),
      (fastify) => fastify.get("/*", { preHandler: tokenHook(v) }, async (request) => ({ sub: request.auth!.claims.sub, path: `/${(request.params as { "*": string })["*"]}` })),
      async (ports) => {
        for (const port of [ports.express, ports.fastify]) {
          const send = async (target: string, host: string, htu: string) => rawRequest(port, target, host, { authorization: `DPoP ${bound}`, dpop: await dpopProof(key, "GET", htu, { accessToken: bound }) });
          // The target's authority replaces Host (which is ignored, even when it is not a valid host).
          for (const host of ["ignored.test", "a b"]) {
            const response = await send("http://api.example:8080/data?x=1", host, "http://api.example:8080/data");
            assert.equal(response.status, 200, `${port} Host ${host}: ${response.body}`);
          }
          assert.equal((await send("http://my_api:3000/data", "ignored.test", "http://my_api:3000/data")).status, 200, `${port}: an underscore authority`);
          assert.equal((await send("http://api.example/data", "ignored.test", "http://ignored.test/data")).status, 401, `${port}: htu is not built on Host`);
          for (const target of ["https://api.example/data", "http://api.example/a/../data", "http://a b/data", "http://api.example//data"]) {
            const response = await send(target, "api.example", "http://api.example/data");
            assert.equal(response.status, 400, `${port} ${target}: ${response.body}`);
          }
        }
      },
    );
  });

  test("17.h a DPoP nonce must be exactly the two dot-separated parts the API issued", async () => {
    const v = validator({ dpop: { requireNonce: true, nonceSecret: "a-shared-nonce-secret-of-32-bytes!" } });
    const challenge = await v.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })));
    assert.equal(challenge.ok, false);
    if (challenge.ok) return;
    const nonce = challenge.dpopNonce!;
    assert.equal(nonce.split(".").length, 2);
    for (const forged of [`${nonce}.x`, `${nonce}.`, `${nonce}..${nonce}`, `.${nonce}`]) {
      const refused = await v.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound, nonce: forged })));
      assert.equal(refused.ok, false, forged);
      if (!refused.ok) assert.equal(refused.error, "use_dpop_nonce", forged);
    }
    const accepted = await v.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound, nonce })));
    assert.equal(accepted.ok, true);
  });

  test("9.5 a full replay cache refuses new proofs (fail closed) instead of forgetting a live jti", async () => {
    const v = validator({ dpop: { replayCache: createMemoryReplayCache(Date.now, 1) } });
    const first = await dpopProof(key, "GET", API, { accessToken: bound });
    assert.equal((await v.validate(call("DPoP", bound, first))).ok, true);
    const second = await v.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })));
    assert.equal(second.ok, false, "no room to remember a new jti");
    if (!second.ok) {
      assert.equal(second.status, 401);
      assert.equal(second.error, "invalid_dpop_proof");
      assert.match(second.errorDescription ?? "", /replay cache is full/);
    }
    assert.equal((await v.validate(call("DPoP", bound, first))).ok, false, "the first proof is still remembered: its replay is refused");

    // Expired entries make room again; live ones are never dropped.
    let now = 1_000_000;
    const cache = createMemoryReplayCache(() => now, 2);
    assert.equal(await cache.add("a", now + 1000), true);
    assert.equal(await cache.add("b", now + 5000), true);
    assert.equal(await cache.add("c", now + 5000), "full");
    assert.equal(await cache.add("a", now + 1000), false, "a is live and remembered");
    now += 1000;
    assert.equal(await cache.add("c", now + 5000), true, "a has expired: room for c");
    assert.equal(await cache.add("b", now + 5000), false, "b is still remembered");
    assert.equal(await cache.add("d", now + 5000), "full");
  });

  test("9.6 one key cannot fill the replay cache: a per-key quota refuses that key's proofs, other keys keep working", async () => {
    const otherToken = (await clientToken(host, "bound", other)).access_token;
    assert.equal((decodeJwt(otherToken).cnf as { jkt: string }).jkt, other.jkt);
    // A cache of 10 proofs, at most 3 live per key: the flooding key gets 3, then is refused; nothing else is touched.
    const v = validator({ dpop: { replayCache: createMemoryReplayCache(Date.now, 10, 3) } });
    for (let i = 0; i < 3; i++) assert.equal((await v.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })))).ok, true, `proof ${i} of the flooding key`);
    for (let i = 0; i < 10; i++) {
      const refused = await v.validate(call("DPoP", bound, await dpopProof(key, "GET", API, { accessToken: bound })));
      assert.equal(refused.ok, false, `flood proof ${i}`);
      if (refused.ok) continue;
      assert.equal(refused.status, 401);
      assert.equal(refused.error, "invalid_dpop_proof");
      assert.equal(refused.errorDescription, "too many proofs for this key, retry later");
      assert.match(refused.wwwAuthenticate, /DPoP algs="[^"]+", error="invalid_dpop_proof"/);
    }
    for (let i = 0; i < 3; i++) {
      const result = await v.validate(call("DPoP", otherToken, await dpopProof(other, "GET", API, { accessToken: otherToken })));
      assert.equal(result.ok, true, result.ok ? "" : `another key, proof ${i}: ${result.error}: ${result.errorDescription}`);
    }

    // The cache itself: the quota counts live values per key; a key's expired values make room for that key.
    let now = 1_000_000;
    const cache = createMemoryReplayCache(() => now, 5, 2);
    assert.equal(await cache.add("k:1", now + 1000, "k"), true);
    assert.equal(await cache.add("k:2", now + 5000, "k"), true);
    assert.equal(await cache.add("k:3", now + 5000, "k"), "key-quota");
    assert.equal(await cache.add("k:1", now + 1000, "k"), false, "a replay is still a replay");
    assert.equal(await cache.add("j:1", now + 5000, "j"), true, "another key has its own share");
    assert.equal(await cache.add("j:2", now + 5000, "j"), true);
    assert.equal(await cache.add("x", now + 5000), true, "a value without a key counts only against the total");
    assert.equal(await cache.add("y", now + 5000), "full", "the total still applies");
    now += 1000;
    assert.equal(await cache.add("k:3", now + 5000, "k"), true, "k:1 has expired: room for k again");
    assert.equal(await cache.add("k:4", now + 5000, "k"), "key-quota");
    assert.equal(await cache.add("k:2", now + 5000, "k"), false, "k:2 is still remembered");

    // The default in-process cache has a quota of 10 000 live proofs per key (a tenth of it).
    const standard = createMemoryReplayCache(() => now);
    for (let i = 0; i < 10_000; i++) assert.equal(await standard.add(`k:${i}`, now + 70_000, "k"), true);
    assert.equal(await standard.add("k:10000", now + 70_000, "k"), "key-quota");
    assert.equal(await standard.add("j:0", now + 70_000, "j"), true);
  });

  test("17.e adapters answer cleanly when the response cannot be written or validation throws: no unhandled rejection", async () => {
    const badHeader: TokenValidator = { validate: async () => ({ ok: false, status: 401, error: "invalid_token", wwwAuthenticate: 'Bearer error="invalid_token"\nx-injected: 1' }) };
    const throwing: TokenValidator = {
      validate: async () => {
        throw new Error("validator failed");
      },
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      await withServers(
        (app) => {
          app.get("/header", requireToken(badHeader), (_req, res) => res.json({}));
          app.get("/throws", requireToken(throwing), (_req, res) => res.json({}));
        },
        (fastify) => {
          fastify.get("/header", { preHandler: tokenHook(badHeader) }, async () => ({}));
          fastify.get("/throws", { preHandler: tokenHook(throwing) }, async () => ({}));
        },
        async (ports) => {
          for (const port of [ports.express, ports.fastify]) {
            for (const path of ["/header", "/throws"]) {
              const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
              assert.equal(response.status, 500, `${port}${path}`);
              assert.equal(response.headers.get("x-injected"), null);
              await response.arrayBuffer();
            }
            // The server still serves.
            assert.equal((await fetch(`http://127.0.0.1:${port}/throws`, { signal: AbortSignal.timeout(10_000) })).status, 500);
          }
        },
      );
      const hono = new Hono();
      hono.get("/header", tokenAuth(badHeader), (c) => c.json({}));
      hono.get("/throws", tokenAuth(throwing), (c) => c.json({}));
      for (const path of ["/header", "/throws"]) assert.equal((await hono.request(path)).status, 500, `hono ${path}`);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    assert.deepEqual(unhandled, []);
  });
});

describe("review: node adapters and unverified client certificates", () => {
  let pki: TestPki;
  let host: TestHost;

  before(async () => {
    pki = makePki();
    const selfJwk = { ...(await exportJWK(new X509Certificate(pki.client("self").cert).publicKey)), kty: "EC" };
    host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
        clients: [{ client_id: "self", token_endpoint_auth_method: "self_signed_tls_client_auth", jwks: { keys: [selfJwk] }, grant_types: ["client_credentials"], scope: "api1.read", tls_client_certificate_bound_access_tokens: true }],
        mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca },
      },
      { listen: true },
    );
  });
  after(async () => {
    await host.close();
    pki.cleanup();
  });

  test("17.a Express and Fastify pass a self-signed (unverified) peer certificate on, so certificate-bound tokens work", async () => {
    const self = pki.client("self");
    const withCert = mtlsFetch({ cert: self.cert, key: self.key, ca: pki.ca });
    const tokenResponse = await withCert(`${host.mtlsUrl}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "self" }).toString(),
    });
    assert.equal(tokenResponse.status, 200);
    const token = ((await tokenResponse.json()) as { access_token: string }).access_token;
    assert.equal((decodeJwt(token).cnf as Record<string, string>)["x5t#S256"], certificateThumbprint(self.cert));

    const v = createTokenValidator({ issuer: host.issuer, audience: "urn:api1" });
    const tls = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca, requestCert: true, rejectUnauthorized: false };
    const app = express();
    app.get("/data", requireToken(v), (req, res) => res.json({ sub: req.auth!.claims.sub }));
    const expressServer = createHttpsServer(tls, app);
    await new Promise<void>((resolve) => expressServer.listen(0, "127.0.0.1", resolve));
    const fastify = Fastify({ https: tls });
    fastify.get("/data", { preHandler: tokenHook(v) }, async (request) => ({ sub: request.auth!.claims.sub }));
    await fastify.listen({ port: 0, host: "127.0.0.1" });
    const other = pki.client("a");
    const withOther = mtlsFetch({ cert: other.cert, key: other.key, ca: pki.ca });
    const noCert = mtlsFetch({ ca: pki.ca } as never);
    try {
      for (const port of [(expressServer.address() as AddressInfo).port, (fastify.server.address() as AddressInfo).port]) {
        const url = `https://127.0.0.1:${port}/data`;
        const ok = await withCert(url, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(ok.status, 200, `${port}: the bound self-signed certificate`);
        assert.deepEqual(await ok.json(), { sub: "self" });
        assert.equal((await withOther(url, { headers: { authorization: `Bearer ${token}` } })).status, 401, `${port}: another (CA-trusted) certificate`);
        assert.equal((await noCert(url, { headers: { authorization: `Bearer ${token}` } })).status, 401, `${port}: no certificate`);
      }
    } finally {
      expressServer.close();
      await fastify.close();
    }
  });
});
