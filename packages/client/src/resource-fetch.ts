import * as oauth from "oauth4webapi";

/** What the fetch wrappers need: a token (fresh or forced new), and the DPoP handle for proofs. */
export interface TokenSource {
  token(forceRenew: boolean): Promise<{ accessToken: string; tokenType: "Bearer" | "DPoP" }>;
  dpop?: oauth.DPoPHandle;
  fetch?: typeof fetch;
}

/**
 * A fetch-compatible function that sends the token (with a DPoP proof when DPoP is on), follows one DPoP
 * nonce challenge from the API, and on a 401 retries once with a new token.
 */
export function createResourceFetch(source: TokenSource): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    // The body is read once so a retry can send it again.
    const body = request.body ? await request.arrayBuffer() : undefined;
    const send = async (forceRenew: boolean) => {
      const { accessToken, tokenType } = await source.token(forceRenew);
      const headers = new Headers(request.headers);
      headers.delete("authorization");
      return oauth.protectedResourceRequest(accessToken, request.method, new URL(request.url), headers, body, {
        ...(tokenType === "DPoP" && source.dpop ? { DPoP: source.dpop } : {}),
        ...(source.fetch ? { [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, oauth.ProtectedResourceRequestBody>) => source.fetch!(url, init as RequestInit) } : {}),
        [oauth.allowInsecureRequests]: new URL(request.url).protocol === "http:",
        signal: request.signal,
      });
    };
    const attempt = async (forceRenew: boolean): Promise<{ response?: Response; retry?: "nonce" | "token" }> => {
      try {
        return { response: await send(forceRenew) };
      } catch (error) {
        if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
        // The DPoP handle has already taken the nonce from the DPoP-Nonce header.
        if (oauth.isDPoPNonceError(error)) return { retry: "nonce", response: error.response };
        return { retry: error.response.status === 401 ? "token" : undefined, response: error.response };
      }
    };
    let outcome = await attempt(false);
    if (outcome.retry === "nonce") outcome = await attempt(false);
    if (outcome.retry === "token") outcome = await attempt(true);
    return outcome.response!;
  };
}
