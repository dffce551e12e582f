/** Kinds of persisted grants (IdentityServer's persisted grant store, one table). */
export type GrantKind = "authorization_code" | "access_token" | "refresh_token" | "interaction" | "consent" | "replay" | "logout";

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
}

/** The stores a provider needs for state it creates at run time. */
export interface Store {
  readonly grants: GrantStore;
  readonly keys: KeyStore;
  /** Releases connections; the store is unusable afterwards. */
  close(): Promise<void>;
}

export function assertFilter(filter: GrantFilter): void {
  if (!filter.subject && !filter.clientId && !filter.sessionId && !filter.grantId && !filter.kind) {
    throw new Error("removeAll needs at least one filter field");
  }
}
