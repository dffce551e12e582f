/** An API that accepts only DPoP-bound tokens (RFC 9449), with its own nonces. */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { tokenAuth, type TokenAuthVariables } from "@tessera/api/hono";
import { Hono } from "hono";

export async function startDpopApi(issuer: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono<{ Variables: TokenAuthVariables }>();
  app.use("/data", tokenAuth({ issuer, audience: "urn:api1", requiredScopes: ["api1.read"], dpop: { required: true, requireNonce: true } }));
  app.get("/data", (c) => c.json({ message: "Hello from the DPoP API", sub: c.get("auth").claims.sub, tokenType: c.get("auth").tokenType }));
  const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
