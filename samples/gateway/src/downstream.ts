/**
 * The downstream orders API: accepts only tokens for its own audience (`urn:orders`) that the gateway got
 * by token exchange, so the user's own token (or anyone else's) cannot call it directly.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { tokenAuth, type TokenAuthVariables } from "@tessera/api/hono";
import { Hono } from "hono";

/** The client allowed to call this API: the gateway, on a user's behalf. */
export const GATEWAY_CLIENT_ID = "gateway";

export async function startOrdersApi(issuer: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono<{ Variables: TokenAuthVariables }>();
  app.use("/orders", tokenAuth({ issuer, audience: "urn:orders", requiredScopes: ["orders.read"] }));
  app.get("/orders", (c) => {
    const { claims } = c.get("auth");
    if (claims.client_id !== GATEWAY_CLIENT_ID) return c.json({ error: "insufficient_scope", error_description: "call this API through the gateway" }, 403);
    const act = claims.act as { sub?: string } | undefined;
    return c.json({ orders: [{ id: "o-1001", item: "Tessera tiles", owner: claims.sub }], sub: claims.sub, clientId: claims.client_id, actor: act?.sub ?? null });
  });
  const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
