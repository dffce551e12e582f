import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHostConfig } from "@tessera/testing";
import { startDpopApi } from "../samples/dpop/src/api.ts";
import { startDpopWeb } from "../samples/dpop/src/web.ts";
import { createWorker } from "../samples/dpop/src/worker.ts";

describe("the DPoP sample", () => {
  it("runs the worker and the interactive app against the DPoP-only API", async () => {
    const { port: _port, ...sample } = JSON.parse(readFileSync(join(import.meta.dirname, "..", "samples", "dpop", "tessera.config.json"), "utf8")) as TestHostConfig & { port?: number };
    // The web app's port is known only once it listens, so the host is created after it (its issuer is read lazily).
    const webOptions = { issuer: "", apiUrl: "", port: 0 };
    const web = await startDpopWeb(webOptions);
    const clients = sample.clients!.map((c) => (c.client_id === "dpop-web" ? { ...c, redirect_uris: [`${web.url}/signin-oidc`] } : c));
    const host = await createTestHost({ ...sample, clients }, { listen: true });
    const api = await startDpopApi(host.issuer, 0);
    webOptions.issuer = host.issuer;
    webOptions.apiUrl = api.url;
    try {
      const worker = createWorker(host.issuer, api.url);
      const result = await worker();
      assert.equal(result.status, 200);
      assert.deepEqual(result.body, { message: "Hello from the DPoP API", sub: "dpop-worker", tokenType: "DPoP" });

      const browser = new TestBrowser();
      const login = await browser.get(`${web.url}/login`);
      const home = await browser.submitForm(login, { fields: { username: "alice", password: "alice" } });
      assert.match(home.text(), /HTTP 200/);
      assert.deepEqual(JSON.parse(home.text("#api")), { message: "Hello from the DPoP API", sub: "1", tokenType: "DPoP" });
      // A Bearer request to the API is refused.
      const bearer = await fetch(`${api.url}/data`, { headers: { authorization: "Bearer x.y.z" } });
      assert.equal(bearer.status, 401);
      assert.match(bearer.headers.get("www-authenticate")!, /^DPoP/);
    } finally {
      await web.close();
      await api.close();
      await host.close();
    }
  });
});
