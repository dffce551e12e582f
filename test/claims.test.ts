import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it, mock } from "node:test";
import { createMemoryStore, createProvider, type ProfileRequest } from "@tessera/server";
import { TestBrowser, createTestHost } from "@tessera/testing";
import { decodeJwt } from "jose";
import * as oidc from "openid-client";
import { REDIRECT, baseConfig, pkce } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";

describe("claims", () => {
  it("puts API userClaims into access tokens and custom identity scopes into userinfo", async () => {
    const config = baseConfig();
    config.identityResources = ["openid", "profile", { name: "roles", userClaims: ["role"] }];
    config.apiScopes = [{ name: "api1.read", userClaims: ["email"] }, { name: "api1.write" }];
    config.apiResources = [{ name: "urn:api1", scopes: ["api1.read", "api1.write"], userClaims: ["role"] }];
    config.clients = [{ client_id: "app", token_endpoint_auth_method: "none", redirect_uris: [CALLBACK], scope: "openid profile roles api1.read" }];
    const host = await createTestHost(config, { listen: true });
    try {
      const app = await discover(host, "app");
      assert.ok(app.serverMetadata().claims_supported?.includes("role"));
      const withApi = await codeFlow(app, { scope: "openid api1.read" });
      const at = decodeJwt(withApi.access_token);
      assert.deepEqual(at.role, ["admin"]);
      assert.equal(at.email, "alice@example.com");
      assert.equal(at.name, undefined, "profile claims are not access-token claims");
      assert.equal(withApi.claims()!.role, undefined, "no user claims in the ID token");
      const withRoles = await codeFlow(app, { scope: "openid profile roles" });
      assert.equal(decodeJwt(withRoles.access_token).role, undefined, "no API scope, no API claims");
      const info = await oidc.fetchUserInfo(app, withRoles.access_token, "1");
      assert.deepEqual(info.role, ["admin"]);
      assert.equal(info.name, "Alice Smith");
    } finally {
      await host.close();
    }
  });

  it("lets a profile hook decide claims per token type, never overriding protocol claims, and refuse inactive users", async () => {
    const calls: ProfileRequest[] = [];
    let active = true;
    const provider = createProvider({
      issuer: "https://hook.test",
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      clients: [{ client_id: "c", client_secret: "c-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access" }],
      profile: async (request) => {
        calls.push(request);
        if (!active) return undefined;
        if (request.caller === "id_token") return { tier: "gold", sub: "evil", iss: "https://evil.test" };
        if (request.caller === "access_token") return { tenant: "t1" };
        return { name: "From Hook" };
      },
      interaction: { loginUrl: "https://hook.test/login" },
    });
    try {
      const browser = new TestBrowser({
        handlers: async (request) => {
          const url = new URL(request.url);
          if (url.pathname === "/login") {
            const { cookies } = await provider.signIn(request, { sub: "u1" });
            const headers = new Headers({ location: url.searchParams.get("returnUrl")! });
            for (const c of cookies) headers.append("set-cookie", c);
            return new Response(null, { status: 302, headers });
          }
          return provider.fetch(request);
        },
      });
      const token = async (form: Record<string, string>) => {
        const response = await provider.fetch(
          new Request("https://hook.test/connect/token", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("c:c-secret").toString("base64")}` },
            body: new URLSearchParams(form).toString(),
          }),
        );
        return (await response.json()) as Record<string, string>;
      };
      const codeFor = async () => {
        const { verifier, challenge } = pkce();
        const url = `https://hook.test/connect/authorize?${new URLSearchParams({ client_id: "c", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile offline_access", code_challenge: challenge, code_challenge_method: "S256" })}`;
        const page = await browser.get(url, { stopAt: (u) => u.origin === "https://rp.test" });
        return { code: new URL(page.location!).searchParams.get("code")!, verifier };
      };
      const { code, verifier } = await codeFor();
      const tokens = await token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier });
      const idToken = decodeJwt(tokens.id_token!);
      assert.equal(idToken.tier, "gold");
      assert.equal(idToken.sub, "u1");
      assert.equal(idToken.iss, "https://hook.test");
      assert.equal(decodeJwt(tokens.access_token!).tenant, "t1");
      const userinfo = await provider.fetch(new Request("https://hook.test/connect/userinfo", { headers: { authorization: `Bearer ${tokens.access_token}` } }));
      assert.deepEqual(await userinfo.json(), { name: "From Hook", sub: "u1" });
      const userinfoCall = calls.find((c) => c.caller === "userinfo")!;
      assert.ok(userinfoCall.requestedClaims.includes("name") && !userinfoCall.requestedClaims.includes("email"));

      // The user is deactivated: refresh and userinfo refuse, and a new code yields no tokens.
      active = false;
      assert.equal((await token({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! })).error, "invalid_grant");
      const denied = await provider.fetch(new Request("https://hook.test/connect/userinfo", { headers: { authorization: `Bearer ${tokens.access_token}` } }));
      assert.equal(denied.status, 401);
      active = true;
      const second = await codeFor();
      active = false;
      assert.equal((await token({ grant_type: "authorization_code", code: second.code, redirect_uri: REDIRECT, code_verifier: second.verifier })).error, "invalid_grant");
    } finally {
      await provider.close();
    }
  });
});

describe("grant cleanup job", () => {
  it("deletes expired codes, tokens and consents on its interval", async () => {
    mock.timers.enable({ apis: ["setInterval"] });
    let now = Date.now();
    try {
      const store = createMemoryStore();
      const provider = createProvider({ issuer: "https://clean.test", store, dataKey: randomBytes(32), clients: [], clock: () => now, grantCleanupInterval: 60 });
      const put = (key: string, expiresAt: number) => store.grants.put({ key, kind: "consent", clientId: "c", subject: "s", data: "{}", createdAt: 0, expiresAt });
      const nowS = () => Math.floor(now / 1000);
      for (let i = 0; i < 1500; i++) await put(`old-${i}`, nowS() + 10);
      await put("live", nowS() + 10_000);
      now += 20_000;
      mock.timers.tick(60_000);
      // The job runs asynchronously: wait until it has drained the expired batch.
      for (let i = 0; i < 100 && (await store.grants.get("old-1499")); i++) await new Promise((r) => setImmediate(r));
      assert.equal((await store.grants.findAll({ subject: "s" }, 5000)).length, 1);
      assert.ok(await store.grants.get("live"));
      await provider.close();
    } finally {
      mock.timers.reset();
    }
  });
});
