import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import type { UserTokenManager } from "@tessera/client";
import { userTokens } from "@tessera/client/express";
import express from "express";

describe("@tessera/client/express", () => {
  it("puts the signed-in user's token getter and fetch on req.userTokens, and nothing for anonymous requests", async () => {
    const calls: string[] = [];
    const manager: UserTokenManager = {
      save: async () => {},
      getAccessToken: async (key) => {
        calls.push(key);
        return `token-of-${key}`;
      },
      fetchFor: () => (async () => new Response("ok")) as typeof fetch,
      revoke: async () => {},
    };
    const app = express();
    app.use(userTokens(manager, (req) => (req.headers["x-session"] as string | undefined) ?? undefined));
    app.get("/", async (req, res) => {
      res.json({ token: req.userTokens ? await req.userTokens.getAccessToken() : null, fetched: req.userTokens ? await (await req.userTokens.fetch("https://api.test")).text() : null });
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      assert.deepEqual(await (await fetch(base, { headers: { "x-session": "s1" } })).json(), { token: "token-of-s1", fetched: "ok" });
      assert.deepEqual(await (await fetch(base)).json(), { token: null, fetched: null });
      assert.deepEqual(calls, ["s1"]);
    } finally {
      server.close();
    }
  });
});
