import type { NextFunction, Request as ExpressRequest, RequestHandler, Response as ExpressResponse } from "express";
import { parseBaseUrl, peerCertificate, requestUrl, toWebRequest, type NodeAdapterOptions } from "./node-request.ts";
import { createTokenValidator, type TokenValidator, type TokenValidatorOptions, type ValidationSuccess } from "./validator.ts";
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
    const url = requestUrl(base, req.originalUrl, () => `${req.protocol}://${req.get("host")}${req.originalUrl}`);
    v.validate(toWebRequest(req.method, url, req.headers), { clientCertificate: peerCertificate(req.socket) }).then((result) => {
      if (result.ok) {
        req.auth = { claims: result.claims, scopes: result.scopes, tokenType: result.tokenType };
        return next();
      }
      res.status(result.status).set({ "www-authenticate": result.wwwAuthenticate, "cache-control": "no-store", ...(result.dpopNonce ? { "dpop-nonce": result.dpopNonce } : {}) });
      res.json({ error: result.error, ...(result.errorDescription ? { error_description: result.errorDescription } : {}) });
    }, next);
  };
}
