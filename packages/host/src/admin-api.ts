import type { HttpBindings } from "@hono/node-server";
import { AccountConflictError, AccountInputError, ExternalProviderError, FixedAccountError, ProtocolError, StoreValueError, type AccessTokenClaims, type AccountView, type ExternalProviderOptions, type Logger, type Provider, type RequestContext, type UserDirectory } from "@tessera/server";
import { DPOP_ALGORITHMS, quotedString } from "@tessera/protocol";
import { bodyLimit } from "hono/body-limit";
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ADMIN_SCOPE } from "./config.ts";

/** What the admin API needs from the host. */
export interface AdminAccess {
  provider: Provider;
  /** The accounts (fixed and stored). */
  users: UserDirectory;
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
  // Accounts (issue 20, contract §14).
  api.get("/users", async (c) => {
    const count = pageCount(c.req.query("count"));
    if (count === undefined) return c.json({ error: "invalid_request", error_description: `count must be 1 to ${MAX_USER_COUNT}` }, 400);
    const query = c.req.query("query") || undefined;
    if (query !== undefined && query.length > 200) return c.json({ error: "invalid_request", error_description: "query is longer than 200 characters" }, 400);
    const page = await access.users.list({ query, cursor: c.req.query("cursor") || undefined, count });
    return c.json({ users: page.users.map(userJson), next: page.next });
  });

  api.post("/users", async (c) => {
    const body = await jsonObjectBody(c.req.raw);
    if (!body) return c.json({ error: "invalid_request", error_description: "the body must be a JSON object" }, 400);
    const problem = fieldProblem(body, { username: "string", email: "string", name: "string", password: "string", emailVerified: "boolean", claims: "object", role: "string|array" });
    if (problem) return c.json({ error: "invalid_request", error_description: problem }, 400);
    if (typeof body.username !== "string") return c.json({ error: "invalid_request", error_description: "username is required" }, 400);
    const claims = { ...((body.claims as Record<string, unknown> | undefined) ?? {}) };
    if (body.name !== undefined) claims.name = body.name;
    if (body.role !== undefined) claims.role = body.role;
    return answer(c, async () => {
      const user = await access.users.create(
        {
          username: body.username as string,
          email: body.email as string | undefined,
          // An email given by an administrator counts as verified (contract §14).
          emailVerified: (body.emailVerified as boolean | undefined) ?? true,
          password: body.password as string | undefined,
          claims,
        },
        "admin",
      );
      access.logger?.info({ event: "account_created", by: c.get("claims").sub, sub: user.sub }, "account created through the admin API");
      return c.json(userJson(user), 201);
    });
  });

  api.get("/users/:sub", async (c) => {
    const user = await access.users.get(c.req.param("sub"));
    return user ? c.json(userJson(user)) : c.json({ error: "not_found", error_description: "no such user" }, 404);
  });

  api.patch("/users/:sub", async (c) => {
    const sub = c.req.param("sub");
    const body = await jsonObjectBody(c.req.raw);
    if (!body) return c.json({ error: "invalid_request", error_description: "the body must be a JSON object" }, 400);
    const problem = fieldProblem(body, { username: "string", email: "string|null", emailVerified: "boolean", claims: "object", password: "string", disabled: "boolean" });
    if (problem) return c.json({ error: "invalid_request", error_description: problem }, 400);
    return answer(c, async () => {
      if (!(await access.users.get(sub))) return c.json({ error: "not_found", error_description: "no such user" }, 404);
      // Every check before the first change: a refused request changes nothing.
      if (typeof body.password === "string") access.users.assertPasswordPolicy(body.password);
      let user = await access.users.update(
        sub,
        { username: body.username as string | undefined, email: body.email as string | null | undefined, emailVerified: body.emailVerified as boolean | undefined, claims: body.claims as Record<string, unknown> | undefined },
        "admin",
      );
      if (user && typeof body.password === "string") user = await access.users.setPassword(sub, body.password, "admin");
      if (user && typeof body.disabled === "boolean") user = await access.users.setDisabled(sub, body.disabled, "admin");
      if (!user) return c.json({ error: "not_found", error_description: "no such user" }, 404);
      access.logger?.info({ event: "account_updated", by: c.get("claims").sub, sub, fields: Object.keys(body).filter((k) => k !== "password") }, "account changed through the admin API");
      return c.json(userJson(user));
    });
  });

  api.delete("/users/:sub", async (c) => {
    const sub = c.req.param("sub");
    return answer(c, async () => {
      if (!(await access.users.remove(sub, "admin"))) return c.json({ error: "not_found", error_description: "no such user" }, 404);
      access.logger?.info({ event: "account_deleted", by: c.get("claims").sub, sub }, "account deleted through the admin API");
      return c.body(null, 204);
    });
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

const MAX_USER_COUNT = 200;

function pageCount(text: string | undefined): number | undefined {
  const count = text === undefined || text === "" ? 25 : Number(text);
  return Number.isInteger(count) && count >= 1 && count <= MAX_USER_COUNT ? count : undefined;
}

/** An account in the admin API: never a password hash. */
function userJson(user: AccountView) {
  const iso = (seconds: number | undefined) => (seconds === undefined ? null : new Date(seconds * 1000).toISOString());
  return {
    sub: user.sub,
    username: user.username,
    email: user.email ?? null,
    emailVerified: user.emailVerified,
    claims: user.claims,
    disabled: user.disabled,
    source: user.fixed ? "config" : "store",
    hasPassword: user.hasPassword,
    created: iso(user.createdAt),
    updated: iso(user.updatedAt),
  };
}

/** The body as a JSON object, or undefined when it is not one (or larger than 64 KiB). */
async function jsonObjectBody(request: Request): Promise<Record<string, unknown> | undefined> {
  if (!/^application\/json\b/i.test(request.headers.get("content-type") ?? "")) return undefined;
  const text = await request.text().catch(() => undefined);
  if (text === undefined || text.length > 65_536) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The first field of the wrong type or unknown, as an error description. */
function fieldProblem(body: Record<string, unknown>, fields: Record<string, string>): string | undefined {
  for (const [name, value] of Object.entries(body)) {
    const allowed = fields[name];
    if (!allowed) return `unknown field ${name}`;
    const kind = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
    if (!allowed.split("|").includes(kind)) return `${name} must be ${allowed.replace("|", " or ")}`;
    if (kind === "array" && !(value as unknown[]).every((v) => typeof v === "string")) return `${name} must hold strings`;
  }
  return undefined;
}

/** Runs an account change, answering its refusals as JSON errors (400 bad input, 409 conflict). */
async function answer(c: Context, run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof AccountInputError || error instanceof StoreValueError) return c.json({ error: "invalid_request", error_description: error.message }, 400);
    if (error instanceof AccountConflictError) return c.json({ error: "conflict", error_description: error.message }, 409);
    if (error instanceof FixedAccountError) return c.json({ error: "conflict", error_description: error.message }, 409);
    throw error;
  }
}
