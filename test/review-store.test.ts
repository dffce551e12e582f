import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConfigError, parseConfig } from "@tessera/host";
import { createTestHost, type TestHost } from "@tessera/testing";
import { Flow, baseConfig } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

const postgres = await startTestPostgres();
after(() => postgres?.close());
const noPostgres = postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)";

const problemsOf = (config: unknown): string[] => {
  try {
    parseConfig(config);
    return [];
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((p) => `${p.path}: ${p.message}`);
  }
};

describe("6 values that do not fit the SQL schema", { skip: noPostgres }, () => {
  it("6.1 PostgreSQL: a user with a 255-character sub and a long display name signs in, gets tokens and a server-side session", async () => {
    const sub = "s".repeat(255);
    const config = baseConfig();
    config.store = { kind: "postgres", url: await postgres!.createDatabase() };
    config.serverSideSessions = { enabled: true };
    config.users = [{ sub, username: "alice", password: "alice", claims: { name: "Alice ".repeat(200) } }];
    const flow = await Flow.create(config);
    try {
      const { code, verifier } = await flow.signIn();
      const response = await flow.redeem(code, verifier);
      assert.equal(response.status, 200, await response.clone().text());
      const tokens = (await response.json()) as { id_token: string };
      assert.equal(JSON.parse(Buffer.from(tokens.id_token.split(".")[1]!, "base64url").toString()).sub, sub);
    } finally {
      await flow.close();
    }
  });

  it("6.2 sign-in API: values no column can keep (NUL, over-long, not strings) are refused with a clear error, never a DB error", async () => {
    const config = baseConfig();
    config.store = { kind: "postgres", url: await postgres!.createDatabase() };
    config.serverSideSessions = { enabled: true };
    const host = await createTestHost(config);
    try {
      const signIn = (user: Record<string, unknown>) => host.provider.signIn(new Request(`${host.issuer}/login`), user as never);
      await assert.rejects(signIn({ sub: "a\u0000b" }), /signIn: sub/);
      await assert.rejects(signIn({ sub: "x".repeat(256) }), /signIn: sub/);
      await assert.rejects(signIn({ sub: "ok", name: "Al\u0000ice" }), /signIn: name/);
      await assert.rejects(signIn({ sub: "ok", name: 42 }), /signIn: name/);
      await assert.rejects(signIn({ sub: "ok", idp: "x".repeat(1000) }), /signIn: idp/);
      await assert.rejects(signIn({ sub: "ok", amr: ["pwd\u0000"] }), /signIn: amr/);
      await assert.rejects(signIn({ sub: "ok", claims: { name: "Bob\u0000" } }), /signIn: claims/);
      // The edge cases that fit are kept exactly, unicode included.
      const result = await signIn({ sub: "ü".repeat(255), name: "名前 🙂".repeat(100), idp: "corp" });
      assert.ok(result);
    } finally {
      await host.close();
    }
  });

  it("6.3 config: values that do not fit the store (NUL, over-long) are refused with their JSON path", () => {
    const base = { issuer: "https://idp.test", clients: [{ client_id: "c", client_secret: "s", grant_types: ["client_credentials"] }] };
    const user = { sub: "1", username: "alice", password: "pw" };
    assert.match(problemsOf({ ...base, users: [{ ...user, sub: "a\u0000b" }] }).join("\n"), /^users\[0\]\.sub: /m);
    assert.match(problemsOf({ ...base, users: [{ ...user, sub: "x".repeat(256) }] }).join("\n"), /^users\[0\]\.sub: /m);
    assert.match(problemsOf({ ...base, users: [{ ...user, claims: { name: "Bob\u0000" } }] }).join("\n"), /^users\[0\]\.claims\.name: /m);
    assert.match(problemsOf({ ...base, clients: [{ ...base.clients[0], client_id: "c\u0000" }] }).join("\n"), /^clients\[0\]\.client_id: /m);
    assert.match(problemsOf({ ...base, clients: [{ ...base.clients[0], client_id: "c".repeat(201) }] }).join("\n"), /^clients\[0\]\.client_id: /m);
    assert.deepEqual(problemsOf({ ...base, users: [{ ...user, sub: "ü".repeat(255), claims: { name: "n".repeat(5000) } }] }), []);
  });

  describe("6.4 PostgreSQL: admin API and sessions page with NUL and over-long filters", () => {
    let flow: Flow;
    let host: TestHost;
    let adminToken: string;
    before(async () => {
      const config = baseConfig();
      config.store = { kind: "postgres", url: await postgres!.createDatabase() };
      config.serverSideSessions = { enabled: true };
      config.admin = { role: "admin" };
      config.clients = [...config.clients!, { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" }];
      flow = await Flow.create(config);
      host = flow.host;
      const response = await flow.token({ grant_type: "client_credentials" }, { id: "admin-cli", secret: "cli-secret" });
      adminToken = ((await response.json()) as { access_token: string }).access_token;
      await flow.signIn(); // alice (an admin) holds a session in the browser
    });
    after(() => flow.close());

    it("6.4 a forged paging cursor (huge or fractional time, NUL in the key) answers below 500", async () => {
      for (const forged of [[1e300, "k"], [1.5, "k"], [1, "a\u0000b"], [1, "x".repeat(5000)]]) {
        const cursor = Buffer.from(JSON.stringify(forged)).toString("base64url");
        const response = await host.fetch(new Request(`${host.issuer}/admin/api/sessions?cursor=${cursor}`, { headers: { authorization: `Bearer ${adminToken}` } }));
        assert.ok(response.status < 500, `${JSON.stringify(forged).slice(0, 40)}: ${response.status} ${await response.text()}`);
        const page = await flow.browser.get(`${host.issuer}/serversidesessions?cursor=${cursor}`);
        assert.ok(page.status < 500, `page: ${page.status}`);
      }
    });

    for (const value of ["a\u0000b", "\u0000", "x".repeat(5000), "\uD800"]) {
      it(`6.4 answers below 500 for ${JSON.stringify(value.slice(0, 8))}${value.length > 8 ? `… (${value.length})` : ""}`, async () => {
        const api = (path: string, method = "GET") => host.fetch(new Request(`${host.issuer}/admin/api${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } }));
        for (const filter of ["subject", "displayName", "sessionId"]) {
          const response = await api(`/sessions?${new URLSearchParams({ [filter]: value })}`);
          assert.equal(response.status, 200, `${filter}: ${await response.clone().text()}`);
          assert.deepEqual(((await response.json()) as { sessions: unknown[] }).sessions, []);
          const page = await flow.browser.get(`${host.issuer}/serversidesessions?${new URLSearchParams({ [filter]: value })}`);
          assert.equal(page.status, 200, `page ${filter}: ${page.body.slice(0, 200)}`);
        }
        const path = value.startsWith("\uD800") ? "%ED%A0%80" : encodeURIComponent(value); // a lone surrogate as UTF-8 bytes
        const removed = await api(`/sessions/${path}`, "DELETE");
        assert.equal(removed.status, 404, await removed.clone().text());
      });
    }
  });
});


/** Watches JWKS and signatures over fake time: when each kid is first published and when it first signs. */
class RotationWatch {
  readonly firstSeen = new Map<string, number>();
  readonly firstSigned = new Map<string, number>();
  constructor(private readonly now: () => number) {}

  /** Reads the publisher's JWKS, then has the signer sign a token. */
  async observe(publisher: TestHost, signer: TestHost): Promise<void> {
    await this.published(publisher);
    await this.signed(signer);
  }

  async published(host: TestHost): Promise<void> {
    const jwks = (await (await host.fetch(new Request(`${host.issuer}/.well-known/openid-configuration/jwks`))).json()) as { keys: { kid: string }[] };
    for (const { kid } of jwks.keys) if (!this.firstSeen.has(kid)) this.firstSeen.set(kid, this.now());
  }

  async signed(host: TestHost): Promise<void> {
    const response = await host.fetch(
      new Request(`${host.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` },
        body: "grant_type=client_credentials",
      }),
    );
    assert.equal(response.status, 200);
    const { access_token } = (await response.json()) as { access_token: string };
    const kid = JSON.parse(Buffer.from(access_token.split(".")[0]!, "base64url").toString()).kid as string;
    if (!this.firstSigned.has(kid)) this.firstSigned.set(kid, this.now());
  }

  /** Every key after the first one was published at least `propagation` seconds before it first signed. */
  assertPromiseKept(propagation: number, rotations: number): void {
    const signed = [...this.firstSigned.entries()].sort((a, b) => a[1] - b[1]);
    assert.ok(signed.length >= rotations + 1, `at least ${rotations} rotations (saw ${signed.length} signing keys)`);
    for (const [kid, at] of signed.slice(1)) {
      const seen = this.firstSeen.get(kid);
      assert.ok(seen !== undefined && at - seen >= propagation, `kid ${kid.slice(0, 8)} first in JWKS at ${seen}s, first signed at ${at}s: less than ${propagation}s apart`);
    }
  }
}

const rotationConfig = () => {
  const config = baseConfig();
  config.keys = { algorithms: ["ES256"], rotationInterval: 60, propagationTime: 20, retentionTime: 30 };
  config.clients = [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }];
  return config;
};

describe("10 key rotation keeps its promise (fake clock)", () => {
  it("10.1 with propagation (20 s) shorter than the reload interval, a new key is in JWKS at least 20 s before it signs", async () => {
    let seconds = 0;
    const host = await createTestHost(rotationConfig(), { clock: () => 1_800_000_000_000 + seconds * 1000 });
    const watch = new RotationWatch(() => seconds);
    try {
      for (; seconds <= 400; seconds += 3) await watch.observe(host, host);
      watch.assertPromiseKept(20, 4);
    } finally {
      await host.close();
    }
  });

  it("10.2 two processes on one store: a key one process creates is in the other's JWKS at least 20 s before either signs with it", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { randomBytes } = await import("node:crypto");
    const dir = mkdtempSync(join(tmpdir(), "tessera-rotation-"));
    let seconds = 0;
    const clock = () => 1_800_000_000_000 + seconds * 1000;
    const shared = { ...rotationConfig(), store: { kind: "sqlite" as const, path: join(dir, "shared.db") }, dataKey: randomBytes(32).toString("base64url") };
    const publisher = await createTestHost(shared, { clock });
    const signer = await createTestHost(shared, { clock });
    const watch = new RotationWatch(() => seconds);
    try {
      // The signer reads the store first (so it creates the successors); the publisher reloads 9 s out of
      // phase with it, as far behind as its reload interval allows.
      for (; seconds <= 400; seconds++) {
        if (seconds % 2 === 0) await watch.signed(signer);
        else if (seconds >= 9) await watch.published(publisher);
      }
      watch.assertPromiseKept(20, 4);
    } finally {
      await publisher.close();
      await signer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("10.3 an idle server (no request between announce time and rotation) announces the successor before it signs", async () => {
    let seconds = 0;
    const host = await createTestHost(rotationConfig(), { clock: () => 1_800_000_000_000 + seconds * 1000 });
    const watch = new RotationWatch(() => seconds);
    try {
      for (; seconds <= 700; seconds += 70) await watch.observe(host, host);
      watch.assertPromiseKept(20, 3);
    } finally {
      await host.close();
    }
  });
});

/** A DPoP proof signed by its own fresh key, with exactly the `iat` given (fractional, huge, negative). */
async function proofWithIat(url: string, iat: number): Promise<string> {
  const { SignJWT, exportJWK, generateKeyPair } = await import("jose");
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  return new SignJWT({ htm: "POST", htu: url, jti: crypto.randomUUID(), iat }).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(publicKey) }).sign(privateKey);
}

const HMAC_SECRET = "a-long-shared-secret-of-at-least-32-bytes!";
const tokenForm = (body: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(body).toString(),
});

describe("6.5 times taken from requests are stored as whole seconds (PostgreSQL bigint)", { skip: noPostgres }, () => {
  let host: TestHost;
  before(async () => {
    const config = baseConfig();
    config.store = { kind: "postgres", url: await postgres!.createDatabase() };
    config.clients = [...config.clients!, { client_id: "hmac", client_secret: HMAC_SECRET, token_endpoint_auth_method: "client_secret_jwt", grant_types: ["client_credentials"], scope: "api1.read" }];
    host = await createTestHost(config);
  });
  after(() => host.close());

  it("6.5 a DPoP proof with a fractional iat at the token endpoint (public client) is checked like any other, never a 500; its replay is refused", async () => {
    const url = `${host.issuer}/connect/token`;
    const now = Math.floor(Date.now() / 1000);
    for (const iat of [now + 0.5, now - 0.25, now - 59.999]) {
      const proof = await proofWithIat(url, iat);
      const send = () => host.fetch(new Request(url, tokenForm({ grant_type: "authorization_code", client_id: "spa", code: "nope", code_verifier: "v".repeat(43), redirect_uri: "https://rp.test/signin-oidc" }, { dpop: proof })));
      const first = await send();
      assert.equal(first.status, 400, `iat ${iat}: ${await first.clone().text()}`);
      assert.equal(((await first.json()) as { error: string }).error, "invalid_grant", `iat ${iat}: the proof passed, the code did not`);
      const replay = await send();
      assert.equal(((await replay.json()) as { error: string }).error, "invalid_dpop_proof", `iat ${iat}: replay`);
    }
    for (const iat of [1e300, -1e300, -1, 2 ** 53 + 2, Number.MAX_VALUE, now + 1e-9]) {
      const response = await host.fetch(new Request(url, tokenForm({ grant_type: "client_credentials", client_id: "spa" }, { dpop: await proofWithIat(url, iat) })));
      assert.ok(response.status < 500, `iat ${iat}: ${response.status} ${await response.text()}`);
    }
  });

  it("6.5 a client assertion with a fractional exp authenticates once, never a 500; its replay is refused", async () => {
    const { SignJWT } = await import("jose");
    const url = `${host.issuer}/connect/token`;
    const now = Math.floor(Date.now() / 1000);
    for (const exp of [now + 60.5, now + 0.001, now + 599.9]) {
      const assertion = await new SignJWT({ iss: "hmac", sub: "hmac", aud: host.issuer, jti: crypto.randomUUID(), exp }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(HMAC_SECRET));
      const body = { grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion };
      const first = await host.fetch(new Request(url, tokenForm(body)));
      assert.equal(first.status, 200, `exp ${exp}: ${await first.clone().text()}`);
      const replay = await host.fetch(new Request(url, tokenForm(body)));
      assert.equal(replay.status, 401, `exp ${exp}: replay`);
    }
    for (const exp of [1e300, -1e300, -1, 2 ** 53 + 2, now + 601.5]) {
      const assertion = await new SignJWT({ iss: "hmac", sub: "hmac", aud: host.issuer, jti: crypto.randomUUID(), exp }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(HMAC_SECRET));
      const response = await host.fetch(new Request(url, tokenForm({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion })));
      assert.equal(response.status, 401, `exp ${exp}: ${await response.text()}`);
    }
  });

  it("6.5 sign-in API: an auth_time that is not whole, safe Unix seconds is refused", async () => {
    const signIn = (auth_time: number) => host.provider.signIn(new Request(`${host.issuer}/login`), { sub: "1", auth_time });
    for (const bad of [1.5, 1e300, 2 ** 53, Number.NaN, -1]) await assert.rejects(signIn(bad), /signIn: auth_time/, String(bad));
    assert.ok(await signIn(Math.floor(Date.now() / 1000) - 10));
  });
});

describe("6.6 a legacy cookie-only session holding a value no store keeps", () => {
  it("6.6 once server-side sessions are on, it counts as no session (not a 400 on every request), and signing in again works", async () => {
    const { randomBytes } = await import("node:crypto");
    const { DataProtector, sessionCookieName } = await import("@tessera/server");
    const dataKey = randomBytes(32).toString("base64url");
    const config = baseConfig();
    config.dataKey = dataKey;
    config.serverSideSessions = { enabled: true };
    const host = await createTestHost(config);
    try {
      // What a release before the store checks wrote in cookie mode: a ticket whose sub holds NUL.
      const now = Math.floor(Date.now() / 1000);
      const ticket = { sid: "legacy-sid", sub: "a\u0000b", name: "Old\u0000Name", amr: ["pwd"], auth_time: now - 60, idp: "local", claims: {}, sat: (now - 60) * 1000, cat: now - 60, iat: now - 60, clients: [], persistent: false };
      const sealed = await new DataProtector(dataKey).sealJwt("session-cookie", ticket, now + 3600);
      const name = sessionCookieName(host.issuer.startsWith("https:"));
      const cookie = `${name}=${sealed}`;
      const authorize = await host.fetch(new Request(`${host.issuer}/connect/authorize?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent("https://rp.test/signin-oidc")}&code_challenge=${"c".repeat(43)}&code_challenge_method=S256`, { headers: { cookie } }));
      assert.equal(authorize.status, 302, `authorize: ${authorize.status} ${await authorize.text()}`);
      assert.match(authorize.headers.get("location") ?? "", /\/login\?/, "sent to the login page, as with no session");
      assert.equal(await host.provider.getSession(new Request(host.issuer, { headers: { cookie } })), undefined);
      const signedIn = await host.provider.signIn(new Request(`${host.issuer}/login`, { headers: { cookie } }), { sub: "1" });
      assert.equal(signedIn.session.sub, "1");
      assert.ok(signedIn.cookies.some((c) => c.startsWith(`${name}=`) && !c.includes(sealed)), "the sign-in replaces the unusable cookie");
    } finally {
      await host.close();
    }
  });
});

describe("6.7 PostgreSQL operations", { skip: noPostgres }, () => {
  it("6.7 a database whose server_encoding is not UTF8 is refused at open with a clear message", async () => {
    const pg = (await import("pg")).default;
    const { createPostgresStore } = await import("@tessera/server");
    const base = new URL(await postgres!.createDatabase());
    const name = `ascii_${process.pid}_${Date.now()}`;
    const client = new pg.Client({ connectionString: base.toString() });
    await client.connect();
    await client.query(`create database ${name} encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C' template template0`);
    await client.end();
    base.pathname = `/${name}`;
    await assert.rejects(createPostgresStore(base.toString()), /server_encoding is SQL_ASCII.*UTF8/);
  });

});

describe("6.8 values from the server itself that a store refuses", () => {
  it("6.8 a display name from the user store that no store keeps is logged at error level (a server fault, not the request's)", async () => {
    const { createProvider, createMemoryStore } = await import("@tessera/server");
    const lines: { level: string; msg: string }[] = [];
    const log = (level: string) => (_obj: object, msg?: string) => void lines.push({ level, msg: msg ?? "" });
    let name = "Alice";
    const provider = createProvider({
      issuer: "https://idp.test",
      dataKey: crypto.getRandomValues(new Uint8Array(32)),
      store: createMemoryStore(),
      logger: { info: log("info"), warn: log("warn"), error: log("error"), debug: log("debug") },
      clients: [{ client_id: "app", client_secret: "s3cret", redirect_uris: ["https://rp.test/cb"], scope: "openid" }],
      serverSideSessions: { enabled: true },
      users: { findBySubject: async (sub: string) => ({ sub, claims: { name } }) },
    });
    try {
      const { cookies } = await provider.signIn(new Request("https://idp.test/login"), { sub: "1" });
      const cookie = cookies.map((c) => c.split(";")[0]).join("; ");
      name = "Bad\u0000Name"; // the user store changed; the next session write looks the name up again
      const response = await provider.fetch(new Request(`https://idp.test/connect/authorize?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent("https://rp.test/cb")}&code_challenge=${"c".repeat(43)}&code_challenge_method=S256`, { headers: { cookie } }));
      assert.ok(response.status < 500, `${response.status}`);
      const refused = lines.filter((l) => l.msg.includes("refused by the store"));
      assert.deepEqual(refused.map((l) => l.level), ["error"], JSON.stringify(lines));
    } finally {
      await provider.close();
    }
  });
});
