/** A small API protected with @tessera/api: it accepts the identity server's access tokens for urn:api1. */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { tokenAuth, type TokenAuthVariables } from "@tessera/api/hono";
import { Hono } from "hono";

export async function startDeviceApi(issuer: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono<{ Variables: TokenAuthVariables }>();
  app.use("/data", tokenAuth({ issuer, audience: "urn:api1", requiredScopes: ["api1.read"] }));
  app.get("/data", (c) => c.json({ message: "Hello from the API", sub: c.get("auth").claims.sub, client_id: c.get("auth").claims.client_id }));
  const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  };
}
