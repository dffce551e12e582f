import type { NextFunction, Request as ExpressRequest, RequestHandler, Response as ExpressResponse } from "express";
import { invalidRequestBody, nodeWebRequest, parseBaseUrl, peerCertificate, refusalHeaders, type NodeAdapterOptions } from "./node-request.ts";
import { createTokenValidator, type TokenValidator, type TokenValidatorOptions, type ValidationSuccess } from "./validator.ts";
import { protectedResourceMetadata, type ProtectedResourceMetadataHandler, type ProtectedResourceMetadataOptions } from "./resource-metadata.ts";
export type { NodeAdapterOptions } from "./node-request.ts";

declare module "express-serve-static-core" {
  interface Request {
    /** Set by {@link requireToken}: the validated access token. */
    auth?: Omit<ValidationSuccess, "ok">;
  }
}

/**
 * Express middleware: validates the request's access token and puts the result on `req.auth`, or answers
 * 401/403 with the RFC 6750 / RFC 9449 challenge. `options.baseUrl` is the API's public URL (for DPoP `htu`).
 */
export function requireToken(validator: TokenValidator | TokenValidatorOptions, options: NodeAdapterOptions = {}): RequestHandler {
  const v = "validate" in validator ? validator : createTokenValidator(validator);
  const base = parseBaseUrl(options.baseUrl);
  return (req: ExpressRequest, res: ExpressResponse, next: NextFunction) => {
    const built = nodeWebRequest(base, req.method, req.originalUrl, req.headers, () => ({ protocol: req.protocol, host: req.get("host") }));
    if (!built.ok) {
      res.status(400).set("cache-control", "no-store").json(invalidRequestBody(built.description));
      return;
    }
    // Every failure, of the validator or of writing the answer, goes to Express's error handling (never an unhandled rejection).
    v.validate(built.request, { clientCertificate: peerCertificate(req.socket) })
      .then((result) => {
        if (result.ok) {
          req.auth = { claims: result.claims, scopes: result.scopes, tokenType: result.tokenType };
          return next();
        }
        const headers = refusalHeaders(result); // throws, before anything is set, for a value Node refuses
        res.status(result.status).set(headers);
        res.json({ error: result.error, ...(result.errorDescription ? { error_description: result.errorDescription } : {}) });
      })
      .catch(next);
  };
}

/**
 * Express middleware serving RFC 9728 protected resource metadata at its well-known paths
 * (`app.use(serveResourceMetadata(metadata))`); every other request passes through.
 */
export function serveResourceMetadata(metadata: ProtectedResourceMetadataHandler | ProtectedResourceMetadataOptions): RequestHandler {
  const handler = typeof metadata === "function" ? metadata : protectedResourceMetadata(metadata);
  return (req: ExpressRequest, res: ExpressResponse, next: NextFunction) => {
    const pathname = new URL(req.originalUrl, "http://localhost").pathname;
    if (!handler.paths.includes(pathname)) return next();
    const response = handler(new Request(`http://localhost${pathname}`, { method: req.method }));
    res.status(response.status);
    response.headers.forEach((value, name) => res.setHeader(name, value));
    response
      .text()
      .then((body) => res.end(body))
      .catch(next);
  };
}
