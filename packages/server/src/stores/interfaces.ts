import type { AccountStore } from "./accounts.ts";
import { findable, STORE_LIMITS } from "./values.ts";

/** Kinds of persisted grants (IdentityServer's persisted grant store, one table). */
export type GrantKind = "authorization_code" | "access_token" | "refresh_token" | "interaction" | "consent" | "replay" | "logout" | "throttle" | "session_ended" | "par" | "device_code" | "federation" | "federated_session" | "external_provider";

/** A stored grant: codes, token records, interactions. `key` is a hash of the handle, never the handle itself. */
export interface PersistedGrant {
  key: string;
  kind: GrantKind;
  clientId: string;
  subject?: string | undefined;
  sessionId?: string | undefined;
  /** Family id: every token issued from one authorization shares it, so they can be revoked together. */
  grantId?: string | undefined;
  /** JSON payload owned by the service that wrote it. */
  data: string;
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds. */
  expiresAt: number;
  /** Unix seconds; set once by {@link GrantStore.consume}. */
  consumedAt?: number | undefined;
}

/** Which grants a bulk removal applies to; all given fields must match. */
export interface GrantFilter {
  subject?: string;
  clientId?: string;
  sessionId?: string;
  grantId?: string;
  kind?: GrantKind;
}

/** Outcome of an atomic one-time use. */
export interface ConsumeResult {
  grant: PersistedGrant;
  /** False when the grant had already been consumed: a replay. */
  firstUse: boolean;
}

/** Storage of grants, codes, token records and interactions. */
export interface GrantStore {
  put(grant: PersistedGrant): Promise<void>;
  /**
   * Stores the grant unless a live one (not expired at `grant.createdAt`) has its key, in one atomic
   * step; true when stored. Replay caches use it: two racing uses of one value give one winner.
   */
  putIfAbsent(grant: PersistedGrant): Promise<boolean>;
  get(key: string): Promise<PersistedGrant | undefined>;
  /** Marks the grant consumed at `at` in one atomic step; tells whether this call was the first. */
  consume(key: string, at: number): Promise<ConsumeResult | undefined>;
  remove(key: string): Promise<void>;
  /** Up to `limit` grants matching the filter (which must name at least one field), oldest first. */
  findAll(filter: GrantFilter, limit: number): Promise<PersistedGrant[]>;
  /**
   * How many grants match the filter (which must name at least one field) and are live (expire after
   * `liveAt`), counting no further than `max` when given (so a count costs at most `max` rows); never
   * capped by a page size.
   */
  count(filter: GrantFilter, liveAt: number, max?: number): Promise<number>;
  /** Removes every grant matching the filter (which must name at least one field); returns how many. */
  removeAll(filter: GrantFilter): Promise<number>;
  /** Removes up to `limit` grants that expired before `now`; returns how many. */
  removeExpired(now: number, limit: number): Promise<number>;
}

/** A signing key as stored: the private JWK is encrypted at rest. */
export interface StoredKey {
  kid: string;
  alg: string;
  /** Compact JWE of the private JWK, encrypted with a key derived from the data key. */
  protectedJwk: string;
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds: from then on the key may sign. */
  activatesAt: number;
  /** Unix seconds: stops signing, still published until removed. */
  retiresAt?: number | undefined;
}

/** Storage of signing keys. */
export interface KeyStore {
  list(): Promise<StoredKey[]>;
  add(key: StoredKey): Promise<void>;
  remove(kid: string): Promise<void>;
  /**
   * Runs `change` on the current keys under a lock shared by every process of the store, then applies the
   * keys it returns to add and the kids to remove: key creation and rotation happen once, however many
   * processes start or rotate at the same moment.
   */
  update(change: (keys: StoredKey[]) => Promise<{ add: StoredKey[]; remove: string[] }>): Promise<void>;
}

/** A server-side authentication session (IdentityServer's server-side session record). */
export interface ServerSideSession {
  /** Hash of the handle the session cookie carries. */
  key: string;
  sessionId: string;
  subject: string;
  displayName?: string | undefined;
  /** Unix seconds. */
  created: number;
  /** Unix seconds: last time the session was renewed (sliding, refresh coordination). */
  renewed: number;
  /** Unix seconds. */
  expires: number;
  clientIds: string[];
  /** The session ticket, encrypted with the data key. */
  ticket: string;
}

/** Filter and page of a session query; text filters match substrings, case-insensitively. */
export interface SessionQuery {
  subject?: string;
  displayName?: string;
  sessionId?: string;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  count: number;
}

/** Storage of server-side sessions. */
export interface SessionStore {
  /** Inserts or replaces the session with this key. */
  put(session: ServerSideSession): Promise<void>;
  /**
   * Replaces the session stored under its key, never inserting; false when no session has that key (it
   * was re-keyed or removed meanwhile). Changes to a live session use it, so a stale key never adds a row.
   */
  update(session: ServerSideSession): Promise<boolean>;
  /**
   * Inserts the session unless one with its key or its sessionId exists, in one atomic step (never
   * replacing anything); true when inserted. Migrating a cookie session uses it: racing requests insert once.
   */
  create(session: ServerSideSession): Promise<boolean>;
  /**
   * Moves the session stored under `oldKey` to `newKey` in one atomic step (`update … set key = new where
   * key = old`); true when a row moved, false when none has `oldKey` (it was moved or removed already).
   * Re-authentication uses it: of racing sign-ins with one cookie, exactly one carries the session over.
   */
  rekey(oldKey: string, newKey: string): Promise<boolean>;
  get(key: string): Promise<ServerSideSession | undefined>;
  getBySessionId(sessionId: string): Promise<ServerSideSession | undefined>;
  /** Deletes sessions by key; returns the ones it deleted (so each is acted on once). */
  remove(keys: string[]): Promise<ServerSideSession[]>;
  /** Sessions in creation order, filtered, a page at a time. */
  query(query: SessionQuery): Promise<{ sessions: ServerSideSession[]; next: string | null }>;
  /** Deletes up to `limit` sessions that expired before `now`; returns them. Safe when processes race. */
  removeExpired(now: number, limit: number): Promise<ServerSideSession[]>;
}

/** One secret of a stored client: only its SHA-256 hash is kept. */
export interface StoredClientSecret {
  /** Names the secret for removal (random, not derived from the secret). */
  id: string;
  /** SHA-256 of the secret, base64url. */
  hash: string;
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds after which the secret no longer authenticates; absent: until removed. */
  expiresAt?: number | undefined;
}

/** A client created at run time (admin API or dynamic registration). */
export interface StoredClient {
  clientId: string;
  /** The client's registration metadata as JSON, without any secret. */
  metadata: string;
  secrets: StoredClientSecret[];
  /** SHA-256 (base64url) of the RFC 7592 registration access token, for dynamically registered clients. */
  registrationTokenHash?: string | undefined;
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds. */
  updatedAt: number;
}

/** Storage of run-time clients; it holds no validation (the client registry does that). */
export interface ClientRecordStore {
  /** Inserts the client unless one with its id exists, atomically; true when inserted. */
  create(client: StoredClient): Promise<boolean>;
  get(clientId: string): Promise<StoredClient | undefined>;
  /**
   * Replaces the stored client with this id, never inserting; false when there is none. With `expected`
   * (the record as read before the change) it is a compare-and-set: false, changing nothing, unless the
   * stored record still has that metadata, secrets, registration token hash and updatedAt.
   */
  update(client: StoredClient, expected?: StoredClient): Promise<boolean>;
  /** Deletes the client; false when there was none. */
  remove(clientId: string): Promise<boolean>;
  /** Up to `count` clients in client_id order (code units) whose id comes after `after` (the last id of the previous page). */
  list(query: { after?: string; count: number }): Promise<StoredClient[]>;
}

/** States of a device authorization (RFC 8628 §3.4-§3.5): waiting for the user, then their decision. */
export type DeviceCodeStatus = "pending" | "approved" | "denied";

/** A device authorization request (RFC 8628 §3.1) and what became of it. */
export interface DeviceCodeRecord {
  /** Hash of the device_code, never the code itself. */
  key: string;
  /** Hash of the normalized user code; unique among stored device codes. */
  userCodeKey: string;
  clientId: string;
  /** Granted scopes, space-separated. */
  scope: string;
  status: DeviceCodeStatus;
  /** The approving user (once approved). */
  subject?: string | undefined;
  /** The approving session (once approved). */
  sessionId?: string | undefined;
  /** JSON payload owned by the device flow service (the approving session's user data). */
  data: string;
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds. */
  expiresAt: number;
  /** Seconds the client must wait between polls; grows on each `slow_down` (RFC 8628 §3.5). */
  interval: number;
  /** Unix seconds of the last poll. */
  lastPolledAt?: number | undefined;
  /** Unix seconds; set once by {@link DeviceCodeStore.consume}. */
  consumedAt?: number | undefined;
}

/** The user's decision on a pending device code. */
export interface DeviceCodeDecision {
  status: "approved" | "denied";
  subject?: string;
  sessionId?: string;
  data: string;
}

/** Storage of device codes (RFC 8628); every change is one atomic step, so processes sharing a store agree. */
export interface DeviceCodeStore {
  /** Inserts the record unless one has its key or its user code key; true when inserted. */
  create(record: DeviceCodeRecord): Promise<boolean>;
  get(key: string): Promise<DeviceCodeRecord | undefined>;
  findByUserCode(userCodeKey: string): Promise<DeviceCodeRecord | undefined>;
  /** Records the decision on a record still pending and live at `at`; true when this call decided it. */
  decide(userCodeKey: string, decision: DeviceCodeDecision, at: number): Promise<boolean>;
  /**
   * Sets the last poll time to `at` and the interval to `interval` only while the last poll time is still
   * `previous` (compare-and-set); false when another poll got there first.
   */
  recordPoll(key: string, previous: number | undefined, at: number, interval: number): Promise<boolean>;
  /** Marks the record consumed at `at` in one atomic step; tells whether this call was the first. */
  consume(key: string, at: number): Promise<{ record: DeviceCodeRecord; firstUse: boolean } | undefined>;
  remove(key: string): Promise<void>;
  /** Removes up to `limit` records that expired before `now`; returns how many. */
  removeExpired(now: number, limit: number): Promise<number>;
}

/** The stores a provider needs for state it creates at run time. */
export interface Store {
  readonly grants: GrantStore;
  /** Device codes of the device authorization grant (RFC 8628). */
  readonly deviceCodes: DeviceCodeStore;
  readonly keys: KeyStore;
  readonly sessions: SessionStore;
  /** Clients created at run time, beside the read-only configured ones. */
  readonly clients: ClientRecordStore;
  /** Stored accounts (issue 20); the memory, SQLite and PostgreSQL stores have them. */
  readonly accounts?: AccountStore;
  /** Resolves when the store answers a trivial query (readiness probe); rejects when it cannot be reached. */
  ping(): Promise<void>;
  /** Releases connections; the store is unusable afterwards. */
  close(): Promise<void>;
}

export function assertFilter(filter: GrantFilter): void {
  if (!filter.subject && !filter.clientId && !filter.sessionId && !filter.grantId && !filter.kind) {
    throw new Error("removeAll needs at least one filter field");
  }
}

/** Cursor of a session page: the creation time and key of the last session shown. */
export function encodeSessionCursor(session: Pick<ServerSideSession, "created" | "key">): string {
  return Buffer.from(JSON.stringify([session.created, session.key])).toString("base64url");
}

/** Undefined for a cursor that was not made by {@link encodeSessionCursor}. */
export function decodeSessionCursor(cursor: string): { created: number; key: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    // Only what a store could have written: a whole number of seconds and a key a store can keep.
    if (Array.isArray(value) && Number.isSafeInteger(value[0]) && typeof value[1] === "string" && findable(value[1], STORE_LIMITS.key)) {
      return { created: value[0] as number, key: value[1] };
    }
  } catch {
    // fall through
  }
  return undefined;
}
