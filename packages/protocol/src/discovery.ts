/** OpenID Connect Discovery 1.0 §3 / RFC 8414 §2 provider metadata, as far as this project uses it. */
export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint?: string;
  jwks_uri: string;
  scopes_supported?: string[];
  claims_supported?: string[];
  acr_values_supported?: string[];
  response_types_supported: string[];
  response_modes_supported?: string[];
  grant_types_supported?: string[];
  subject_types_supported: string[];
  id_token_signing_alg_values_supported: string[];
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
  prompt_values_supported?: string[];
  claims_parameter_supported?: boolean;
  request_parameter_supported?: boolean;
  request_uri_parameter_supported?: boolean;
  /** RFC 9101 §10.5 / OIDC Discovery §3. */
  request_object_signing_alg_values_supported?: string[];
  require_signed_request_object?: boolean;
  /** RFC 9126 §5. */
  pushed_authorization_request_endpoint?: string;
  /** RFC 7591 §3: dynamic client registration. */
  registration_endpoint?: string;
  require_pushed_authorization_requests?: boolean;
  /** RFC 8628 §4. */
  device_authorization_endpoint?: string;
  authorization_response_iss_parameter_supported?: boolean;
  [extension: string]: unknown;
}
