import type { JWK } from "jose";
import { normalizeClient, type Client, type ClientLookup, type ClientMetadata, type ClientStore } from "../clients.ts";
import { addressBucket } from "../security/pending-requests.ts";
import { STORE_LIMITS } from "../stores/values.ts";
import type { Logger } from "../options.ts";

/** Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), grouped with their defaults. */
export interface ClientIdMetadataDocumentOptions {
  /** Resolve https `client_id` URLs to their documents (default false). */
  enabled: boolean;
  /** Seconds a fetch may take, at most the outbound timeout (default 5). */
  timeout: number;
  /** Largest document read, in bytes (default 5120, as the draft suggests). */
  maxResponseBytes: number;
  /** Seconds a document is kept at least, whatever its Cache-Control says (default 60). */
  minCacheTtl: number;
  /** Seconds a document is kept at most (default 86400). */
  maxCacheTtl: number;
  /** Seconds a failed fetch or a refused document is remembered before the next try (default 30). */
  failureCacheTtl: number;
  /**
   * Documents kept in memory per process, least recently used dropped first (default 1000); failures are
   * kept apart, up to the same number, so they never push a good document out.
   */
  maxCacheEntries: number;
  /** Fetches of different URLs at once, per process; lookups past it are refused (default 64): anyone can name a URL. */
  maxConcurrentFetches: number;
  /** Fetches from one host (host and port of the URL) at once, per process (default 2). */
  maxConcurrentFetchesPerHost: number;
  /**
   * Lookups per minute from one client address (an IPv6 address counted by its /64) that the cache cannot
   * answer (each may fetch), per process (default 30); past it such lookups are refused (the client is
   * unknown) until the budget refills.
   */
  maxLookupsPerAddress: number;
  /**
   * The scopes a metadata-document client may have: its document's `scope` is intersected with these
   * (default the identity scopes `openid profile email offline_access`). API scopes may be added; Tessera's
   * own `tessera.*` scopes (the admin API) are never granted to such a client, whatever is configured.
   */
  allowedScopes: string[];
}

export const CIMD_DEFAULTS: ClientIdMetadataDocumentOptions = {
  enabled: false,
  timeout: 5,
  maxResponseBytes: 5120,
  minCacheTtl: 60,
  maxCacheTtl: 86_400,
  failureCacheTtl: 30,
  maxCacheEntries: 1000,
  maxConcurrentFetches: 64,
  maxConcurrentFetchesPerHost: 2,
  maxLookupsPerAddress: 30,
  allowedScopes: ["openid", "profile", "email", "offline_access"],
};

/** Scopes of Tessera itself (the admin API): never granted to a client nobody registered. */
export function reservedScope(scope: string): boolean {
  return scope.startsWith("tessera.");
}

/** Seconds a document without Cache-Control max-age is kept (then bounded by min/max). */
const DEFAULT_TTL = 300;

/** Grant and response types a metadata-document client may use: the code flow, nothing else. */
const GRANT_TYPES = ["authorization_code", "refresh_token"];
/** draft §4.1: no shared secret can exist, so only `none` or asymmetric `private_key_jwt`. */
const AUTH_METHODS = ["none", "private_key_jwt"];
const STRING_FIELDS = ["client_name", "client_uri", "logo_uri", "scope", "jwks_uri", "token_endpoint_auth_method", "token_endpoint_auth_signing_alg", "id_token_signed_response_alg"] as const;
const STRING_LIST_FIELDS = ["redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types"] as const;

/**
 * draft §3: the client_id URL is https, has a path, no fragment, no userinfo, no dot segments. It must
 * also be in its canonical form (as the WHATWG URL parser writes it) so that the string fetched, stored
 * and compared is one and the same. Undefined when `clientId` is not such a URL.
 */
export function clientIdMetadataDocumentUrl(clientId: string): URL | undefined {
  if (!clientId.startsWith("https://") || clientId.length > STORE_LIMITS.clientId || clientId.includes("#")) return undefined;
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return undefined;
  }
  if (url.href !== clientId || url.username || url.password || url.pathname === "/") return undefined;
  // The parser removes dot segments, so the canonical check catches them; this says why.
  if (url.pathname.split("/").some((segment) => segment === "." || segment === "..")) return undefined;
  return url;
}

/** A document that cannot describe a client, with the reason. */
class DocumentRefused extends Error {
  override readonly name = "DocumentRefused";
}

/** What the decorator needs from the provider. */
export interface MetadataDocumentDeps {
  options: ClientIdMetadataDocumentOptions;
  /** The outbound fetch (SSRF rules, size and time caps, no redirects). */
  fetch: (url: string, init?: RequestInit) => Promise<Response>;
  /** Milliseconds. */
  clock: () => number;
  logger: Logger;
  /** The provider's signing algorithms (for `id_token_signed_response_alg`). */
  algorithms: readonly string[];
}

/** Client addresses whose lookup budgets are kept (the least recently used is dropped past it). */
const MAX_TRACKED_ADDRESSES = 10_000;

/**
 * A token bucket per client address: `perMinute` lookups, refilled continuously. In memory, per process:
 * it bounds the fetches one address can cause here, which is what it protects.
 */
class LookupBudget {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly perMinute: number,
    private readonly clock: () => number,
  ) {}

  /** Takes one lookup from the address's budget; false when it is spent. */
  take(address: string): boolean {
    const now = this.clock();
    const bucket = this.buckets.get(address) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000);
    bucket.at = now;
    this.buckets.delete(address);
    this.buckets.set(address, bucket);
    while (this.buckets.size > MAX_TRACKED_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

/** A bounded map, least recently used dropped first. */
class LruCache<T> {
  private readonly entries = new Map<string, { value: T; expires: number }>();
  constructor(private readonly max: number) {}

  /** The live value (marked most recently used), or undefined. */
  get(key: string, now: number): { value: T } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expires <= now) return undefined;
    this.entries.set(key, entry);
    return entry;
  }

  set(key: string, value: T, expires: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

/**
 * A client store that answers https `client_id` URLs from their metadata documents (when enabled), behind
 * the clients `inner` knows: a registered client of the same id always wins. Documents are cached in a
 * bounded LRU map, failures in another (so junk URLs never evict good documents); concurrent lookups of
 * one URL share one fetch. Anyone can name a URL, so fetches are bounded per process, per host and per
 * client address ({@link ClientLookup.clientAddress}, when the caller knows it).
 */
export function clientIdMetadataDocumentStore(inner: ClientStore, deps: MetadataDocumentDeps): ClientStore {
  const { options } = deps;
  if (!options.enabled) return inner;
  const documents = new LruCache<Client>(options.maxCacheEntries);
  const failures = new LruCache<true>(options.maxCacheEntries);
  const inFlight = new Map<string, Promise<Client | undefined>>();
  const perHost = new Map<string, number>();
  const budget = new LookupBudget(options.maxLookupsPerAddress, deps.clock);
  const refuse = (clientId: string, reason: string) => {
    deps.logger.warn({ clientId, reason }, "client metadata document refused");
    return undefined;
  };
  const resolve = async (url: URL): Promise<Client | undefined> => {
    try {
      const { metadata, ttl } = await fetchDocument(url, deps);
      const client = documentClient(url, metadata, deps.algorithms, options.allowedScopes);
      failures.delete(url.href);
      documents.set(url.href, client, deps.clock() + ttl * 1000);
      return client;
    } catch (error) {
      refuse(url.href, refusalReason(error));
      documents.delete(url.href);
      failures.set(url.href, true, deps.clock() + options.failureCacheTtl * 1000);
      return undefined;
    }
  };
  return {
    async findClientById(clientId, lookup) {
      const known = await inner.findClientById(clientId, lookup);
      if (known) return known;
      const url = clientIdMetadataDocumentUrl(clientId);
      if (!url) return undefined;
      const now = deps.clock();
      const cached = documents.get(clientId, now);
      if (cached) return cached.value;
      if (failures.get(clientId, now)) return undefined;
      const pending = inFlight.get(clientId);
      if (pending) return pending;
      if (lookup?.clientAddress !== undefined && !budget.take(addressBucket(lookup.clientAddress))) return refuse(clientId, "too many document lookups from this client address");
      if (inFlight.size >= options.maxConcurrentFetches) return refuse(clientId, "too many document fetches in flight");
      const host = url.host;
      const fromHost = perHost.get(host) ?? 0;
      if (fromHost >= options.maxConcurrentFetchesPerHost) return refuse(clientId, "too many document fetches from this host in flight");
      perHost.set(host, fromHost + 1);
      const started = resolve(url).finally(() => {
        inFlight.delete(clientId);
        const left = (perHost.get(host) ?? 1) - 1;
        if (left > 0) perHost.set(host, left);
        else perHost.delete(host);
      });
      inFlight.set(clientId, started);
      return started;
    },
  };
}

/** draft §4: GET the URL; a 200 `application/json` object within the size cap, kept as Cache-Control says (bounded). */
async function fetchDocument(url: URL, deps: MetadataDocumentDeps): Promise<{ metadata: Record<string, unknown>; ttl: number }> {
  const response = await deps.fetch(url.href, { headers: { accept: "application/json" } });
  if (response.status !== 200) throw new DocumentRefused(`the document URL answered HTTP ${response.status}`);
  const mediaType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType !== "application/json") throw new DocumentRefused("the document is not application/json");
  let metadata: unknown;
  try {
    metadata = JSON.parse(await response.text());
  } catch {
    throw new DocumentRefused("the document is not valid JSON");
  }
  if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) throw new DocumentRefused("the document is not a JSON object");
  return { metadata: metadata as Record<string, unknown>, ttl: cacheSeconds(response.headers.get("cache-control"), deps.options) };
}

/** Cache-Control max-age (no-store and no-cache count as 0) within [minCacheTtl, maxCacheTtl]. */
function cacheSeconds(header: string | null, options: ClientIdMetadataDocumentOptions): number {
  let seconds = DEFAULT_TTL;
  for (const directive of (header ?? "").toLowerCase().split(",").map((d) => d.trim())) {
    if (directive === "no-store" || directive === "no-cache") {
      seconds = 0;
      break;
    }
    const maxAge = /^max-age=(\d{1,10})$/.exec(directive);
    if (maxAge) seconds = Number(maxAge[1]);
  }
  return Math.min(options.maxCacheTtl, Math.max(options.minCacheTtl, seconds));
}

/**
 * draft §4.1: `client_id` equal to the URL, no `client_secret`, a public client (`none`, or
 * `private_key_jwt` with public keys), exactly the redirect URIs listed. Only standard metadata is read:
 * Tessera's own extensions (lifetimes, `require_pkce`) are never taken from a document; PKCE and
 * consent are always required, since nobody vetted the client.
 */
function documentClient(url: URL, document: Record<string, unknown>, algorithms: readonly string[], allowedScopes: readonly string[]): Client {
  if (document.client_id !== url.href) throw new DocumentRefused("the document's client_id differs from its URL");
  if ("client_secret" in document || "client_secret_expires_at" in document) throw new DocumentRefused("the document holds a client_secret");
  for (const field of STRING_FIELDS) {
    if (document[field] !== undefined && typeof document[field] !== "string") throw new DocumentRefused(`${field} is not a string`);
  }
  for (const field of STRING_LIST_FIELDS) {
    const value = document[field];
    if (value !== undefined && !(Array.isArray(value) && value.every((v) => typeof v === "string"))) throw new DocumentRefused(`${field} is not a list of strings`);
  }
  const doc = document as Partial<Record<(typeof STRING_FIELDS)[number], string>> & Partial<Record<(typeof STRING_LIST_FIELDS)[number], string[]>> & { jwks?: unknown; dpop_bound_access_tokens?: unknown };
  const method = doc.token_endpoint_auth_method ?? "none";
  if (!AUTH_METHODS.includes(method)) throw new DocumentRefused(`token_endpoint_auth_method ${method} is not allowed for a metadata document client`);
  if (!doc.redirect_uris?.length) throw new DocumentRefused("the document lists no redirect_uris");
  for (const uri of [...doc.redirect_uris, ...(doc.post_logout_redirect_uris ?? [])]) {
    if (!isAbsoluteUrl(uri)) throw new DocumentRefused("a redirect URI is not an absolute URL without a fragment");
  }
  if (doc.grant_types?.some((g) => !GRANT_TYPES.includes(g))) throw new DocumentRefused("grant_types may hold only authorization_code and refresh_token");
  if (doc.response_types?.some((r) => r !== "code")) throw new DocumentRefused("response_types may hold only code");
  if (doc.jwks_uri !== undefined && !doc.jwks_uri.startsWith("https://")) throw new DocumentRefused("jwks_uri is not an https URL");
  const jwks = doc.jwks === undefined ? undefined : publicJwks(doc.jwks);
  if (method === "none" && (jwks || doc.jwks_uri)) throw new DocumentRefused("keys are given, but token_endpoint_auth_method is none");
  if (doc.id_token_signed_response_alg !== undefined && !algorithms.includes(doc.id_token_signed_response_alg)) {
    throw new DocumentRefused(`id_token_signed_response_alg ${doc.id_token_signed_response_alg} is not offered`);
  }
  if (doc.dpop_bound_access_tokens !== undefined && typeof doc.dpop_bound_access_tokens !== "boolean") throw new DocumentRefused("dpop_bound_access_tokens is not a boolean");
  const metadata: ClientMetadata = {
    client_id: url.href,
    client_name: doc.client_name === undefined ? undefined : displayName(doc.client_name),
    client_uri: doc.client_uri,
    logo_uri: doc.logo_uri,
    redirect_uris: doc.redirect_uris,
    post_logout_redirect_uris: doc.post_logout_redirect_uris,
    grant_types: doc.grant_types,
    response_types: doc.response_types,
    scope: doc.scope,
    token_endpoint_auth_method: method,
    token_endpoint_auth_signing_alg: doc.token_endpoint_auth_signing_alg,
    jwks,
    jwks_uri: doc.jwks_uri,
    id_token_signed_response_alg: doc.id_token_signed_response_alg,
    dpop_bound_access_tokens: doc.dpop_bound_access_tokens,
    require_pkce: true,
    require_consent: true,
  };
  for (const key of Object.keys(metadata) as (keyof ClientMetadata)[]) if (metadata[key] === undefined) delete metadata[key];
  let client: Client;
  try {
    client = normalizeClient(metadata);
  } catch (error) {
    throw new DocumentRefused((error as Error).message);
  }
  // Anyone can publish a document: it may only narrow the scopes the operator allows such clients.
  const scopes = client.scopes.filter((scope) => allowedScopes.includes(scope) && !reservedScope(scope));
  return { ...client, scopes, metadataDocumentHost: url.host + url.pathname };
}

/** Longest client_name shown for a metadata-document client, in code points. */
export const MAX_DOCUMENT_CLIENT_NAME = 64;

/**
 * A document's client_name as it may be shown: without C0/C1 controls and bidirectional formatting
 * characters (U+061C, U+200E/F, U+202A-202E, U+2066-2069), which could make it read as another name or
 * host, whitespace collapsed, at most {@link MAX_DOCUMENT_CLIENT_NAME} code points. Undefined when nothing is left.
 */
export function displayName(name: string): string | undefined {
  const cleaned = name.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").replace(/\s+/g, " ").trim();
  const capped = [...cleaned].slice(0, MAX_DOCUMENT_CLIENT_NAME).join("").trim();
  return capped || undefined;
}

/** A JWK Set of public asymmetric keys only (no `oct`, no private members). */
function publicJwks(value: unknown): { keys: JWK[] } {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new DocumentRefused("jwks is not a JWK Set");
  for (const key of keys) {
    if (!key || typeof key !== "object" || !["RSA", "EC", "OKP"].includes((key as JWK).kty ?? "")) throw new DocumentRefused("jwks may hold only RSA, EC or OKP public keys");
    if (["d", "p", "q", "dp", "dq", "qi", "k"].some((member) => member in key)) throw new DocumentRefused("jwks holds private key material");
  }
  return { keys: keys as JWK[] };
}

function isAbsoluteUrl(value: string): boolean {
  try {
    return !new URL(value).hash && !value.includes("#");
  } catch {
    return false;
  }
}

/** What the log says about a failure: the refusal, or why the fetch failed (undici wraps the cause). */
function refusalReason(error: unknown): string {
  const failure = error as Error & { cause?: Error & { code?: unknown } };
  if (failure instanceof DocumentRefused || failure.name === "OutboundRefused") return failure.message;
  if (failure.cause?.name === "OutboundRefused") return failure.cause.message;
  const code = typeof failure.cause?.code === "string" ? failure.cause.code : failure.name;
  return `the document could not be fetched (${code})`;
}
