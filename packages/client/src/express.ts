import type { RequestHandler } from "express";
import type { UserTokenManager } from "./user-tokens.ts";

declare module "express-serve-static-core" {
  interface Request {
    /** Set by {@link userTokens}: the signed-in user's token and an API fetch, when there is a user. */
    userTokens?: { getAccessToken(): Promise<string>; fetch: typeof fetch };
  }
}

/**
 * Express middleware: for requests of a signed-in user (`userKey` returns the key the app stored the
 * tokens under, usually its session id), puts `req.userTokens` with a token getter and an API fetch.
 */
export function userTokens(manager: UserTokenManager, userKey: (req: Parameters<RequestHandler>[0]) => string | undefined): RequestHandler {
  return (req, _res, next) => {
    const key = userKey(req);
    if (key) req.userTokens = { getAccessToken: () => manager.getAccessToken(key), fetch: manager.fetchFor(key) };
    next();
  };
}
