import * as oauth from "oauth4webapi";
import { discovery, requestOptions } from "./authorization-server.ts";
import { SingleFlight } from "./cache.ts";
import { oauthErrorOf, TokenManagementError } from "./errors.ts";
import { createResourceFetch } from "./resource-fetch.ts";

/** A user's tokens, as the app keeps them (usually in its session). */
export interface UserTokens {
  accessToken: string;
  tokenType: "Bearer" | "DPoP";
  /** Unix milliseconds. */
  expiresAt: number;
  refreshToken?: string;
}

/** Where the app keeps each user's tokens, by a key of its choosing (its session id). */
export interface UserTokenStore {
  get(userKey: string): Promise<UserTokens | undefined> | UserTokens | undefined;
  set(userKey: string, tokens: UserTokens): Promise<void> | void;
  delete(userKey: string): Promise<void> | void;
}

/** The parts of a token response the manager keeps. */
export interface TokenResponseLike {
  access_token: string;
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
}

/** Options of {@link createUserTokenManager}. */
export interface UserTokenManagerOptions {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  privateKey?: CryptoKey | { key: CryptoKey; kid?: string };
  store: UserTokenStore;
  /** The DPoP key pair the user's tokens are bound to (the one used at sign-in). */
  dpop?: CryptoKeyPair;
  /** Renew this many seconds before expiry (default 30). */
  renewBefore?: number;
  clock?: () => number;
  fetch?: typeof fetch;
}

/** Token management for a server-side web app's signed-in users. */
export interface UserTokenManager {
  /** Keeps the tokens of a token response (after sign-in) for the user. */
  save(userKey: string, response: TokenResponseLike): Promise<void>;
  /** A valid access token, refreshed first when close to expiry; one refresh at a time per user. */
  getAccessToken(userKey: string): Promise<string>;
  /** A fetch that sends the user's token (refreshing and retrying once on a 401). */
  fetchFor(userKey: string): typeof fetch;
  /** Revokes the user's refresh token and forgets the tokens (at sign-out). */
  revoke(userKey: string): Promise<void>;
}

/** Creates the user token manager. */
export function createUserTokenManager(options: UserTokenManagerOptions): UserTokenManager {
  const issuer = new URL(options.issuer);
  const clock = options.clock ?? Date.now;
  const renewBefore = (options.renewBefore ?? 30) * 1000;
  const http = { fetch: options.fetch };
  const authorizationServer = discovery(issuer, http);
  const client: oauth.Client = { client_id: options.clientId };
  const clientAuth: oauth.ClientAuth = options.clientSecret
    ? oauth.ClientSecretBasic(options.clientSecret)
    : options.privateKey
      ? oauth.PrivateKeyJwt("key" in options.privateKey ? options.privateKey : { key: options.privateKey })
      : oauth.None();
  const dpop = options.dpop ? oauth.DPoP(client, options.dpop) : undefined;
  const refreshes = new SingleFlight<UserTokens>();

  const toTokens = (response: TokenResponseLike, previousRefresh?: string): UserTokens => ({
    accessToken: response.access_token,
    tokenType: response.token_type.toLowerCase() === "dpop" ? "DPoP" : "Bearer",
    expiresAt: clock() + (response.expires_in ?? 300) * 1000,
    refreshToken: response.refresh_token ?? previousRefresh,
  });

  const refresh = (userKey: string) =>
    refreshes.run(userKey, async () => {
      const current = await options.store.get(userKey);
      if (!current) throw new TokenManagementError("not_signed_in", "no tokens are stored for this user");
      if (!current.refreshToken) throw new TokenManagementError("no_refresh_token", "the access token expired and there is no refresh token");
      const as = await authorizationServer();
      const once = async () => {
        const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, current.refreshToken!, { ...requestOptions(issuer, http), ...(dpop ? { DPoP: dpop } : {}) });
        return oauth.processRefreshTokenResponse(as, client, response);
      };
      try {
        let result: oauth.TokenEndpointResponse;
        try {
          result = await once();
        } catch (error) {
          if (dpop && oauth.isDPoPNonceError(error)) result = await once();
          else throw error;
        }
        const tokens = toTokens(result, current.refreshToken);
        await options.store.set(userKey, tokens);
        return tokens;
      } catch (error) {
        const code = await oauthErrorOf(error);
        // A dead refresh token (revoked, rotated elsewhere, session ended): the user must sign in again.
        if (code === "invalid_grant") await options.store.delete(userKey);
        throw new TokenManagementError("refresh_failed", `refreshing the user's token failed${code ? `: ${code}` : ""}`, code, { cause: error });
      }
    });

  const current = async (userKey: string, forceRenew: boolean): Promise<UserTokens> => {
    const tokens = await options.store.get(userKey);
    if (!tokens) throw new TokenManagementError("not_signed_in", "no tokens are stored for this user");
    if (!forceRenew && tokens.expiresAt - renewBefore > clock()) return tokens;
    return refresh(userKey);
  };

  return {
    async save(userKey, response) {
      await options.store.set(userKey, toTokens(response));
    },
    getAccessToken: async (userKey) => (await current(userKey, false)).accessToken,
    fetchFor: (userKey) =>
      createResourceFetch({
        token: (forceRenew) => current(userKey, forceRenew),
        dpop,
        fetch: options.fetch,
      }),
    async revoke(userKey) {
      const tokens = await options.store.get(userKey);
      await options.store.delete(userKey);
      if (!tokens?.refreshToken) return;
      const as = await authorizationServer();
      if (!as.revocation_endpoint) return;
      const response = await oauth.revocationRequest(as, client, clientAuth, tokens.refreshToken, { ...requestOptions(issuer, http), additionalParameters: { token_type_hint: "refresh_token" } });
      await oauth.processRevocationResponse(response);
    },
  };
}
