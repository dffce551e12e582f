import * as oauth from "oauth4webapi";
import { TokenManagementError } from "./errors.ts";

/** How to talk to the authorization server: fetch (mTLS-capable), and plain http for local issuers. */
export interface HttpOptions {
  fetch?: typeof fetch;
}

/** Request options for oauth4webapi: the custom fetch, and http allowed only for http issuers. */
export function requestOptions(issuer: URL, http: HttpOptions): { [oauth.customFetch]?: typeof fetch; [oauth.allowInsecureRequests]?: boolean } {
  return {
    ...(http.fetch ? { [oauth.customFetch]: http.fetch } : {}),
    ...(issuer.protocol === "http:" ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

/** Discovers the authorization server once (retrying on the next call after a failure). */
export function discovery(issuer: URL, http: HttpOptions): () => Promise<oauth.AuthorizationServer> {
  let pending: Promise<oauth.AuthorizationServer> | undefined;
  return () => {
    pending ??= (async () => {
      try {
        const response = await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...requestOptions(issuer, http) });
        return await oauth.processDiscoveryResponse(issuer, response);
      } catch (error) {
        pending = undefined;
        throw new TokenManagementError("discovery_failed", `discovery of ${issuer.href} failed`, undefined, { cause: error });
      }
    })();
    return pending;
  };
}

/** For mTLS (RFC 8705) the token endpoint may have an alias on the mTLS listener. */
export function withMtlsAliases(as: oauth.AuthorizationServer, useAliases: boolean): oauth.AuthorizationServer {
  if (!useAliases || !as.mtls_endpoint_aliases) return as;
  return { ...as, ...as.mtls_endpoint_aliases };
}
