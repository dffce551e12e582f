import type { HttpBindings } from "@hono/node-server";
import { ExternalProviderError, type AccessTokenClaims, type ExternalProviderOptions, type Logger, type Provider, type RequestContext } from "@tessera/server";
import { DPOP_ALGORITHMS, quotedString } from "@tessera/protocol";
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ADMIN_SCOPE } from "./config.ts";

/** What the admin API needs from the host. */
export interface AdminAccess {
  provider: Provider;
  /** The admin API's audience ({issuer}/admin/api). */
  audience: string;
  isAdmin(sub: string): Promise<boolean>;
  logger?: Logger;
  /** What the host knows of the request's connection (client certificate, address). */
  requestContext(request: Request, env: Partial<HttpBindings> | undefined): RequestContext;
}

const MAX_COUNT = 500;
/** Largest JSON body of a provider entry. */
const MAX_PROVIDER_BYTES = 16 * 1024;

/**
 * The 403 insufficient_scope answer (RFC 6750 §3.1, RFC 9449 §7.1): a challenge in the token's own scheme
 * naming the scope the admin API needs.
 */
function insufficientScope(c: Context, scheme: "Bearer" | "DPoP", realm: string, description: string) {
  const error = "insufficient_scope";
  const params = `error=${quotedString(error)}, error_description=${quotedString(description)}, scope=${quotedString(ADMIN_SCOPE)}`;
  c.header("www-authenticate", scheme === "DPoP" ? `DPoP algs=${quotedString(DPOP_ALGORITHMS.join(" "))}, ${params}` : `Bearer realm=${quotedString(realm)}, ${params}`);
  c.header("cache-control", "no-store");
  return c.json({ error, error_description: description }, 403);
}

/**
 * The admin API (contract §5): an access token from this server with scope tessera.admin and the admin
 * API audience, sender-constrained ones with their DPoP proof or certificate; a user's token also needs
 * the admin role.
 */
export function adminApi(access: AdminAccess): Hono<{ Variables: { claims: AccessTokenClaims } }> {
  const api = new Hono<{ Variables: { claims: AccessTokenClaims } }>();
  api.use(async (c, next) => {
    const authentication = await access.provider.authenticateRequest(c.req.raw, access.requestContext(c.req.raw, c.env as Partial<HttpBindings> | undefined));
    if (!authentication.ok) {
      const { error } = authentication;
      for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
      c.header("cache-control", "no-store");
      return c.json({ error: error.code, ...(error.description ? { error_description: error.description } : {}) }, error.status as ContentfulStatusCode);
    }
    const { claims, tokenType } = authentication;
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!claims.scope.split(" ").includes(ADMIN_SCOPE) || !audiences.includes(access.audience)) {
      return insufficientScope(c, tokenType, access.provider.issuer, `the token needs scope ${ADMIN_SCOPE}`);
    }
    if (claims.sid !== undefined && !(await access.isAdmin(claims.sub))) return insufficientScope(c, tokenType, access.provider.issuer, "the user is not an administrator");
    c.set("claims", claims);
    c.header("cache-control", "no-store");
    await next();
  });

  api.get("/sessions", async (c) => {
    const countText = c.req.query("count");
    const count = countText === undefined || countText === "" ? 25 : Number(countText);
    if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) return c.json({ error: "invalid_request", error_description: `count must be 1 to ${MAX_COUNT}` }, 400);
    const page = await access.provider.querySessions({
      subject: c.req.query("subject") || undefined,
      displayName: c.req.query("displayName") || undefined,
      sessionId: c.req.query("sessionId") || undefined,
      cursor: c.req.query("cursor") || undefined,
      count,
    });
    const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
    return c.json({
      sessions: page.sessions.map((s) => ({ sessionId: s.sessionId, subject: s.subject, displayName: s.displayName ?? null, clientIds: s.clientIds, created: iso(s.created), renewed: iso(s.renewed), expires: iso(s.expires) })),
      next: page.next,
    });
  });

  api.delete("/sessions/:sessionId", async (c) => {
    const sessionId = c.req.param("sessionId");
    const removed = await access.provider.removeSessions({ sessionId });
    if (removed === 0) return c.json({ error: "not_found", error_description: "no such session" }, 404);
    access.logger?.info({ event: "session_revoked", by: c.get("claims").sub, sessionId }, "session revoked through the admin API");
    return c.body(null, 204);
  });

  // External identity providers (contract §15): config entries read-only (409), stored ones with their secret encrypted at rest.
  api.get("/providers", async (c) => c.json({ providers: await access.provider.listExternalProviders() }));
  const providerError = (c: Context, error: unknown) => {
    if (!(error instanceof ExternalProviderError)) throw error;
    if (error.code === "config_provider") return c.json({ error: "conflict", error_description: error.message }, 409);
    return c.json({ error: "invalid_request", error_description: error.message }, 400);
  };
  api.put("/providers/:id", async (c) => {
    const id = c.req.param("id");
    const text = await c.req.text().catch(() => "");
    if (text.length > MAX_PROVIDER_BYTES) return c.json({ error: "invalid_request", error_description: "the entry is too large" }, 413);
    let entry: unknown;
    try {
      entry = JSON.parse(text);
    } catch {
      return c.json({ error: "invalid_request", error_description: "the body is not JSON" }, 400);
    }
    if (!entry || typeof entry !== "object" || Array.isArray(entry)) return c.json({ error: "invalid_request", error_description: "the body must be a JSON object" }, 400);
    const body = entry as Record<string, unknown>;
    if (body.id !== undefined && body.id !== id) return c.json({ error: "invalid_request", error_description: "id differs from the path" }, 400);
    try {
      await access.provider.putExternalProvider({ ...body, id } as unknown as ExternalProviderOptions);
    } catch (error) {
      return providerError(c, error);
    }
    access.logger?.info({ event: "external_provider_saved", by: c.get("claims").sub, id }, "external provider saved through the admin API");
    const saved = (await access.provider.listExternalProviders()).find((p) => p.id === id);
    return c.json(saved ?? { id }, 200);
  });
  api.delete("/providers/:id", async (c) => {
    const id = c.req.param("id");
    try {
      if (!(await access.provider.removeExternalProvider(id))) return c.json({ error: "not_found", error_description: "no such provider" }, 404);
    } catch (error) {
      return providerError(c, error);
    }
    access.logger?.info({ event: "external_provider_removed", by: c.get("claims").sub, id }, "external provider removed through the admin API");
    return c.body(null, 204);
  });
  return api;
}
