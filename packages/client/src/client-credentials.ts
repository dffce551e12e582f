import { createHash } from "node:crypto";
import * as oauth from "oauth4webapi";
import { Agent, fetch as undiciFetch } from "undici";
import { discovery, requestOptions, withMtlsAliases } from "./authorization-server.ts";
import { createMemoryTokenCache, SingleFlight, type CachedToken, type TokenCache } from "./cache.ts";
import { oauthErrorOf, TokenManagementError } from "./errors.ts";
import { createResourceFetch } from "./resource-fetch.ts";

/** Options of {@link createClientCredentialsFetch} (contract §7). */
export interface ClientCredentialsOptions {
  issuer: string;
  clientId: string;
  /** client_secret_basic. */
  clientSecret?: string;
  /** private_key_jwt: the client's private key (its public key is registered in `jwks`). */
  privateKey?: CryptoKey | { key: CryptoKey; kid?: string };
  scope?: string;
  /** RFC 8707 resource indicator(s). */
  resource?: string | string[];
  /** Get DPoP-bound tokens and send proofs (RFC 9449); the key pair is kept per client. */
  dpop?: boolean | CryptoKeyPair;
  /** Mutual TLS (RFC 8705): client certificate and key (PEM). Without a secret or key, tls_client_auth is used. */
  tls?: { cert: string; key: string; ca?: string };
  /** Where tokens are cached (default: memory). */
  cache?: TokenCache;
  /** Renew this many seconds before expiry (default 30). */
  renewBefore?: number;
  /** Milliseconds clock, for tests. */
  clock?: () => number;
  /** Underlying fetch (default: global fetch, or an mTLS-capable one with `tls`). */
  fetch?: typeof fetch;
}

/** A fetch that attaches (and manages) a client-credentials access token. */
export type ClientCredentialsFetch = typeof fetch & {
  /** The current access token (fetched or renewed as needed). */
  getToken(): Promise<string>;
  /** Forgets the cached token (the next call fetches a new one). */
  invalidate(): Promise<void>;
};

const keyPairs = new Map<string, Promise<CryptoKeyPair>>();

/** The DPoP key pair of a client, created once per process (per issuer and client). */
function dpopKeyPair(cacheKey: string): Promise<CryptoKeyPair> {
  let pair = keyPairs.get(cacheKey);
  if (!pair) {
    pair = oauth.generateKeyPair("ES256").catch((error: unknown) => {
      keyPairs.delete(cacheKey); // not kept: the next call makes a new one
      throw error;
    });
    keyPairs.set(cacheKey, pair);
  }
  return pair;
}

/** RFC 7638 JWK thumbprint of a public key (EC, RSA or OKP). */
async function jwkThumbprint(publicKey: CryptoKey): Promise<string> {
  const jwk = await crypto.subtle.exportKey("jwk", publicKey);
  const members = jwk.kty === "EC" ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : jwk.kty === "RSA" ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}

/** An mTLS-capable fetch (undici Agent with the client certificate). */
export function mtlsFetch(tls: { cert: string; key: string; ca?: string }): typeof fetch {
  const dispatcher = new Agent({ connect: { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) } });
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) => undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}

/**
 * Creates a fetch that gets a client-credentials token on first need, caches it per client, scope,
 * resource and DPoP key until shortly before it expires (one token request in flight per key, however many callers
 * wait), attaches it (with a DPoP proof when `dpop`), answers DPoP nonce challenges from the token
 * endpoint and the API, and retries once with a new token on a 401.
 */
export function createClientCredentialsFetch(options: ClientCredentialsOptions): ClientCredentialsFetch {
  const issuer = new URL(options.issuer);
  const clock = options.clock ?? Date.now;
  const cache = options.cache ?? createMemoryTokenCache();
  const renewBefore = (options.renewBefore ?? 30) * 1000;
  const baseFetch = options.fetch ?? (options.tls ? mtlsFetch(options.tls) : undefined);
  const http = { fetch: baseFetch };
  const authorizationServer = discovery(issuer, http);
  const resources = options.resource === undefined ? [] : Array.isArray(options.resource) ? options.resource : [options.resource];
  // The DPoP key is part of the key: a token bound to one key is useless (and refused) with another.
  // Worked out once; a failure is not kept, so the next call tries again.
  let cacheKeyOnce: Promise<string> | undefined;
  const cacheKey = () =>
    (cacheKeyOnce ??= (async () => {
      const pair = await dpopKeys();
      return JSON.stringify([options.issuer, options.clientId, options.scope ?? "", resources, pair ? await jwkThumbprint(pair.publicKey) : null]);
    })().catch((error: unknown) => {
      cacheKeyOnce = undefined;
      throw error;
    }));
  const client: oauth.Client = { client_id: options.clientId };
  const clientAuth: oauth.ClientAuth = options.clientSecret
    ? oauth.ClientSecretBasic(options.clientSecret)
    : options.privateKey
      ? oauth.PrivateKeyJwt("key" in options.privateKey ? options.privateKey : { key: options.privateKey })
      : options.tls
        ? oauth.TlsClientAuth()
        : oauth.None();
  const flights = new SingleFlight<CachedToken>();
  let dpop: oauth.DPoPHandle | undefined;
  const dpopKeys = async () => (!options.dpop ? undefined : options.dpop === true ? dpopKeyPair(`${options.issuer} ${options.clientId}`) : options.dpop);
  const dpopHandle = async () => {
    const pair = await dpopKeys();
    if (!pair) return undefined;
    dpop ??= oauth.DPoP(client, pair);
    return dpop;
  };

  const requestToken = async (): Promise<CachedToken> => {
    const as = withMtlsAliases(await authorizationServer(), !!options.tls);
    const parameters = new URLSearchParams();
    if (options.scope) parameters.set("scope", options.scope);
    for (const resource of resources) parameters.append("resource", resource);
    const DPoP = await dpopHandle();
    const once = async () => {
      const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, parameters, { ...requestOptions(issuer, http), ...(DPoP ? { DPoP } : {}) });
      return oauth.processClientCredentialsResponse(as, client, response);
    };
    let result: oauth.TokenEndpointResponse;
    try {
      try {
        result = await once();
      } catch (error) {
        // RFC 9449 §8: the server wants a nonce; the handle now has it, so one retry.
        if (DPoP && oauth.isDPoPNonceError(error)) result = await once();
        else throw error;
      }
    } catch (error) {
      const code = await oauthErrorOf(error);
      throw new TokenManagementError("token_request_failed", `the token request for client ${options.clientId} failed${code ? `: ${code}` : ""}`, code, { cause: error });
    }
    const token: CachedToken = {
      accessToken: result.access_token,
      tokenType: result.token_type.toLowerCase() === "dpop" ? "DPoP" : "Bearer",
      expiresAt: clock() + (result.expires_in ?? 300) * 1000,
      scope: result.scope,
    };
    await cache.set(await cacheKey(), token);
    return token;
  };

  const token = async (forceRenew: boolean): Promise<CachedToken> => {
    const key = await cacheKey();
    if (!forceRenew) {
      const cached = await cache.get(key);
      if (cached && cached.expiresAt - renewBefore > clock()) return cached;
    } else {
      await cache.delete(key);
    }
    return flights.run(key, requestToken);
  };

  const resourceFetch = createResourceFetch({
    token: async (forceRenew) => token(forceRenew),
    get dpop() {
      return dpop;
    },
    fetch: baseFetch,
  });
  const wrapped = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    await dpopHandle();
    return resourceFetch(input, init);
  }) as ClientCredentialsFetch;
  wrapped.getToken = async () => (await token(false)).accessToken;
  wrapped.invalidate = async () => {
    await cache.delete(await cacheKey());
  };
  return wrapped;
}
