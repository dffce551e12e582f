import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover, errorOf } from "./support/oidc.ts";

function config() {
  const c = baseConfig();
  c.clients = [
    { client_id: "app", client_secret: "app-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile email offline_access api1.read" },
    { client_id: "other", client_secret: "other-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access" },
    { client_id: "norefresh", client_secret: "x-secret", redirect_uris: [CALLBACK], scope: "openid offline_access" },
  ];
  return c;
}

describe("refresh tokens (openid-client)", () => {
  let host: TestHost;
  let app: oidc.Configuration;
  before(async () => {
    host = await createTestHost(config(), { listen: true });
    app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
  });
  after(() => host.close());

  it("rotates on every use and returns new access and ID tokens", async () => {
    const first = await codeFlow(app, { scope: "openid profile offline_access api1.read" });
    assert.ok(first.refresh_token);
    const second = await oidc.refreshTokenGrant(app, first.refresh_token!);
    assert.ok(second.refresh_token && second.refresh_token !== first.refresh_token);
    assert.notEqual(second.access_token, first.access_token);
    assert.equal(second.claims()!.sub, "1");
    assert.equal(second.claims()!.sid, first.claims()!.sid);
    assert.equal(second.claims()!.auth_time, first.claims()!.auth_time);
    const info = await oidc.fetchUserInfo(app, second.access_token, "1");
    assert.equal(info.name, "Alice Smith");
    const third = await oidc.refreshTokenGrant(app, second.refresh_token!);
    assert.ok(third.refresh_token);
  });

  it("revokes the whole family when a rotated-out token is used again", async () => {
    const first = await codeFlow(app, { scope: "openid offline_access" });
    const second = await oidc.refreshTokenGrant(app, first.refresh_token!);
    assert.equal(await errorOf(oidc.refreshTokenGrant(app, first.refresh_token!)), "invalid_grant");
    // The legitimate newest token and the access tokens of the family are gone too.
    assert.equal(await errorOf(oidc.refreshTokenGrant(app, second.refresh_token!)), "invalid_grant");
    assert.ok(await errorOf(oidc.fetchUserInfo(app, second.access_token, "1")));
  });

  it("narrows scope on refresh, and refuses a wider scope", async () => {
    const first = await codeFlow(app, { scope: "openid profile offline_access api1.read" });
    const narrow = await oidc.refreshTokenGrant(app, first.refresh_token!, { scope: "openid api1.read" });
    assert.equal(narrow.scope, "openid api1.read");
    // The family keeps the original grant: a later refresh may ask for all of it again.
    const full = await oidc.refreshTokenGrant(app, narrow.refresh_token!);
    assert.equal(full.scope, "openid profile offline_access api1.read");
    assert.equal(await errorOf(oidc.refreshTokenGrant(app, full.refresh_token!, { scope: "openid email" })), "invalid_scope");
  });

  it("binds the token to its client, and a foreign client cannot burn it", async () => {
    const first = await codeFlow(app, { scope: "openid offline_access" });
    const other = await discover(host, "other", oidc.ClientSecretBasic("other-secret"));
    assert.equal(await errorOf(oidc.refreshTokenGrant(other, first.refresh_token!)), "invalid_grant");
    assert.ok((await oidc.refreshTokenGrant(app, first.refresh_token!)).access_token);
  });

  it("issues no refresh token without offline_access or without the refresh_token grant", async () => {
    const plain = await codeFlow(app, { scope: "openid profile" });
    assert.equal(plain.refresh_token, undefined);
    const noGrant = await discover(host, "norefresh", oidc.ClientSecretBasic("x-secret"));
    const tokens = await codeFlow(noGrant, { scope: "openid offline_access" });
    assert.equal(tokens.refresh_token, undefined);
  });

  it("refuses garbage and missing refresh tokens", async () => {
    assert.equal(await errorOf(oidc.refreshTokenGrant(app, "not-a-token")), "invalid_grant");
    const response = await fetch(app.serverMetadata().token_endpoint!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("app:app-secret").toString("base64")}` },
      body: "grant_type=refresh_token",
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, "invalid_request");
  });
});

describe("refresh token lifetimes (fake clock)", () => {
  it("slides with each use up to the absolute lifetime, then expires", async () => {
    let now = Date.now();
    const c = config();
    c.clients![0] = { ...c.clients![0]!, refresh_token_sliding_lifetime: 100, refresh_token_absolute_lifetime: 250 };
    const host = await createTestHost(c, { listen: true, clock: () => now });
    try {
      const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
      const tokens = await codeFlow(app, { scope: "openid offline_access" });
      const refresh = async (token: string) => {
        const response = await fetch(app.serverMetadata().token_endpoint!, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("app:app-secret").toString("base64")}` },
          body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }).toString(),
        });
        return (await response.json()) as { refresh_token?: string; error?: string };
      };
      let token = tokens.refresh_token!;
      for (let i = 0; i < 2; i++) {
        now += 90_000; // within the sliding window each time: 90 s, 180 s
        const next = await refresh(token);
        assert.ok(next.refresh_token, `refresh ${i}: ${next.error}`);
        token = next.refresh_token!;
      }
      now += 90_000; // 270 s: past the absolute lifetime (250 s)
      assert.equal((await refresh(token)).error, "invalid_grant");

      const idle = await codeFlow(app, { scope: "openid offline_access" });
      now += 101_000; // unused past the sliding lifetime
      assert.equal((await refresh(idle.refresh_token!)).error, "invalid_grant");
    } finally {
      await host.close();
    }
  });
});

describe("refresh token reuse grace period (fake clock)", () => {
  it("returns the same successor to a reuse within the period, and revokes the family after it", async () => {
    let now = Date.now();
    const c = config();
    c.clients![0] = { ...c.clients![0]!, refresh_token_reuse_grace_period: 10 };
    const host = await createTestHost(c, { listen: true, clock: () => now });
    try {
      const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
      const refresh = async (token: string) => {
        const response = await fetch(app.serverMetadata().token_endpoint!, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("app:app-secret").toString("base64")}` },
          body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }).toString(),
        });
        return (await response.json()) as { refresh_token?: string; access_token?: string; error?: string };
      };
      const first = await codeFlow(app, { scope: "openid offline_access" });

      // Two tabs refresh with the same token at once: both succeed with the same new refresh token.
      const [a, b] = await Promise.all([refresh(first.refresh_token!), refresh(first.refresh_token!)]);
      assert.ok(a.refresh_token && a.access_token, a.error);
      assert.equal(b.refresh_token, a.refresh_token);
      assert.notEqual(b.access_token, a.access_token);

      now += 9_000;
      const late = await refresh(first.refresh_token!);
      assert.equal(late.refresh_token, a.refresh_token, "still within 10 s of the rotation");

      // The successor rotates normally, and a used successor is never revived by a reuse of its parent.
      const next = await refresh(a.refresh_token!);
      assert.ok(next.refresh_token && next.refresh_token !== a.refresh_token);
      now += 1_000;
      assert.equal((await refresh(first.refresh_token!)).refresh_token, a.refresh_token);
      now += 11_000;
      const after = await refresh(a.refresh_token!);
      assert.equal(after.error, "invalid_grant", "a reused successor past its own period revokes the family");
      assert.equal((await refresh(next.refresh_token!)).error, "invalid_grant");
      assert.equal((await refresh(first.refresh_token!)).error, "invalid_grant");
    } finally {
      await host.close();
    }
  });

  it("is off by default: racing refreshes revoke the family", async () => {
    const host = await createTestHost(config(), { listen: true });
    try {
      const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
      const first = await codeFlow(app, { scope: "openid offline_access" });
      const results = await Promise.allSettled([oidc.refreshTokenGrant(app, first.refresh_token!), oidc.refreshTokenGrant(app, first.refresh_token!)]);
      const won = results.find((r) => r.status === "fulfilled");
      assert.equal(results.filter((r) => r.status === "rejected").length, 1);
      assert.ok(won && won.status === "fulfilled");
      assert.equal(await errorOf(oidc.refreshTokenGrant(app, won.value.refresh_token!)), "invalid_grant");
    } finally {
      await host.close();
    }
  });
});
