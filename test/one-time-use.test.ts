import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { createMemoryStore, createProvider, type Store } from "@tessera/server";
import { TestBrowser } from "@tessera/testing";
import { REDIRECT, pkce } from "./support/fixtures.ts";

describe("one-time use when the store fails mid-request", () => {
  it("keeps the code and the refresh token usable when the store fails between issuing and consuming", async () => {
    const inner = createMemoryStore();
    let failConsume = false;
    const store: Store = {
      ...inner,
      grants: Object.assign(Object.create(inner.grants) as Store["grants"], {
        consume: async (key: string, at: number) => {
          if (failConsume) {
            failConsume = false;
            throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "ECONNRESET" });
          }
          return inner.grants.consume(key, at);
        },
      }),
      close: inner.close,
    };
    const provider = createProvider({
      issuer: "https://once.test",
      store,
      dataKey: randomBytes(32),
      clients: [{ client_id: "c", client_secret: "c-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access" }],
      interaction: { loginUrl: "https://once.test/login" },
    });
    try {
      const browser = new TestBrowser({
        handlers: async (request) => {
          const url = new URL(request.url);
          if (url.pathname !== "/login") return provider.fetch(request);
          const { cookies } = await provider.signIn(request, { sub: "u" });
          const headers = new Headers({ location: url.searchParams.get("returnUrl")! });
          for (const cookie of cookies) headers.append("set-cookie", cookie);
          return new Response(null, { status: 302, headers });
        },
      });
      const { verifier, challenge } = pkce();
      const page = await browser.get(`https://once.test/connect/authorize?${new URLSearchParams({ client_id: "c", redirect_uri: REDIRECT, response_type: "code", scope: "openid offline_access", code_challenge: challenge, code_challenge_method: "S256" })}`, { stopAt: (u) => u.origin === "https://rp.test" });
      const code = new URL(page.location!).searchParams.get("code")!;
      const token = async (form: Record<string, string>) => {
        const response = await provider.fetch(new Request("https://once.test/connect/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("c:c-secret").toString("base64")}` }, body: new URLSearchParams(form).toString() }));
        return { status: response.status, body: (await response.json()) as Record<string, string> };
      };
      const redeem = { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier };
      failConsume = true;
      const failed = await token(redeem);
      assert.equal(failed.status, 503);
      assert.equal(failed.body.access_token, undefined, "nothing half-written is handed out");
      const retried = await token(redeem);
      assert.equal(retried.status, 200, "the code survived the failure");
      failConsume = true;
      assert.equal((await token({ grant_type: "refresh_token", refresh_token: retried.body.refresh_token! })).status, 503);
      const rotated = await token({ grant_type: "refresh_token", refresh_token: retried.body.refresh_token! });
      assert.equal(rotated.status, 200, "the refresh token survived the failure");
      assert.equal((await token({ grant_type: "refresh_token", refresh_token: retried.body.refresh_token! })).body.error, "invalid_grant", "and was used once");
    } finally {
      await provider.close();
    }
  });
});
