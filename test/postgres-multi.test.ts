import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { REDIRECT, RP, baseConfig, pkce } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

const postgres = await startTestPostgres();

describe("several processes on one PostgreSQL database", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  let url: string;
  let a: TestHost;
  let b: TestHost;
  let config: TestHostConfig;
  /** Which server the "load balancer" sends the next browser request to. */
  let target: () => TestHost;

  before(async () => {
    url = await postgres!.createDatabase();
    config = {
      ...baseConfig(),
      store: { kind: "postgres", url },
      dataKey: randomBytes(32).toString("base64url"),
      serverSideSessions: { enabled: true },
      clients: [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access" }],
    };
    // Both start at the same moment on an empty database: one migration run, one signing key.
    [a, b] = await Promise.all([createTestHost(config), createTestHost(config)]);
    target = () => a;
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await postgres?.close();
  });

  const browser = () => new TestBrowser({ handlers: { "https://idp.test": (request) => target().fetch(request) } });
  const stopAt = (u: URL) => u.origin === RP;
  const authorize = async (client: TestBrowser, prompt?: string) => {
    const { verifier, challenge } = pkce();
    const authorizeUrl = new URL("https://idp.test/connect/authorize");
    authorizeUrl.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile offline_access", code_challenge: challenge, code_challenge_method: "S256", ...(prompt ? { prompt } : {}) }).toString();
    return { page: await client.get(authorizeUrl, { stopAt }), verifier };
  };
  const token = async (on: TestHost, form: Record<string, string>) => {
    const response = await on.fetch(
      new Request("https://idp.test/connect/token", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` },
        body: new URLSearchParams(form).toString(),
      }),
    );
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as Record<string, string> };
  };
  const jwks = async (on: TestHost) => (await on.fetch(new Request("https://idp.test/.well-known/openid-configuration/jwks"))).json() as Promise<{ keys: { kid: string }[] }>;

  it("publishes the same, single key set from both", async () => {
    const [ja, jb] = await Promise.all([jwks(a), jwks(b)]);
    assert.deepEqual(ja, jb);
    assert.equal(ja.keys.length, 1, "the key was created once");
  });

  it("creates keys once even when many processes start together", async () => {
    const fresh = await postgres!.createDatabase();
    const hosts = await Promise.all(Array.from({ length: 4 }, () => createTestHost({ ...config, store: { kind: "postgres", url: fresh }, keys: { algorithms: ["ES256", "RS256"] } })));
    try {
      const sets = await Promise.all(hosts.map(jwks));
      for (const set of sets) assert.deepEqual(set, sets[0]);
      assert.equal(sets[0]!.keys.length, 2, "one key per algorithm");
    } finally {
      await Promise.all(hosts.map((h) => h.close()));
    }
  });

  it("signs in on A, answers prompt=none on B, redeems A's code on B, and sees B's revocation on A", async () => {
    const client = browser();
    target = () => a;
    let { page, verifier } = await authorize(client);
    page = await client.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    const codeFromA = new URL(page.location!).searchParams.get("code")!;
    const redeemed = await token(b, { grant_type: "authorization_code", code: codeFromA, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));

    target = () => b;
    const silent = await authorize(client, "none");
    assert.ok(new URL(silent.page.location!).searchParams.get("code"), "B knows the session A started");

    const revoke = await b.fetch(new Request("https://idp.test/connect/revocation", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` }, body: `token=${redeemed.body.refresh_token}` }));
    assert.equal(revoke.status, 200);
    assert.equal((await token(a, { grant_type: "refresh_token", refresh_token: redeemed.body.refresh_token! })).body.error, "invalid_grant");
  });

  it("gives exactly one winner when A and B rotate the same refresh token at once", async () => {
    const client = browser();
    target = () => a;
    let { page, verifier } = await authorize(client);
    page = await client.submitForm(page, { fields: { username: "bob", password: "bob-password" }, stopAt });
    const tokens = await token(a, { grant_type: "authorization_code", code: new URL(page.location!).searchParams.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier });
    const results = await Promise.all([a, b, a, b].map((on) => token(on, { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token! })));
    assert.equal(results.filter((r) => r.status === 200).length, 1);
  });

  it("survives a database restart: 503 with Retry-After while it is down, then no lost or duplicated grant", async () => {
    const client = browser();
    target = () => a;
    let { page, verifier } = await authorize(client);
    page = await client.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    const tokens = await token(a, { grant_type: "authorization_code", code: new URL(page.location!).searchParams.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier });
    const second = await authorize(client, "none");
    const pendingCode = new URL(second.page.location!).searchParams.get("code")!;

    postgres!.stop();
    try {
      const down = await token(b, { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token! });
      assert.equal(down.status, 503);
      assert.equal(down.retryAfter, "5");
      assert.equal(down.body.error, "temporarily_unavailable");
    } finally {
      postgres!.start();
    }
    // The pools reconnect by themselves; a request or two may still meet a connection that died.
    let redeemed: Awaited<ReturnType<typeof token>> | undefined;
    for (let i = 0; i < 20; i++) {
      redeemed = await token(a, { grant_type: "authorization_code", code: pendingCode, redirect_uri: REDIRECT, code_verifier: second.verifier });
      if (redeemed.status !== 503) break;
    }
    assert.equal(redeemed!.status, 200, "the code issued before the restart was not lost");
    let refreshed: Awaited<ReturnType<typeof token>> | undefined;
    for (let i = 0; i < 20; i++) {
      refreshed = await token(b, { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token! });
      if (refreshed.status !== 503) break;
    }
    assert.equal(refreshed!.status, 200, "the refresh token refused while the database was down still works once");
    assert.equal((await token(a, { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token! })).body.error, "invalid_grant", "and only once");
  });
});
