import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHostConfig } from "@tessera/testing";
import { startApi } from "../samples/sessions/src/api.ts";
import { startWebClient } from "../samples/web-client/src/server.ts";

describe("the server-side sessions sample", () => {
  it("calls the API, slides the session on refresh, and ends everything when the session is revoked", async () => {
    const sample = JSON.parse(readFileSync(join(import.meta.dirname, "..", "samples", "sessions", "tessera.config.json"), "utf8")) as TestHostConfig & { port?: number };
    let offset = 0;
    const webOptions = { issuer: "", clientId: "sessions-web", clientSecret: "sessions-web-secret", port: 0, scope: "openid profile email offline_access api1.read", apiUrl: "" };
    const web = await startWebClient(webOptions);
    const client = sample.clients![0]!;
    const rewrite = (uri: string) => uri.replace("http://localhost:5003", web.url);
    const { port: _port, ...rest } = sample;
    const host = await createTestHost(
      {
        ...rest,
        store: { kind: "memory" },
        clients: [{ ...client, redirect_uris: client.redirect_uris!.map(rewrite), post_logout_redirect_uris: client.post_logout_redirect_uris!.map(rewrite), frontchannel_logout_uri: rewrite(client.frontchannel_logout_uri!), backchannel_logout_uri: rewrite(client.backchannel_logout_uri!) }],
      },
      { listen: true, clock: () => Date.now() + offset },
    );
    const api = await startApi({ issuer: host.issuer, resource: "urn:api1", secret: "api1-secret", requiredScope: "api1.read", port: 0 });
    webOptions.issuer = host.issuer;
    webOptions.apiUrl = `${api.url}/data`;
    try {
      const browser = new TestBrowser();
      const login = await browser.get(`${web.url}/login`);
      let home = await browser.submitForm(login, { fields: { username: "alice", password: "alice" } });
      assert.match(home.text("#user"), /Alice Smith/);

      home = await browser.submitForm(home, { form: "form[action='/call-api']" });
      assert.match(home.text("#result"), /^200 .*Hello from the API/);

      const session = async () => (await host.provider.querySessions({ count: 10 })).sessions[0]!;
      const before = await session();
      offset += 120_000;
      home = await browser.submitForm(home, { form: "form[action='/refresh']" });
      assert.match(home.text("#result"), /refreshed/);
      const after = await session();
      assert.ok(after.expires >= before.expires + 120, "the refresh extended the provider session");
      // Back to real time: the app checks logout tokens against its own clock.
      offset = 0;

      assert.equal(await host.provider.removeSessions({ sessionId: before.sessionId }), 1);
      for (let i = 0; i < 200 && !web.events.some((e) => e.kind === "back-channel"); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(web.events.some((e) => e.kind === "back-channel" && e.sid === before.sessionId));
      const signedOut = await browser.get(`${web.url}/`);
      assert.ok(signedOut.query("#login"), "the app signed the user out");
    } finally {
      await web.close();
      await api.close();
      await host.close();
    }
  });
});
