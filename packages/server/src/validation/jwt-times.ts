/**
 * Seconds a client-made JWT's `iat` may lie ahead of this server's clock (client assertions, request
 * objects): the same leeway as their `nbf`/`exp`. FAPI 2.0 SP §5.3.2.1-14 asks to accept up to 10 s and
 * to refuse more than 60 s; the rule applies to every client, not only to a profile's.
 */
export const MAX_FUTURE_IAT = 30;

/**
 * True when a JWT's `iat` is more than `leeway` seconds after `now` (Unix seconds). jose checks a future
 * `iat` only with `maxTokenAge`, so without this an `iat` hours ahead passes.
 */
export function iatTooFarAhead(payload: { iat?: unknown }, now: number, leeway: number = MAX_FUTURE_IAT): boolean {
  return typeof payload.iat === "number" && payload.iat > now + leeway;
}
