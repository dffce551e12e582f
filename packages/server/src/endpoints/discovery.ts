import { CODE_CHALLENGE_METHODS, DPOP_ALGORITHMS, type ProviderMetadata } from "@tessera/protocol";
import { claimsForScopes } from "../tokens/claims.ts";
import { ASSERTION_ALGORITHMS, REQUEST_OBJECT_ALGORITHMS, TLS_AUTH_METHODS, TOKEN_ENDPOINT_AUTH_METHODS } from "../clients.ts";
import { endpointUrl, PATHS, type ProviderDeps } from "../deps.ts";
import { cacheableJson } from "../http/responses.ts";
import { supportedPrompts } from "../validation/authorize-request.ts";

/** The provider metadata: only what is implemented is advertised. */
export function providerMetadata(deps: ProviderDeps): ProviderMetadata {
  const { options } = deps;
  const scopes = [...options.identityResources, ...options.apiScopes.map((s) => s.name)];
  const claims = new Set(["sub", "iss", "auth_time", "acr", "amr", "idp", "sid"]);
  for (const claim of claimsForScopes(options.identityResources, options.identityClaims)) claims.add(claim);
  // RFC 8705: the certificate methods and bound tokens exist only when the host does mutual TLS.
  // tls_client_auth checks the certificate against the client CA, so it is offered only with one.
  const authMethods = TOKEN_ENDPOINT_AUTH_METHODS.filter((m) => !TLS_AUTH_METHODS.includes(m) || (options.mtls.enabled && (m !== "tls_client_auth" || options.mtls.clientCas.length > 0)));
  return {
    issuer: options.issuer,
    authorization_endpoint: endpointUrl(deps, PATHS.authorize),
    token_endpoint: endpointUrl(deps, PATHS.token),
    pushed_authorization_request_endpoint: endpointUrl(deps, PATHS.par),
    ...(options.registration.enabled ? { registration_endpoint: endpointUrl(deps, PATHS.registration) } : {}),
    require_pushed_authorization_requests: options.par.required,
    device_authorization_endpoint: endpointUrl(deps, PATHS.deviceAuthorization),
    userinfo_endpoint: endpointUrl(deps, PATHS.userinfo),
    jwks_uri: endpointUrl(deps, PATHS.jwks),
    introspection_endpoint: endpointUrl(deps, PATHS.introspection),
    revocation_endpoint: endpointUrl(deps, PATHS.revocation),
    end_session_endpoint: endpointUrl(deps, PATHS.endSession),
    check_session_iframe: endpointUrl(deps, PATHS.checkSession),
    frontchannel_logout_supported: true,
    frontchannel_logout_session_supported: true,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    scopes_supported: scopes,
    claims_supported: [...claims],
    ...(options.acrValues.length ? { acr_values_supported: [...options.acrValues] } : {}),
    response_types_supported: ["code"],
    response_modes_supported: ["query", "fragment", "form_post"],
    grant_types_supported: [...deps.grants.keys()],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [...options.algorithms],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS.private_key_jwt, ...ASSERTION_ALGORITHMS.client_secret_jwt],
    introspection_endpoint_auth_methods_supported: authMethods.filter((m) => m !== "none"),
    revocation_endpoint_auth_methods_supported: [...authMethods],
    code_challenge_methods_supported: [...CODE_CHALLENGE_METHODS],
    prompt_values_supported: supportedPrompts(deps),
    claims_parameter_supported: false,
    // RFC 9101: request objects by value; by reference only through PAR, which is not request_uri support.
    request_parameter_supported: true,
    request_uri_parameter_supported: false,
    request_object_signing_alg_values_supported: [...REQUEST_OBJECT_ALGORITHMS],
    // RFC 9101 §10.5: required per client (require_signed_request_object), not for every request.
    require_signed_request_object: false,
    authorization_response_iss_parameter_supported: true,
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
    ...(options.clientIdMetadataDocuments.enabled ? { client_id_metadata_document_supported: true } : {}),
    ...(options.mtls.enabled ? { tls_client_certificate_bound_access_tokens: true } : {}),
    ...(options.mtls.enabled && options.mtls.endpointBaseUrl
      ? {
          mtls_endpoint_aliases: {
            token_endpoint: options.mtls.endpointBaseUrl + PATHS.token,
            pushed_authorization_request_endpoint: options.mtls.endpointBaseUrl + PATHS.par,
            device_authorization_endpoint: options.mtls.endpointBaseUrl + PATHS.deviceAuthorization,
            userinfo_endpoint: options.mtls.endpointBaseUrl + PATHS.userinfo,
            introspection_endpoint: options.mtls.endpointBaseUrl + PATHS.introspection,
            revocation_endpoint: options.mtls.endpointBaseUrl + PATHS.revocation,
          },
        }
      : {}),
  };
}

/** GET {issuer}/.well-known/openid-configuration (OIDC Discovery §4) and the RFC 8414 twin. */
export function discoveryEndpoint(deps: ProviderDeps) {
  return async (): Promise<Response> => cacheableJson(providerMetadata(deps), 3600);
}

/** GET the JWKS (RFC 7517): every published public key. */
export function jwksEndpoint(deps: ProviderDeps) {
  return async (): Promise<Response> => cacheableJson(await deps.keys.jwks(), 300);
}
