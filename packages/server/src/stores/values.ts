import type { DeviceCodeRecord, PersistedGrant, ServerSideSession, StoredClient, StoredKey } from "./interfaces.ts";

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

/**
 * A value a store cannot keep (too long for its column, characters text cannot hold, or a time that is not
 * whole seconds). `origin` is `"server"` when the value came from the server itself (its keys, its user
 * store, any time: those from requests are rounded first) rather than from a request: a fault to log at
 * error level, not bad input.
 */
export class StoreValueError extends Error {
  readonly code = "store_value_refused";
  constructor(
    readonly field: string,
    reason: string,
    readonly origin: "input" | "server" = "input",
  ) {
    super(`${field} ${reason}`);
    this.name = "StoreValueError";
  }
}

/** Time fields (Unix seconds) of grants, sessions and keys: `bigint` columns, so whole, safe integers only. */
const TIME_FIELDS = new Set(["createdAt", "expiresAt", "consumedAt", "created", "renewed", "expires", "activatesAt", "retiresAt", "updatedAt", "lastPolledAt", "interval"]);

/** True when an equality lookup by `value` may find something (a value no store keeps finds nothing). */
export function findable(value: string, limit?: number): boolean {
  return (limit === undefined || value.length <= limit) && isStorableText(value);
}

function check(record: object, limits: Partial<Record<string, number>>, origin: "input" | "server" = "input"): void {
  for (const [field, value] of Object.entries(record)) {
    if (TIME_FIELDS.has(field) && value !== undefined && !Number.isSafeInteger(value)) {
      // Times from requests are bounded and rounded before they get here: any other is the server's own fault.
      throw new StoreValueError(field, "is not a whole number of seconds within the safe integer range", "server");
    }
    const values = typeof value === "string" ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
    for (const text of values) {
      const limit = limits[field];
      if (limit !== undefined && text.length > limit) throw new StoreValueError(field, `is longer than ${limit} characters`, origin);
      if (!isStorableText(text)) throw new StoreValueError(field, "contains a NUL character or a lone surrogate", origin);
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

/** Throws {@link StoreValueError} unless every store can keep the key unchanged (keys are the server's own values). */
export function assertStorableKey(key: StoredKey): void {
  check(key, STORE_LIMITS, "server");
}

/** Throws {@link StoreValueError} unless every store can keep the client unchanged. */
export function assertStorableClient(client: StoredClient): void {
  check({ clientId: client.clientId, metadata: client.metadata, registrationTokenHash: client.registrationTokenHash, createdAt: client.createdAt, updatedAt: client.updatedAt }, { clientId: STORE_LIMITS.clientId, registrationTokenHash: STORE_LIMITS.key });
  for (const secret of client.secrets) check(secret, { id: STORE_LIMITS.key, hash: STORE_LIMITS.key });
}

/** Longest values of the device code columns beyond {@link STORE_LIMITS}: the row stays bounded. */
export const DEVICE_CODE_LIMITS = {
  ...STORE_LIMITS,
  userCodeKey: 128,
  status: 16,
  scope: 4096,
  data: 16384,
} as const;

/** Throws {@link StoreValueError} unless every store can keep the device code unchanged. */
export function assertStorableDeviceCode(record: DeviceCodeRecord): void {
  check(record, DEVICE_CODE_LIMITS);
}

/** Throws {@link StoreValueError} unless every store can keep the decision's values. */
export function assertStorableDeviceDecision(decision: object): void {
  check(decision, DEVICE_CODE_LIMITS);
}
