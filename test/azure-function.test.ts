import assert from "node:assert/strict";
import { describe, it } from "node:test";
import azureFunctions from "@azure/functions";
import { createTestHost } from "@tessera/testing";
import { protectedHandler, resetValidator } from "../samples/azure-function/src/handler.ts";

describe("the Azure Functions sample, run locally", () => {
  it("answers 200 with a valid token and 401 with the challenge without one", async () => {
    const host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
        clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }],
      },
      { listen: true },
    );
    process.env.TESSERA_ISSUER = host.issuer;
    resetValidator();
    try {
      const response = await fetch(`${host.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` },
        body: "grant_type=client_credentials",
      });
      const { access_token } = (await response.json()) as { access_token: string };
      const call = (headers: Record<string, string>) =>
        protectedHandler(new azureFunctions.HttpRequest({ method: "GET", url: "https://func.test/api/protected", headers }), new azureFunctions.InvocationContext({ functionName: "protected" }));
      const ok = await call({ authorization: `Bearer ${access_token}` });
      assert.equal(ok.status, 200);
      assert.equal((ok.jsonBody as { sub: string }).sub, "worker");
      const refused = await call({});
      assert.equal(refused.status, 401);
      assert.match((refused.headers as Record<string, string>)["www-authenticate"]!, /^Bearer, DPoP algs="[^"]+"$/);
    } finally {
      delete process.env.TESSERA_ISSUER;
      resetValidator();
      await host.close();
    }
  });
});
