import type { MiddlewareHandler } from "hono";
import { toResponse } from "./respond.ts";
import { protectedResourceMetadata, type ProtectedResourceMetadataHandler, type ProtectedResourceMetadataOptions } from "./resource-metadata.ts";
import { createTokenValidator, type TokenValidator, type TokenValidatorOptions, type ValidationSuccess } from "./validator.ts";

/** Hono variables set by {@link tokenAuth}. */
export interface TokenAuthVariables {
  auth: Omit<ValidationSuccess, "ok">;
}

/**
 * Hono middleware: validates the access token and sets `c.get("auth")`, or answers 401/403 with the
 * challenge. On Node, pass `clientCertificate` to check mTLS-bound tokens.
 */
export function tokenAuth(validator: TokenValidator | TokenValidatorOptions, clientCertificate?: (c: Parameters<MiddlewareHandler>[0]) => import("node:crypto").X509Certificate | string | undefined): MiddlewareHandler<{ Variables: TokenAuthVariables }> {
  const v = "validate" in validator ? validator : createTokenValidator(validator);
  return async (c, next) => {
    const result = await v.validate(c.req.raw, { clientCertificate: clientCertificate?.(c) });
    if (!result.ok) return toResponse(result);
    c.set("auth", { claims: result.claims, scopes: result.scopes, tokenType: result.tokenType });
    await next();
  };
}

/**
 * Hono middleware serving RFC 9728 protected resource metadata at its well-known paths
 * (`app.use(serveResourceMetadata(metadata))`); every other request goes on.
 */
export function serveResourceMetadata(metadata: ProtectedResourceMetadataHandler | ProtectedResourceMetadataOptions): MiddlewareHandler {
  const handler = typeof metadata === "function" ? metadata : protectedResourceMetadata(metadata);
  return async (c, next) => {
    if (!handler.paths.includes(new URL(c.req.url).pathname)) return next();
    return handler(c.req.raw);
  };
}
