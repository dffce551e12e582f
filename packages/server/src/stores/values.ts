import type { PersistedGrant, ServerSideSession, StoredKey } from "./interfaces.ts";

/**
 * Longest value (UTF-16 code units) of each bounded column; every store keeps to them, so what fits
 * one store fits all. Columns not listed are unbounded `text`. Callers (config, sign-in API) refuse
 * longer values at the edge; {@link StoreValueError} is the last line.
 */
export const STORE_LIMITS = {
  key: 128,
  kind: 32,
  clientId: 200,
  subject: 255,
  sessionId: 100,
  grantId: 100,
  kid: 100,
  alg: 16,
} as const;

/** NUL (PostgreSQL text refuses it) or a lone surrogate (not encodable as UTF-8, so it would come back changed). */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `value` can be kept as text by every store: no NUL, no lone surrogate. */
export function isStorableText(value: string): boolean {
  return !UNSTORABLE.test(value);
}

/** A value a store cannot keep (too long for its column, or characters text cannot hold). */
export class StoreValueError extends Error {
  readonly code = "store_value_refused";
  constructor(readonly field: string, reason: string) {
    super(`${field} ${reason}`);
    this.name = "StoreValueError";
  }
}

/** True when an equality lookup by `value` may find something (a value no store keeps finds nothing). */
export function findable(value: string, limit?: number): boolean {
  return (limit === undefined || value.length <= limit) && isStorableText(value);
}

function check(record: object, limits: Partial<Record<string, number>>): void {
  for (const [field, value] of Object.entries(record)) {
    const values = typeof value === "string" ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
    for (const text of values) {
      const limit = limits[field];
      if (limit !== undefined && text.length > limit) throw new StoreValueError(field, `is longer than ${limit} characters`);
      if (!isStorableText(text)) throw new StoreValueError(field, "contains a NUL character or a lone surrogate");
    }
  }
}

/** Throws {@link StoreValueError} unless every store can keep the grant unchanged. */
export function assertStorableGrant(grant: PersistedGrant): void {
  check(grant, STORE_LIMITS);
}

/** Throws {@link StoreValueError} unless every store can keep the session unchanged. */
export function assertStorableSession(session: ServerSideSession): void {
  check(session, { key: STORE_LIMITS.key, sessionId: STORE_LIMITS.sessionId, subject: STORE_LIMITS.subject, clientIds: STORE_LIMITS.clientId });
}

/** Throws {@link StoreValueError} unless every store can keep the key unchanged. */
export function assertStorableKey(key: StoredKey): void {
  check(key, STORE_LIMITS);
}
