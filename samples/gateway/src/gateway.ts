/**
 * An API gateway: validates the user's token for its own audience with @tessera/api, exchanges it
 * (RFC 8693, as the confidential client "gateway", with its own client-credentials token as the actor)
 * for a token of the downstream API, and forwards the call with that token.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { tokenAuth, type TokenAuthVariables } from "@tessera/api/hono";
import { Hono } from "hono";
import * as oidc from "openid-client";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";

export interface GatewayOptions {
  issuer: string;
  /** Base URL of the downstream orders API. */
  ordersUrl: string;
  port: number;
  clientId?: string;
  clientSecret?: string;
}

export async function startGateway(options: GatewayOptions): Promise<{ url: string; close(): Promise<void> }> {
  let config: Promise<oidc.Configuration> | undefined;
  // Discovered on first use, so the identity server may start after the gateway.
  const configuration = () => {
    const issuer = new URL(options.issuer);
    config ??= oidc
      .discovery(issuer, options.clientId ?? "gateway", undefined, oidc.ClientSecretBasic(options.clientSecret ?? "gateway-secret"), issuer.protocol === "http:" ? { execute: [oidc.allowInsecureRequests] } : {})
      .catch((error: unknown) => {
        config = undefined;
        throw error;
      });
    return config;
  };
  // The gateway's own token, the actor of every exchange; reused until shortly before it expires.
  let actor: { token: string; expiresAt: number } | undefined;
  const actorToken = async () => {
    if (!actor || actor.expiresAt - 30_000 < Date.now()) {
      const tokens = await oidc.clientCredentialsGrant(await configuration(), { scope: "gateway.access" });
      actor = { token: tokens.access_token, expiresAt: Date.now() + (tokens.expires_in ?? 60) * 1000 };
    }
    return actor.token;
  };

  const app = new Hono<{ Variables: TokenAuthVariables }>();
  app.use("/api/*", tokenAuth({ issuer: options.issuer, audience: "urn:gateway", requiredScopes: ["gateway.access"] }));
  app.get("/api/orders", async (c) => {
    // tokenAuth accepted only a Bearer token (no DPoP option), so the header holds it.
    const userToken = c.req.header("authorization")!.replace(/^Bearer\s+/i, "");
    let exchanged: oidc.TokenEndpointResponse;
    try {
      exchanged = await oidc.genericGrantRequest(await configuration(), TOKEN_EXCHANGE, {
        subject_token: userToken,
        subject_token_type: ACCESS_TOKEN,
        actor_token: await actorToken(),
        actor_token_type: ACCESS_TOKEN,
        audience: "urn:orders",
        scope: "orders.read",
      });
    } catch (error) {
      const e = error as { error?: string; error_description?: string };
      return c.json({ error: "exchange_failed", detail: e.error ?? "token endpoint unreachable" }, 502);
    }
    const response = await fetch(`${options.ordersUrl}/orders`, { headers: { authorization: `Bearer ${exchanged.access_token}` } });
    return c.json({ via: "gateway", downstreamStatus: response.status, downstream: await response.json() }, response.ok ? 200 : 502);
  });
  const server = serve({ fetch: app.fetch, port: options.port, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
