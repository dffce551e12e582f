import { randomBytes, timingSafeEqual } from "node:crypto";
import { ProtocolError, sha256, sha256Base64url } from "@tessera/protocol";
import { normalizeClient, type Client, type ClientMetadata, type ClientStore } from "../clients.ts";
import type { TesseraEvent } from "../events.ts";
import type { ClientRecordStore, GrantStore, StoredClient, StoredClientSecret } from "../stores/interfaces.ts";
import { findable, STORE_LIMITS } from "../stores/values.ts";
import { clientIdMetadataDocumentUrl } from "../clients/metadata-document.ts";
import { clientMetadataProblems, isClientMetadataField, type ClientMetadataProblem, type ClientRulesContext } from "../validation/client-metadata.ts";
import type { CachedClientStore } from "./client-cache.ts";
import { redirectOrigins } from "../http/cors.ts";

/** Who changed a client: an administrator (admin API, pages, embedder) or the client itself (RFC 7591/7592). */
export type ClientChangeOrigin = "admin" | "registration";

/** A client as the admin API and registration endpoints show it: its metadata (never a secret) and facts about it. */
export type ClientInfo = ClientMetadata & {
  /** Never set: secrets are shown once, when made. */
  client_secret?: undefined;
  /** `config`: read-only, from the configuration; `store`: created at run time. */
  source: "config" | "store";
  /** RFC 7591 §3.2.1, Unix seconds (stored clients). */
  client_id_issued_at?: number;
  /** The stored client's secrets, without their values (for rotation and removal). */
  secrets?: { id: string; created_at: number; expires_at: number | null }[];
};

/** A client just created, with the credentials shown this once. */
export interface CreatedClient {
  client: ClientInfo;
  /** The generated secret (confidential clients only). */
  clientSecret?: string;
  /** RFC 7592 registration access token (dynamically registered clients only). */
  registrationAccessToken?: string;
}

/** A page of {@link ClientRegistry.list}. */
export interface ClientPage {
  clients: ClientInfo[];
  next: string | null;
}

/** What the registry needs; built once by the provider. */
export interface ClientRegistryDeps {
  records: ClientRecordStore;
  grants: GrantStore;
  /** The read-only configured clients. */
  configured: ClientStore;
  configuredMetadata: readonly ClientMetadata[];
  /** The per-process cache of stored clients, told about every change made here. */
  cache: CachedClientStore;
  /** The rules' context for stored clients (scopes, algorithms, mTLS). */
  rules: Omit<ClientRulesContext, "hasSecret" | "allowClientSecretJwt" | "redirectUris">;
  emit: (event: TesseraEvent) => void;
  /** Milliseconds. */
  clock: () => number;
  /** Seconds the stored clients' redirect origins are reused (the client cache's TTL). */
  originsTtl: number;
  /**
   * True when Client ID Metadata Documents are enabled: a client_id the document lookup would resolve
   * (an https URL) is then refused for new stored clients, so one id never means two clients.
   */
  metadataDocumentIds?: boolean;
}

/** Most stored clients read for their redirect origins. */
const MAX_ORIGIN_SCAN = 10_000;

/** Fields a client may send back from a read (RFC 7592 §2.2) that are the server's, not metadata: ignored. */
const SERVER_FIELDS = ["client_id_issued_at", "client_secret_expires_at", "registration_access_token", "registration_client_uri", "source", "secrets"];

const CONFIDENTIAL = new Set(["client_secret_basic", "client_secret_post"]);

/** A problem list as one RFC 7591 §3.2.2 error: invalid_redirect_uri when any concerns redirect_uris. */
export function metadataError(problems: ClientMetadataProblem[]): ProtocolError {
  const redirect = problems.find((p) => p.code === "invalid_redirect_uri");
  const first = redirect ?? problems[0]!;
  const where = first.path.length ? `${first.path.join(".")}: ` : "";
  return new ProtocolError(first.code, `${where}${first.message}`);
}

const conflict = (description: string) => new ProtocolError("invalid_client_metadata", description, { status: 409 });
const changedMeanwhile = () => new ProtocolError("invalid_request", "the client changed while this request ran; read it again and retry", { status: 409 });
/** Shortest secret an administrator may choose (generated ones have 43 characters, 256 bits). */
const MIN_CHOSEN_SECRET = 32;
/** Most live secrets of one client: rotation beyond it is refused rather than dropping a live one. */
const MAX_LIVE_SECRETS = 10;
const readOnly = () => new ProtocolError("invalid_request", "clients from the configuration are read-only", { status: 409 });

function encodeCursor(phase: "config" | "store", after: string): string {
  return Buffer.from(JSON.stringify([phase, after])).toString("base64url");
}

function decodeCursor(cursor: string): { phase: "config" | "store"; after: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(value) && (value[0] === "config" || value[0] === "store") && typeof value[1] === "string" && findable(value[1], STORE_LIMITS.clientId)) {
      return { phase: value[0], after: value[1] };
    }
  } catch {
    // fall through
  }
  return undefined;
}

const hashOf = (secret: string) => sha256Base64url(secret);
const newSecret = () => randomBytes(32).toString("base64url");

/**
 * Clients at run time (IdentityServer's client configuration store with its admin operations): create,
 * read, update, delete, list and secret rotation over the {@link ClientRecordStore}, beside the read-only
 * configured clients. Every stored client passes the same validator as a configured one; secrets are
 * generated (32 random bytes) and kept as SHA-256 hashes only.
 */
export class ClientRegistry {
  constructor(private readonly deps: ClientRegistryDeps) {}

  private origins?: { value: Promise<ReadonlySet<string>>; expires: number };

  /**
   * The origins of every stored client's redirect URIs (CORS, the check-session iframe's frame-ancestors),
   * read from the store at most once per cache TTL (real time, like the client cache) and at once after a
   * change through this process; at most {@link MAX_ORIGIN_SCAN} clients are read.
   */
  redirectOrigins(): Promise<ReadonlySet<string>> {
    const now = Date.now();
    if (this.origins && this.origins.expires > now) return this.origins.value;
    const value = (async () => {
      const uris: string[] = [];
      let after: string | undefined;
      for (let read = 0; read < MAX_ORIGIN_SCAN; ) {
        const page = await this.deps.records.list({ after, count: 500 });
        for (const record of page) {
          const metadata = JSON.parse(record.metadata) as ClientMetadata;
          if (Array.isArray(metadata.redirect_uris)) uris.push(...metadata.redirect_uris);
        }
        read += page.length;
        if (page.length < 500) break;
        after = page[page.length - 1]!.clientId;
      }
      return redirectOrigins(uris) as ReadonlySet<string>;
    })();
    // A failed read is not kept: the next request tries again.
    value.catch(() => {
      if (this.origins?.value === value) this.origins = undefined;
    });
    this.origins = { value, expires: now + this.deps.originsTtl * 1000 };
    return value;
  }

  private now(): number {
    return Math.floor(this.deps.clock() / 1000);
  }

  /** The client as the protocol code sees it, from a stored record (undefined when the record no longer validates). */
  static toClient(record: StoredClient, signingAlgorithms?: readonly string[]): Client | undefined {
    try {
      return normalizeClient(JSON.parse(record.metadata) as ClientMetadata, { secrets: record.secrets, registered: Boolean(record.registrationTokenHash) }, signingAlgorithms);
    } catch {
      return undefined;
    }
  }

  private info(metadata: ClientMetadata, record?: StoredClient): ClientInfo {
    const { client_secret: _secret, ...rest } = metadata;
    if (!record) return { ...rest, source: "config" };
    return {
      ...rest,
      source: "store",
      client_id_issued_at: record.createdAt,
      secrets: record.secrets.map((s) => ({ id: s.id, created_at: s.createdAt, expires_at: s.expiresAt ?? null })),
    };
  }

  /** Checks and completes metadata for storage: RFC 7591 §2 defaults made explicit, unknown fields per policy. */
  private prepare(input: unknown, clientId: string, origin: ClientChangeOrigin): ClientMetadata {
    if (typeof input !== "object" || input === null || Array.isArray(input)) throw new ProtocolError("invalid_client_metadata", "the client metadata must be a JSON object");
    const given: Record<string, unknown> = { ...(input as Record<string, unknown>) };
    for (const field of SERVER_FIELDS) delete given[field];
    delete given.client_secret;
    const metadata: Record<string, unknown> = {
      ...given,
      client_id: clientId,
      token_endpoint_auth_method: given.token_endpoint_auth_method ?? "client_secret_basic",
      grant_types: given.grant_types ?? ["authorization_code"],
      response_types: given.response_types ?? ["code"],
    };
    const method = metadata.token_endpoint_auth_method;
    const context: ClientRulesContext = {
      ...this.deps.rules,
      hasSecret: typeof method === "string" && CONFIDENTIAL.has(method),
      allowClientSecretJwt: false,
      redirectUris: origin === "registration" ? "native-or-https" : "absolute",
      registration: origin === "registration",
    };
    if (origin === "registration") {
      // RFC 7591 §2: metadata the server does not understand is ignored, not refused (Tessera's own
      // policy fields are understood, and refused by the validator's registration allow-list).
      for (const key of Object.keys(metadata)) if (!isClientMetadataField(key)) delete metadata[key];
    }
    const problems = clientMetadataProblems(metadata, context);
    if (problems.length) throw metadataError(problems);
    return metadata as ClientMetadata;
  }

  private async stored(clientId: string): Promise<StoredClient | undefined> {
    if (!findable(clientId, STORE_LIMITS.clientId)) return undefined;
    return this.deps.records.get(clientId);
  }

  private async isConfigured(clientId: string): Promise<boolean> {
    return (await this.deps.configured.findClientById(clientId)) !== undefined;
  }

  /** Configured clients (by id), then stored ones (by id), a page at a time. */
  async list(query: { cursor?: string; count: number }): Promise<ClientPage> {
    const count = Math.max(1, Math.floor(query.count));
    const cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
    if (query.cursor && !cursor) throw new ProtocolError("invalid_request", "cursor is not one this server made");
    const page: ClientInfo[] = [];
    let storeAfter: string | undefined;
    if (!cursor || cursor.phase === "config") {
      const configured = [...this.deps.configuredMetadata].sort((a, b) => (a.client_id < b.client_id ? -1 : a.client_id > b.client_id ? 1 : 0));
      const rest = configured.filter((c) => !cursor || c.client_id > cursor.after);
      const shown = rest.slice(0, count);
      page.push(...shown.map((c) => this.info(c)));
      if (rest.length > count) return { clients: page, next: encodeCursor("config", shown[shown.length - 1]!.client_id) };
    } else storeAfter = cursor.after;
    const wanted = count - page.length;
    // One more than wanted tells whether another page follows; shadowed ids (a configured client wins) are skipped.
    const rows = wanted > 0 ? await this.deps.records.list({ after: storeAfter, count: wanted + 1 }) : await this.deps.records.list({ after: storeAfter, count: 1 });
    const shown = rows.slice(0, wanted);
    for (const record of shown) {
      if (await this.isConfigured(record.clientId)) continue;
      page.push(this.info(JSON.parse(record.metadata) as ClientMetadata, record));
    }
    const last = shown[shown.length - 1]?.clientId ?? storeAfter;
    const more = rows.length > shown.length;
    return { clients: page, next: more ? encodeCursor("store", last ?? "") : null };
  }

  /** One client, configured or stored. */
  async get(clientId: string): Promise<ClientInfo | undefined> {
    const configured = this.deps.configuredMetadata.find((c) => c.client_id === clientId);
    if (configured) return this.info(configured);
    const record = await this.stored(clientId);
    return record ? this.info(JSON.parse(record.metadata) as ClientMetadata, record) : undefined;
  }

  /**
   * Creates a stored client from RFC 7591 metadata. `client_id` is generated unless an administrator
   * names one; a secret is generated for client_secret_basic / client_secret_post clients (an administrator
   * may give it instead; it is hashed all the same), and an RFC 7592
   * registration access token for dynamically registered ones. A configured or stored client with that id: 409.
   */
  async create(input: unknown, origin: ClientChangeOrigin = "admin"): Promise<CreatedClient> {
    const body = typeof input === "object" && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
    const requested = origin === "admin" ? body.client_id : undefined;
    // An administrator may set the first secret (kept hashed all the same); registration always generates one.
    const chosen = origin === "admin" ? body.client_secret : undefined;
    if (chosen !== undefined && (typeof chosen !== "string" || chosen.length < MIN_CHOSEN_SECRET || chosen.length > 1024)) {
      throw new ProtocolError("invalid_client_metadata", `client_secret must be a string of ${MIN_CHOSEN_SECRET} to 1024 characters`);
    }
    const clientId = requested === undefined ? randomBytes(16).toString("base64url") : requested;
    if (typeof clientId !== "string") throw new ProtocolError("invalid_client_metadata", "client_id must be a string");
    if (this.deps.metadataDocumentIds && clientIdMetadataDocumentUrl(clientId)) {
      throw new ProtocolError("invalid_client_metadata", "client_id: an https URL names a Client ID Metadata Document client (clientIdMetadataDocuments is enabled)");
    }
    const metadata = this.prepare(input, clientId, origin);
    if (await this.isConfigured(clientId)) throw conflict(`client_id ${clientId} belongs to a configured client`);
    const now = this.now();
    const confidential = CONFIDENTIAL.has(metadata.token_endpoint_auth_method!);
    if (chosen !== undefined && !confidential) throw new ProtocolError("invalid_client_metadata", `a ${metadata.token_endpoint_auth_method} client has no client_secret`);
    const secret = confidential ? ((chosen as string | undefined) ?? newSecret()) : undefined;
    const registrationAccessToken = origin === "registration" ? newSecret() : undefined;
    const record: StoredClient = {
      clientId,
      metadata: JSON.stringify(metadata),
      secrets: secret ? [{ id: randomBytes(9).toString("base64url"), hash: hashOf(secret), createdAt: now }] : [],
      registrationTokenHash: registrationAccessToken ? hashOf(registrationAccessToken) : undefined,
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.deps.records.create(record))) throw conflict(`a client with client_id ${clientId} exists`);
    this.created(clientId, metadata.redirect_uris ?? []);
    this.deps.emit({ type: "client.created", clientId, via: origin });
    return { client: this.info(metadata, record), clientSecret: secret, registrationAccessToken };
  }

  /**
   * Replaces a stored client's metadata (RFC 7592 §2.2: fields left out take their defaults); its secrets
   * stay. A `client_secret` in the request must be one of its live secrets. Dynamically registered clients
   * get a new registration access token. Configured clients: 409. Undefined when there is no such client.
   */
  async update(clientId: string, input: unknown, origin: ClientChangeOrigin = "admin"): Promise<CreatedClient | undefined> {
    if (await this.isConfigured(clientId)) throw readOnly();
    const record = await this.stored(clientId);
    if (!record) return undefined;
    if (typeof input === "object" && input !== null && !Array.isArray(input)) {
      const body = input as Record<string, unknown>;
      if (body.client_id !== undefined && body.client_id !== clientId) throw new ProtocolError("invalid_request", "client_id does not match the client being updated");
      if (body.client_secret !== undefined && !(typeof body.client_secret === "string" && this.secretIsLive(record, body.client_secret))) {
        throw new ProtocolError("invalid_client_metadata", "client_secret does not match the client's secret");
      }
    }
    const metadata = this.prepare(input, clientId, origin);
    const confidential = CONFIDENTIAL.has(metadata.token_endpoint_auth_method!);
    let secret: string | undefined;
    let secrets = record.secrets;
    if (!confidential) secrets = [];
    else if (!secrets.length) {
      // Became confidential: it needs a secret, shown this once.
      secret = newSecret();
      secrets = [{ id: randomBytes(9).toString("base64url"), hash: hashOf(secret), createdAt: this.now() }];
    }
    const registrationAccessToken = record.registrationTokenHash && origin === "registration" ? newSecret() : undefined;
    const updated: StoredClient = {
      ...record,
      metadata: JSON.stringify(metadata),
      secrets,
      registrationTokenHash: registrationAccessToken ? hashOf(registrationAccessToken) : record.registrationTokenHash,
      updatedAt: this.now(),
    };
    if (!(await this.deps.records.update(updated, record))) {
      // Compare-and-set: another change came first (or the client is gone).
      if (await this.stored(clientId)) throw changedMeanwhile();
      return undefined;
    }
    this.changed(clientId);
    this.deps.emit({ type: "client.updated", clientId, via: origin });
    return { client: this.info(metadata, updated), clientSecret: secret, registrationAccessToken };
  }

  /** Deletes a stored client and revokes its tokens, codes and consents. Configured clients: 409. False when there is none. */
  async delete(clientId: string, origin: ClientChangeOrigin = "admin"): Promise<boolean> {
    if (await this.isConfigured(clientId)) throw readOnly();
    if (!findable(clientId, STORE_LIMITS.clientId)) return false;
    const removed = await this.deps.records.remove(clientId);
    this.changed(clientId);
    if (!removed) return false;
    // Refresh tokens, codes, consents and access-token records; self-contained JWTs die with the client lookup.
    await this.deps.grants.removeAll({ clientId });
    this.deps.emit({ type: "client.deleted", clientId, via: origin });
    return true;
  }

  /**
   * Adds a new secret to a confidential stored client and answers it once; the older secrets keep
   * working until removed, or for `oldSecretsExpireIn` seconds when given (0: at once).
   */
  async rotateSecret(clientId: string, options: { oldSecretsExpireIn?: number } = {}): Promise<{ clientSecret: string; secretId: string; client: ClientInfo } | undefined> {
    if (await this.isConfigured(clientId)) throw readOnly();
    const record = await this.stored(clientId);
    if (!record) return undefined;
    const metadata = JSON.parse(record.metadata) as ClientMetadata;
    if (!CONFIDENTIAL.has(metadata.token_endpoint_auth_method ?? "")) throw new ProtocolError("invalid_request", "only client_secret_basic and client_secret_post clients have secrets");
    const now = this.now();
    const expireIn = options.oldSecretsExpireIn;
    if (expireIn !== undefined && !(Number.isSafeInteger(expireIn) && expireIn >= 0)) throw new ProtocolError("invalid_request", "oldSecretsExpireIn must be a whole number of seconds");
    const older = record.secrets.map((s) => (expireIn === undefined ? s : { ...s, expiresAt: Math.min(s.expiresAt ?? Infinity, now + expireIn) }));
    const clientSecret = newSecret();
    const secretId = randomBytes(9).toString("base64url");
    // Expired secrets are dropped; a live one never is: with 10 live secrets, rotation is refused (remove one first).
    const live = older.filter((s) => s.expiresAt === undefined || s.expiresAt > now);
    if (live.length >= MAX_LIVE_SECRETS) throw new ProtocolError("invalid_request", `the client has ${MAX_LIVE_SECRETS} live secrets; remove or expire one first`, { status: 409 });
    const secrets: StoredClientSecret[] = [...live, { id: secretId, hash: hashOf(clientSecret), createdAt: now }];
    const updated = { ...record, secrets, updatedAt: now };
    if (!(await this.deps.records.update(updated, record))) {
      // Compare-and-set: another change came first (or the client is gone).
      if (await this.stored(clientId)) throw changedMeanwhile();
      return undefined;
    }
    this.changed(clientId);
    this.deps.emit({ type: "client.secret_rotated", clientId, via: "admin" });
    return { clientSecret, secretId, client: this.info(metadata, updated) };
  }

  /** Removes one secret; the last live (unexpired) secret of a confidential client cannot be removed (rotate first). */
  async removeSecret(clientId: string, secretId: string): Promise<"removed" | "not_found" | "last_secret"> {
    if (await this.isConfigured(clientId)) throw readOnly();
    const record = await this.stored(clientId);
    if (!record || !record.secrets.some((s) => s.id === secretId)) return "not_found";
    const secrets = record.secrets.filter((s) => s.id !== secretId);
    const now = this.now();
    if (!secrets.some((s) => s.expiresAt === undefined || s.expiresAt > now)) return "last_secret";
    if (!(await this.deps.records.update({ ...record, secrets, updatedAt: now }, record))) {
      if (await this.stored(clientId)) throw changedMeanwhile();
      return "not_found";
    }
    this.changed(clientId);
    this.deps.emit({ type: "client.updated", clientId, via: "admin" });
    return "removed";
  }

  /** RFC 7592 §2: the stored client whose registration access token this is (constant-time), else undefined. */
  async authenticateRegistration(clientId: string, token: string): Promise<ClientInfo | undefined> {
    const record = await this.stored(clientId);
    if (!record?.registrationTokenHash || (await this.isConfigured(clientId))) return undefined;
    const expected = Buffer.from(record.registrationTokenHash, "base64url");
    const presented = sha256(token);
    if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) return undefined;
    return this.info(JSON.parse(record.metadata) as ClientMetadata, record);
  }

  /**
   * A new client: its origins join the cached stored origins, so a registration does not force the next
   * request with an unknown Origin to read every stored client again.
   */
  private created(clientId: string, redirectUris: readonly string[]): void {
    this.deps.cache.invalidate(clientId);
    const cached = this.origins;
    if (!cached) return;
    const value = cached.value.then((origins) => new Set([...origins, ...redirectOrigins(redirectUris)]) as ReadonlySet<string>);
    value.catch(() => {
      if (this.origins?.value === value) this.origins = undefined;
    });
    this.origins = { value, expires: cached.expires };
  }

  /** Forgets what this process cached about the client (and the stored origins). */
  private changed(clientId: string): void {
    this.deps.cache.invalidate(clientId);
    this.origins = undefined;
  }

  private secretIsLive(record: StoredClient, secret: string): boolean {
    const presented = sha256(secret);
    const now = this.now();
    let live = false;
    for (const s of record.secrets) {
      const stored = Buffer.from(s.hash, "base64url");
      const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
      live = (equal && (s.expiresAt === undefined || s.expiresAt > now)) || live;
    }
    return live;
  }
}
