import type { NextFunction, Request as ExpressRequest, RequestHandler, Response as ExpressResponse } from "express";
import { peerCertificate, toWebRequest } from "./node-request.ts";
import { createTokenValidator, type TokenValidator, type TokenValidatorOptions, type ValidationSuccess } from "./validator.ts";

declare module "express-serve-static-core" {
  interface Request {
    /** Set by {@link requireToken}: the validated access token. */
    auth?: Omit<ValidationSuccess, "ok">;
  }
}

/**
 * Express middleware: validates the request's access token and puts the result on `req.auth`, or answers
 * 401/403 with the RFC 6750 / RFC 9449 challenge.
 */
export function requireToken(validator: TokenValidator | TokenValidatorOptions): RequestHandler {
  const v = "validate" in validator ? validator : createTokenValidator(validator);
  return (req: ExpressRequest, res: ExpressResponse, next: NextFunction) => {
    const url = `${req.protocol}://${req.get("host")}${req.originalUrl}`;
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
