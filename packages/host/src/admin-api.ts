import type { HttpBindings } from "@hono/node-server";
import { ProtocolError, type AccessTokenClaims, type Logger, type Provider, type RequestContext } from "@tessera/server";
import { DPOP_ALGORITHMS, quotedString } from "@tessera/protocol";
import { bodyLimit } from "hono/body-limit";
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

  // Clients (contract §13): RFC 7591 metadata in and out; errors in RFC 7591 §3.2.2 shape.
  const problem = (c: Context, error: ProtocolError) => {
    for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    return c.json(error.toJSON(), error.status as ContentfulStatusCode);
  };
  const notFound = (c: Context) => c.json({ error: "not_found", error_description: "no such client" }, 404);
  const jsonBody = async (c: Context, optional = false): Promise<unknown> => {
    const text = await c.req.text();
    if (optional && text.trim() === "") return {};
    if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) throw new ProtocolError("invalid_request", "the body must be application/json");
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProtocolError("invalid_client_metadata", "the body is not valid JSON");
    }
  };
  const guarded = (handler: (c: Context) => Promise<Response>) => async (c: Context) => {
    try {
      return await handler(c);
    } catch (error) {
      if (error instanceof ProtocolError) return problem(c, error);
      throw error;
    }
  };
  const by = (c: Context) => (c.get("claims") as AccessTokenClaims).sub;
  api.use("/clients/*", bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json({ error: "invalid_request", error_description: "the body is too large" }, 413) }));
  api.use("/clients", bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json({ error: "invalid_request", error_description: "the body is too large" }, 413) }));

  api.get("/clients", guarded(async (c) => {
    const countText = c.req.query("count");
    const count = countText === undefined || countText === "" ? 25 : Number(countText);
    if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) return c.json({ error: "invalid_request", error_description: `count must be 1 to ${MAX_COUNT}` }, 400);
    return c.json(await access.provider.clients.list({ cursor: c.req.query("cursor") || undefined, count }));
  }));

  api.post("/clients", guarded(async (c) => {
    const created = await access.provider.clients.create(await jsonBody(c), "admin");
    access.logger?.info({ event: "client_created", by: by(c), clientId: created.client.client_id }, "client created through the admin API");
    return c.json({ ...created.client, ...(created.clientSecret ? { client_secret: created.clientSecret, client_secret_expires_at: 0 } : {}) }, 201);
  }));

  api.get("/clients/:clientId", guarded(async (c) => {
    const client = await access.provider.clients.get((c.req.param("clientId") ?? ""));
    return client ? c.json(client) : notFound(c);
  }));

  api.put("/clients/:clientId", guarded(async (c) => {
    const updated = await access.provider.clients.update((c.req.param("clientId") ?? ""), await jsonBody(c), "admin");
    if (!updated) return notFound(c);
    return c.json({ ...updated.client, ...(updated.clientSecret ? { client_secret: updated.clientSecret, client_secret_expires_at: 0 } : {}) });
  }));

  api.delete("/clients/:clientId", guarded(async (c) => {
    const clientId = (c.req.param("clientId") ?? "");
    if (!(await access.provider.clients.delete(clientId, "admin"))) return notFound(c);
    access.logger?.info({ event: "client_deleted", by: by(c), clientId }, "client deleted through the admin API");
    return c.body(null, 204);
  }));

  // Rotation adds a secret; the old ones work until removed below (or for oldSecretsExpireIn seconds).
  api.post("/clients/:clientId/secret", guarded(async (c) => {
    const body = await jsonBody(c, true);
    const expireIn = typeof body === "object" && body !== null ? (body as Record<string, unknown>).oldSecretsExpireIn : undefined;
    if (expireIn !== undefined && typeof expireIn !== "number") return c.json({ error: "invalid_request", error_description: "oldSecretsExpireIn must be a number of seconds" }, 400);
    const rotated = await access.provider.clients.rotateSecret((c.req.param("clientId") ?? ""), { oldSecretsExpireIn: expireIn });
    if (!rotated) return notFound(c);
    return c.json({ ...rotated.client, client_secret: rotated.clientSecret, client_secret_expires_at: 0, secret_id: rotated.secretId });
  }));

  api.delete("/clients/:clientId/secrets/:secretId", guarded(async (c) => {
    const result = await access.provider.clients.removeSecret((c.req.param("clientId") ?? ""), (c.req.param("secretId") ?? ""));
    if (result === "not_found") return c.json({ error: "not_found", error_description: "no such client or secret" }, 404);
    if (result === "last_secret") return c.json({ error: "invalid_request", error_description: "the last secret cannot be removed; rotate first" }, 409);
    return c.body(null, 204);
  }));

  api.delete("/sessions/:sessionId", async (c) => {
    const sessionId = c.req.param("sessionId");
    const removed = await access.provider.removeSessions({ sessionId });
    if (removed === 0) return c.json({ error: "not_found", error_description: "no such session" }, 404);
    access.logger?.info({ event: "session_revoked", by: c.get("claims").sub, sessionId }, "session revoked through the admin API");
    return c.body(null, 204);
  });
  return api;
}
