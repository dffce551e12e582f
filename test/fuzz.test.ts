import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestHost } from "@tessera/testing";
import fc from "fast-check";
import { CompactSign, exportJWK, generateKeyPair, type CompactJWSHeaderParameters, type CryptoKey } from "jose";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

/**
 * Cases per property: a thousand on the memory store and 300 on each SQL store in `npm test`, twenty
 * thousand (on every store) with `npm run fuzz`.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const SQL_RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Hostile strings: empty, unicode, control characters, lone surrogates, percent-encodings, very long. */
const hostile = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.constantFrom("", " ", "%", "%ZZ", "%E0%A4%A", "\u0000", "\uD800", "a".repeat(5000), "openid".repeat(800), "<script>", "' OR 1=1 --", "../../etc/passwd", "https://evil.test", "http://127.0.0.1:1", "null", "[]", "{}"),
);
const name = fc.constantFrom("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "response_mode", "login_hint", "id_token_hint", "request", "grant_type", "code", "code_verifier", "refresh_token", "resource", "client_secret", "client_assertion", "client_assertion_type", "token", "token_type_hint", "dpop_jkt", "post_logout_redirect_uri", "csrf", "returnUrl", "username", "password", "decision", "logoutId", "sessionId", "clientId");
const params = fc.array(fc.tuple(name, hostile), { maxLength: 12 });
const encode = (pairs: [string, string][]) => {
  const search = new URLSearchParams();
  for (const [k, v] of pairs) search.append(k, v);
  return search.toString();
};

/**
 * Times as a request may carry them: near now and fractional (mostly inside the accepted window [min, max]
 * seconds from now, so they reach the store), whole, negative, huge, beyond the safe integers, or not finite
 * once parsed (`1e400`).
 */
const seconds = (now: number, min: number, max: number) =>
  fc.oneof(
    { arbitrary: fc.integer({ min: min * 1000, max: max * 1000 }).map((ms) => now + ms / 1000), weight: 6 },
    { arbitrary: fc.integer({ min: min - 10, max: max + 10 }).map((d) => now + d), weight: 1 },
    { arbitrary: fc.constantFrom<number | "1e400">(-1, 0, 0.5, -0.5, 1e300, -1e300, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, Number.MIN_VALUE, now + 1e-9, "1e400"), weight: 2 },
  );
/** Clients for signed assertions: several, so the failed-authentication throttle (per client) rarely locks the valid cases out. */
const HMAC_CLIENTS = 20;
const HMAC_SECRET = "a-long-shared-secret-of-at-least-32-bytes!";
/** A JWT's payload with `time` written as given: `1e400` (not finite once parsed) cannot come from JSON.stringify. */
const withTime = (payload: Record<string, unknown>, claim: string, time: number | "1e400") => JSON.stringify({ ...payload, [claim]: 0 }).replace(`"${claim}":0`, `"${claim}":${time}`);
async function signRaw(payloadJson: string, header: CompactJWSHeaderParameters, key: CryptoKey | Uint8Array): Promise<string> {
  // Signed over the exact payload text: jose's SignJWT would re-serialize it.
  return new CompactSign(new TextEncoder().encode(payloadJson)).setProtectedHeader(header).sign(key);
}

const dir = mkdtempSync(join(tmpdir(), "tessera-fuzz-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const postgres = await startTestPostgres();
after(() => postgres?.close());

type StoreConfig = NonNullable<ReturnType<typeof baseConfig>["store"]>;

fuzzSuite("memory", async () => ({ kind: "memory" }), RUNS);
fuzzSuite("sqlite", async () => ({ kind: "sqlite", path: join(dir, "fuzz.db") }), SQL_RUNS);
fuzzSuite("postgres", async () => ({ kind: "postgres", url: await postgres!.createDatabase() }), SQL_RUNS, postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)");

/** The same properties on every store: PostgreSQL refuses values (too long, NUL) that the others take. */
function fuzzSuite(storeName: string, store: () => Promise<StoreConfig>, RUNS: number, skip: string | false = false): void {
  describe(`fuzzed protocol surface on the ${storeName} store: never a 5xx, never a crash`, { skip }, () => {
    let flow: Flow;
    let host: TestHost;
    let refreshToken: string;
    let adminToken: string;

    before(async () => {
      const config = baseConfig();
      config.store = await store();
      config.admin = { role: "admin" };
      config.serverSideSessions = { enabled: true };
      config.clients = [...config.clients!, { client_id: "offline", client_secret: "offline-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token", "client_credentials"], scope: "openid offline_access api1.read" }, { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" }, ...Array.from({ length: HMAC_CLIENTS }, (_, i) => ({ client_id: `hmac${i}`, client_secret: HMAC_SECRET, token_endpoint_auth_method: "client_secret_jwt" as const, grant_types: ["client_credentials"], scope: "api1.read" }))];
      flow = await Flow.create(config);
      host = flow.host;
      const { code, verifier } = await flow.signIn({ client_id: "offline", scope: "openid offline_access" });
      const tokens = (await (await flow.redeem(code, verifier, { id: "offline", secret: "offline-secret" })).json()) as { refresh_token: string };
      refreshToken = tokens.refresh_token;
      const admin = await flow.token({ grant_type: "client_credentials" }, { id: "admin-cli", secret: "cli-secret" });
      adminToken = ((await admin.json()) as { access_token: string }).access_token;
    });
    after(() => flow.close());

    const send = (request: Request) => host.fetch(request);
    const check = async (response: Response, what: string) => {
      assert.ok(response.status < 500, `${what} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    };

    it("GET endpoints and pages with random query strings", async () => {
      const paths = ["/connect/authorize", "/connect/authorize/callback", "/connect/userinfo", "/connect/endsession", "/connect/checksession", "/login", "/consent", "/logout", "/signedout", "/grants", "/serversidesessions", "/admin/api/sessions", "/.well-known/openid-configuration", "/nope"];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...paths), params, async (path, pairs) => {
          await check(await send(new Request(`${host.issuer}${path}?${encode(pairs)}`)), `GET ${path}`);
        }),
        { numRuns: RUNS },
      );
    });

    it("POST endpoints and forms with random bodies, content types and credentials", async () => {
      const paths = ["/connect/token", "/connect/par", "/connect/introspect", "/connect/revocation", "/connect/userinfo", "/connect/authorize", "/connect/endsession", "/login", "/consent", "/logout", "/grants", "/serversidesessions"];
      const contentType = fc.constantFrom("application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/json", "text/plain", "multipart/form-data; boundary=x", "");
      const authorization = fc.oneof(fc.constant(undefined), fc.constant(`Basic ${Buffer.from("web:web-secret").toString("base64")}`), hostile.map((h) => `Basic ${Buffer.from(h).toString("base64")}`), hostile.map((h) => `Bearer ${h}`), hostile.map((h) => `DPoP ${h}`), hostile);
      const dpop = fc.oneof(fc.constant(undefined), hostile, fc.constant("eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30."));
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...paths), params, contentType, authorization, dpop, fc.boolean(), async (path, pairs, type, auth, proof, raw) => {
          const headers: Record<string, string> = {};
          if (type) headers["content-type"] = type;
          if (auth !== undefined) headers.authorization = auth;
          if (proof !== undefined) headers.dpop = proof;
          const body = raw ? pairs.map(([k, v]) => `${k}=${v}`).join("&") : encode(pairs);
          let request: Request;
          try {
            request = new Request(`${host.issuer}${path}`, { method: "POST", headers, body });
          } catch {
            return; // a header value fetch itself refuses cannot reach a server
          }
          await check(await send(request), `POST ${path}`);
        }),
        { numRuns: RUNS },
      );
    });

    it("leaves state alone when requests are rejected: the refresh token still rotates afterwards", async () => {
      const token = await flow.token({ grant_type: "refresh_token", refresh_token: refreshToken }, { id: "offline", secret: "offline-secret" });
      assert.equal(token.status, 200);
    });

    it("6.5 DPoP proofs and client assertions, each validly signed, with fractional, huge, negative or non-finite times", async () => {
      const { privateKey, publicKey } = await generateKeyPair("ES256");
      const jwk = await exportJWK(publicKey);
      const url = `${host.issuer}/connect/token`;
      const secret = new TextEncoder().encode(HMAC_SECRET);
      const now = Math.floor(Date.now() / 1000);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom("dpop", "assertion", "both"), seconds(now, -65, 5), seconds(now, -30, 600), fc.nat(HMAC_CLIENTS - 1), fc.constantFrom("authorization_code", "refresh_token"), async (what, iat, exp, n, codeGrant) => {
          const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
          // The public client redeems (a bad code or token: after the proof is checked); an hmac client gets client credentials.
          const body: Record<string, string> = what === "dpop" ? { grant_type: codeGrant, client_id: "spa", code: "x", code_verifier: "v".repeat(43), redirect_uri: REDIRECT, refresh_token: "x" } : { grant_type: "client_credentials" };
          if (what !== "assertion") headers.dpop = await signRaw(withTime({ htm: "POST", htu: url, jti: crypto.randomUUID() }, "iat", iat), { alg: "ES256", typ: "dpop+jwt", jwk }, privateKey);
          if (what !== "dpop") {
            body.client_assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
            body.client_assertion = await signRaw(withTime({ iss: `hmac${n}`, sub: `hmac${n}`, aud: host.issuer, jti: crypto.randomUUID() }, "exp", exp), { alg: "HS256" }, secret);
          }
          await check(await send(new Request(url, { method: "POST", headers, body: new URLSearchParams(body).toString() })), `${what} iat=${iat} exp=${exp}`);
        }),
        { numRuns: Math.max(50, Math.floor(RUNS / 4)) },
      );
    });

    it("admin API and sessions page, signed in as an administrator, with random filters, cursors and session ids", async () => {
      // Here request values reach the store as they are (filters, session ids), so a value the database refuses shows.
      const filterName = fc.constantFrom("subject", "displayName", "sessionId", "cursor", "count");
      const cursor = fc.tuple(fc.oneof(fc.integer(), fc.double(), fc.constant(1e300)), hostile).map((c) => Buffer.from(JSON.stringify(c)).toString("base64url"));
      const filters = fc.array(fc.tuple(filterName, fc.oneof(hostile, cursor)), { maxLength: 4 });
      await fc.assert(
        fc.asyncProperty(fc.constantFrom("api", "page", "delete"), filters, hostile, async (target, pairs, sessionId) => {
          const query = encode(pairs);
          let request: Request;
          if (target === "api") request = new Request(`${host.issuer}/admin/api/sessions?${query}`, { headers: { authorization: `Bearer ${adminToken}` } });
          else if (target === "delete") request = new Request(`${host.issuer}/admin/api/sessions/${encodeURIComponent(sessionId.toWellFormed())}`, { method: "DELETE", headers: { authorization: `Bearer ${adminToken}` } });
          else request = new Request(`${host.issuer}/serversidesessions?${query}`, { headers: { cookie: flow.browser.cookies.cookieHeader(new URL(host.issuer)) ?? "" } });
          await check(await send(request), `${target} ${query.slice(0, 100)}`);
        }),
        { numRuns: RUNS },
      );
    });

    it("survives random cookies on every page", async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom("/login", "/connect/authorize?client_id=web", "/", "/grants", "/serversidesessions", "/logout"), hostile, hostile, async (path, session, csrf) => {
          const cookie = `__Host-tessera.session=${session}; __Host-tessera.csrf=${csrf}; tessera.session=${session}; tessera.csrf=${csrf}; tessera.session_id=${session}`;
          let request: Request;
          try {
            request = new Request(`${host.issuer}${path}`, { headers: { cookie } });
          } catch {
            return; // a header value fetch itself refuses cannot reach a server
          }
          await check(await send(request), `GET ${path} with cookies`);
        }),
        { numRuns: RUNS },
      );
    });
  });
}
