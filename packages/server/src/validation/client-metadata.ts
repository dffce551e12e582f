import { ASSERTION_ALGORITHMS, FAPI2_SIGNING_ALGORITHMS, REQUEST_OBJECT_ALGORITHMS, SECURITY_PROFILES, securityProfileProblems, TOKEN_ENDPOINT_AUTH_METHODS, type ClientMetadata } from "../clients.ts";
import { isStorableText, STORE_LIMITS } from "../stores/values.ts";
import { isLoopbackIpRedirect, redirectUriProblem } from "./redirect-uri.ts";

/**
 * The one validator of client metadata (RFC 7591 §2, OIDC Registration, Tessera's extensions): the host
 * runs it on every config client, the client registry on every client created or changed at run time
 * (admin API, dynamic registration), so both kinds follow the same rules.
 */

/** What the rules depend on beyond the metadata itself. */
export interface ClientRulesContext {
  /** Scopes the provider defines (identity and API scopes). */
  scopes: ReadonlySet<string>;
  /** The provider's signing algorithms (`keys.algorithms`). */
  signingAlgorithms: readonly string[];
  mtls: { enabled: boolean; clientCa: boolean };
  /**
   * `absolute`: any absolute URL without a fragment (config file and administrators). `native-or-https`
   * (dynamic registration): https, a loopback redirect (`http://127.0.0.1`, `http://[::1]`, `http://localhost`)
   * or a private-use scheme with a dot (RFC 8252 §7.1, §7.3); never a fragment.
   */
  redirectUris: "absolute" | "native-or-https";
  /** True when a secret comes with the client (config `client_secret`, or one the registry generates). */
  hasSecret: boolean;
  /** False for stored clients: their secret is kept hashed, so it cannot be an HMAC key (client_secret_jwt). */
  allowClientSecretJwt: boolean;
  /** Field names the caller accepts beyond {@link CLIENT_METADATA_FIELDS} (none by default). */
  extraFields?: ReadonlySet<string>;
  /**
   * True for dynamic registration (RFC 7591): only {@link REGISTRABLE_FIELDS} may be set, and the URLs the
   * server shows or calls (logo, client, policy, terms, jwks, logout) must be https.
   */
  registration?: boolean;
}

/** One problem with its path inside the metadata and the RFC 7591 §3.2.2 error it maps to. */
export interface ClientMetadataProblem {
  path: (string | number)[];
  message: string;
  code: "invalid_client_metadata" | "invalid_redirect_uri";
}

type FieldKind = "id" | "secret" | "text" | "url" | "urls" | "boolean" | "seconds" | "positive" | "grace" | "grant_types" | "response_types" | "auth_method" | "auth_alg" | "id_token_alg" | "token_format" | "jwks" | "name" | "request_object_alg" | "security_profile" | "acr_values";

const GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"] as const;
const ID_TOKEN_ALGS = ["RS256", "PS256", "ES256", "EdDSA"] as const;
const AUTH_ALGS: readonly string[] = [...ASSERTION_ALGORITHMS.private_key_jwt, ...ASSERTION_ALGORITHMS.client_secret_jwt];

/** Every client metadata field Tessera understands, with its kind. */
export const CLIENT_METADATA_FIELDS: Readonly<Record<string, FieldKind>> = {
  client_id: "id",
  client_secret: "secret",
  client_name: "text",
  client_uri: "url",
  logo_uri: "url",
  policy_uri: "url",
  tos_uri: "url",
  software_id: "text",
  software_version: "text",
  redirect_uris: "urls",
  post_logout_redirect_uris: "urls",
  grant_types: "grant_types",
  response_types: "response_types",
  scope: "text",
  token_endpoint_auth_method: "auth_method",
  tls_client_auth_subject_dn: "name",
  tls_client_auth_san_dns: "name",
  tls_client_auth_san_uri: "name",
  tls_client_auth_san_ip: "name",
  tls_client_auth_san_email: "name",
  token_endpoint_auth_signing_alg: "auth_alg",
  jwks: "jwks",
  jwks_uri: "url",
  id_token_signed_response_alg: "id_token_alg",
  frontchannel_logout_uri: "url",
  frontchannel_logout_session_required: "boolean",
  backchannel_logout_uri: "url",
  backchannel_logout_session_required: "boolean",
  default_acr_values: "acr_values",
  require_second_factor: "boolean",
  dpop_bound_access_tokens: "boolean",
  require_pushed_authorization_requests: "boolean",
  request_object_signing_alg: "request_object_alg",
  require_signed_request_object: "boolean",
  token_exchange_allow_impersonation: "boolean",
  tls_client_certificate_bound_access_tokens: "boolean",
  require_pkce: "boolean",
  require_consent: "boolean",
  coordinate_lifetime_with_user_session: "boolean",
  access_token_format: "token_format",
  access_token_lifetime: "positive",
  refresh_token_absolute_lifetime: "seconds",
  refresh_token_sliding_lifetime: "seconds",
  refresh_token_reuse_grace_period: "grace",
  security_profile: "security_profile",
};

/** Most entries of `redirect_uris` and of `post_logout_redirect_uris` (every source). */
export const MAX_CLIENT_URIS = 20;
/** Longest URL in client metadata (characters). */
export const MAX_URL_LENGTH = 2048;
/** Longest text field (client_name, software_id, ...), except `scope`. */
export const MAX_TEXT_LENGTH = 1024;
const MAX_SCOPE_LENGTH = 4096;
/** Deepest nesting of arrays and objects in a field's value (a JWK with `oth` needs 4). */
export const MAX_METADATA_DEPTH = 16;
/** Most values (strings, numbers, arrays, objects) in one client's metadata. */
export const MAX_METADATA_NODES = 10_000;

/**
 * The fields a client may set for itself by dynamic registration (RFC 7591 §2, OIDC Registration §2, RFC
 * 8705 §2.1.2 and RFC 9449/9126/9101 metadata). Tessera's own policy extensions (require_consent, token
 * lifetimes and formats, impersonation, session coordination) are the administrator's: refused with
 * invalid_client_metadata. `require_pkce` and `security_profile` only tighten rules, so they may be sent.
 */
export const REGISTRABLE_FIELDS: ReadonlySet<string> = new Set([
  "client_name", "client_uri", "logo_uri", "policy_uri", "tos_uri", "software_id", "software_version",
  "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types", "scope",
  "token_endpoint_auth_method", "token_endpoint_auth_signing_alg", "jwks", "jwks_uri", "id_token_signed_response_alg",
  "frontchannel_logout_uri", "frontchannel_logout_session_required", "backchannel_logout_uri", "backchannel_logout_session_required",
  "dpop_bound_access_tokens", "request_object_signing_alg", "require_signed_request_object", "require_pushed_authorization_requests",
  "tls_client_auth_subject_dn", "tls_client_auth_san_dns", "tls_client_auth_san_uri", "tls_client_auth_san_ip", "tls_client_auth_san_email",
  "tls_client_certificate_bound_access_tokens", "require_pkce", "security_profile", "client_id",
]);

/** True when `field` is a client metadata field Tessera knows (own properties only: not `constructor`, `__proto__`). */
export function isClientMetadataField(field: string): boolean {
  return Object.hasOwn(CLIENT_METADATA_FIELDS, field);
}

/** An http or https URL without a fragment (every non-redirect URL in client metadata). */
export function isHttpUrl(value: string): boolean {
  return isAbsoluteUrl(value) && /^https?:/i.test(value);
}

/** An absolute URL without a fragment (the config file's rule for every URL). */
export function isAbsoluteUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return !url.hash && !value.includes("#") && /^[a-z][a-z0-9+.-]*:$/.test(url.protocol);
  } catch {
    return false;
  }
}

/**
 * RFC 8252 / RFC 7591 policy for redirect URIs registered by clients themselves: https, a loopback
 * redirect over http, or a private-use scheme in reverse-domain form (§7.1); no fragment (RFC 6749 §3.1.2).
 */
export function isNativeOrHttpsRedirect(value: string): boolean {
  if (!isAbsoluteUrl(value)) return false;
  const url = new URL(value);
  if (url.protocol === "https:") return true;
  if (url.protocol === "http:") return isLoopbackIpRedirect(value) || url.hostname === "localhost";
  return url.protocol.slice(0, -1).includes(".");
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isStringOf = (value: unknown, options: readonly string[]): value is string => typeof value === "string" && options.includes(value);

function shapeProblem(kind: FieldKind, value: unknown, context: Pick<ClientRulesContext, "redirectUris" | "registration">): string | undefined {
  const url = (v: string) => (context.redirectUris === "native-or-https" ? isNativeOrHttpsRedirect(v) : isAbsoluteUrl(v));
  switch (kind) {
    case "id":
      if (typeof value !== "string" || value.length === 0 || value.length > STORE_LIMITS.clientId) return `must be a string of 1 to ${STORE_LIMITS.clientId} characters`;
      return isStorableText(value) ? undefined : "must not contain NUL or unpaired surrogate characters";
    case "secret":
    case "name":
      return typeof value === "string" && value.length > 0 && value.length <= MAX_TEXT_LENGTH ? undefined : `must be a non-empty string of at most ${MAX_TEXT_LENGTH} characters`;
    case "text":
      return typeof value === "string" && value.length <= MAX_TEXT_LENGTH ? undefined : `must be a string of at most ${MAX_TEXT_LENGTH} characters`;
    case "url":
      if (typeof value !== "string" || value.length > MAX_URL_LENGTH || !isHttpUrl(value)) return `must be an http or https URL of at most ${MAX_URL_LENGTH} characters, without a fragment`;
      return context.registration && !value.startsWith("https://") ? "must be an https URL (dynamic registration)" : undefined;
    case "urls":
      if (!Array.isArray(value)) return "must be an array of URLs";
      if (value.length > MAX_CLIENT_URIS) return `must list at most ${MAX_CLIENT_URIS} URLs`;
      if (value.some((v) => typeof v === "string" && v.length > MAX_URL_LENGTH)) return `must hold URLs of at most ${MAX_URL_LENGTH} characters`;
      return value.every((v) => typeof v === "string" && url(v)) ? undefined : context.redirectUris === "native-or-https" ? "must be an https, loopback or private-use scheme URL without a fragment" : "must be an absolute URL without a fragment";
    case "boolean":
      return typeof value === "boolean" ? undefined : "must be true or false";
    case "seconds":
    case "positive":
    case "grace": {
      const min = kind === "positive" ? 1 : 0;
      const max = kind === "grace" ? 300 : Number.MAX_SAFE_INTEGER;
      return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max ? undefined : `must be a whole number of seconds from ${min}${kind === "grace" ? " to 300" : ""}`;
    }
    case "grant_types":
      return Array.isArray(value) && value.every((v) => isStringOf(v, GRANT_TYPES)) ? undefined : `must list grant types out of ${GRANT_TYPES.join(", ")}`;
    case "response_types":
      return Array.isArray(value) && value.every((v) => v === "code") ? undefined : "only code is supported";
    case "auth_method":
      return isStringOf(value, TOKEN_ENDPOINT_AUTH_METHODS) ? undefined : `must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(", ")}`;
    case "auth_alg":
      return isStringOf(value, AUTH_ALGS) ? undefined : `must be one of ${AUTH_ALGS.join(", ")}`;
    case "id_token_alg":
      return isStringOf(value, ID_TOKEN_ALGS) ? undefined : `must be one of ${ID_TOKEN_ALGS.join(", ")}`;
    case "request_object_alg":
      return isStringOf(value, REQUEST_OBJECT_ALGORITHMS) ? undefined : `must be one of ${REQUEST_OBJECT_ALGORITHMS.join(", ")} (an asymmetric JWS algorithm)`;
    case "security_profile":
      return isStringOf(value, SECURITY_PROFILES) ? undefined : `must be one of ${SECURITY_PROFILES.join(", ")}`;
    case "token_format":
      return value === "jwt" || value === "reference" ? undefined : "must be jwt or reference";
    case "acr_values":
      // OIDC Registration §2: a list of acr values (printable ASCII, as in the acr_values parameter).
      return Array.isArray(value) && value.length <= 20 && value.every((v) => typeof v === "string" && /^[\x21-\x7e]{1,255}$/.test(v)) ? undefined : "must be a list of at most 20 acr values (1 to 255 printable ASCII characters each)";
    case "jwks":
      if (!isObject(value) || Object.keys(value).some((k) => k !== "keys") || !Array.isArray(value.keys) || value.keys.length === 0) return "must be { keys: [...] } with at least one key";
      return value.keys.every((k) => isObject(k) && typeof k.kty === "string") ? undefined : "every key needs a kty";
  }
}

/**
 * Problems with the shape of `input` as client metadata: unknown fields, wrong types, bad URLs (by the
 * `redirectUris` policy). Needs nothing of the provider, so a config reader can report these beside
 * its other problems.
 */
export function clientMetadataShapeProblems(input: unknown, context: Pick<ClientRulesContext, "redirectUris" | "extraFields" | "registration">): ClientMetadataProblem[] {
  const problems: ClientMetadataProblem[] = [];
  const issue = (path: (string | number)[], message: string) =>
    problems.push({ path, message, code: path[0] === "redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata" });
  if (!isObject(input)) {
    issue([], "must be a JSON object");
    return problems;
  }
  // Before anything reads the values: a bounded, iterative walk (no recursion to overflow).
  const walked = walkProblem(input);
  if (walked) {
    issue([walked.field], walked.message);
    return problems;
  }
  const unknown = Object.keys(input).filter((k) => !isClientMetadataField(k) && !context.extraFields?.has(k));
  if (unknown.length) issue([], `unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => JSON.stringify(k)).join(", ")}`);
  if (context.registration) {
    const refused = Object.keys(input).filter((k) => isClientMetadataField(k) && !REGISTRABLE_FIELDS.has(k));
    for (const field of refused) issue([field], "is set by the server's administrator, not by dynamic registration");
  }
  if (typeof input.scope === "string" && input.scope.length > MAX_SCOPE_LENGTH) issue(["scope"], `must be at most ${MAX_SCOPE_LENGTH} characters`);
  for (const [field, kind] of Object.entries(CLIENT_METADATA_FIELDS)) {
    const value = input[field];
    if (value === undefined) continue;
    const problem = shapeProblem(kind, value, context);
    if (problem && kind === "urls" && Array.isArray(value)) {
      // Point at the bad entries, as a config file reader wants (`redirect_uris[1]`).
      const bad = value.map((v, i) => [v, i] as const).filter(([v]) => shapeProblem(kind, [v], context) !== undefined);
      for (const [, i] of bad) issue([field, i], problem);
      if (!bad.length) issue([field], problem);
    } else if (problem) issue([field], problem);
  }
  if (typeof input.client_id !== "string") issue(["client_id"], "is required");
  return problems;
}

/**
 * Walks every value of the metadata without recursion: the first field nested deeper than
 * {@link MAX_METADATA_DEPTH}, holding more than {@link MAX_METADATA_NODES} values in all, or holding a
 * string (or key) no store keeps unchanged (NUL, a lone surrogate).
 */
function walkProblem(input: Record<string, unknown>): { field: string; message: string } | undefined {
  let nodes = 0;
  for (const [field, top] of Object.entries(input)) {
    if (!isStorableText(field)) return { field, message: "the field name must not contain NUL or unpaired surrogate characters" };
    const stack: [unknown, number][] = [[top, 1]];
    while (stack.length) {
      const [value, depth] = stack.pop()!;
      if (++nodes > MAX_METADATA_NODES) return { field, message: `the metadata holds more than ${MAX_METADATA_NODES} values` };
      if (depth > MAX_METADATA_DEPTH) return { field, message: `is nested deeper than ${MAX_METADATA_DEPTH} levels` };
      if (typeof value === "string") {
        if (!isStorableText(value)) return { field, message: "must not contain NUL or unpaired surrogate characters" };
      } else if (Array.isArray(value)) {
        for (const item of value) stack.push([item, depth + 1]);
      } else if (isObject(value)) {
        for (const [key, item] of Object.entries(value)) {
          if (!isStorableText(key)) return { field, message: "must not contain NUL or unpaired surrogate characters" };
          stack.push([item, depth + 1]);
        }
      }
    }
  }
  return undefined;
}

/**
 * Every problem with `input` as client metadata: its shape ({@link clientMetadataShapeProblems}), then
 * the rules between fields and against the provider. Empty when the client is valid.
 */
export function clientMetadataProblems(input: unknown, context: ClientRulesContext): ClientMetadataProblem[] {
  const problems = clientMetadataShapeProblems(input, context);
  if (problems.length) return problems;
  const issue = (path: (string | number)[], message: string) =>
    problems.push({ path, message, code: path[0] === "redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata" });
  const client = input as ClientMetadata;
  const method = client.token_endpoint_auth_method ?? (context.hasSecret ? "client_secret_basic" : "none");
  const needsSecret = method === "client_secret_basic" || method === "client_secret_post" || method === "client_secret_jwt";
  if (method === "none" && context.hasSecret) issue(["client_secret"], "a public client (token_endpoint_auth_method none) has no secret");
  if (needsSecret && !context.hasSecret) issue(["client_secret"], `${method} needs a client_secret`);
  if (method === "client_secret_jwt" && !context.allowClientSecretJwt) {
    issue(["token_endpoint_auth_method"], "client_secret_jwt is for configured clients only: a stored client's secret is kept hashed, so it cannot be the HMAC key");
  }
  if (method === "private_key_jwt" && !client.jwks === !client.jwks_uri) issue(["jwks"], "private_key_jwt needs exactly one of jwks and jwks_uri");
  if (method === "private_key_jwt" && context.hasSecret) issue(["client_secret"], "private_key_jwt clients have no secret");
  const tlsNames = [client.tls_client_auth_subject_dn, client.tls_client_auth_san_dns, client.tls_client_auth_san_uri, client.tls_client_auth_san_ip, client.tls_client_auth_san_email].filter((v) => v !== undefined);
  if (method === "tls_client_auth" && tlsNames.length !== 1) issue([], "tls_client_auth needs exactly one tls_client_auth_* name");
  if ((client.request_object_signing_alg || client.require_signed_request_object) && !client.jwks && !client.jwks_uri) {
    issue(["jwks"], "signed request objects (request_object_signing_alg, require_signed_request_object) need jwks or jwks_uri");
  }
  if (method === "self_signed_tls_client_auth" && !client.jwks) issue(["jwks"], "self_signed_tls_client_auth needs the certificate's key in jwks");
  if ((method === "tls_client_auth" || method === "self_signed_tls_client_auth" || client.tls_client_certificate_bound_access_tokens) && !context.mtls.enabled) {
    issue(["token_endpoint_auth_method"], "needs mtls.enabled");
  }
  if (method === "tls_client_auth" && !context.mtls.clientCa) issue(["token_endpoint_auth_method"], "tls_client_auth needs the client CA (mtls.clientCa)");
  const alg = client.token_endpoint_auth_signing_alg;
  if (alg && (method === "client_secret_jwt") !== alg.startsWith("HS")) issue(["token_endpoint_auth_signing_alg"], `${alg} does not suit ${method}`);
  if (alg && method !== "client_secret_jwt" && method !== "private_key_jwt") issue(["token_endpoint_auth_signing_alg"], `${alg} does not suit ${method}`);
  if (method === "none" && client.require_pkce === false) issue(["require_pkce"], "public clients must use PKCE");
  for (const scope of (client.scope ?? "openid").split(" ").filter(Boolean)) {
    if (!context.scopes.has(scope)) issue(["scope"], `unknown scope ${scope}`);
  }
  if (client.id_token_signed_response_alg && !context.signingAlgorithms.includes(client.id_token_signed_response_alg)) {
    issue(["id_token_signed_response_alg"], "not in keys.algorithms");
  }
  // The security profile's rules, on the metadata as it resolves (a stored client's secret is not in it).
  for (const problem of securityProfileProblems({ ...client, token_endpoint_auth_method: method })) issue([problem.field, ...(problem.index === undefined ? [] : [problem.index])], problem.message);
  // FAPI 2.0 SP §5.4.1: this client's ID and access tokens are signed with its alg, else the provider's first.
  if (client.security_profile === "fapi2" && !client.id_token_signed_response_alg && !context.signingAlgorithms.some((alg) => FAPI2_SIGNING_ALGORITHMS.includes(alg))) {
    issue(["id_token_signed_response_alg"], `FAPI 2.0 (§5.4.1) signs with ${FAPI2_SIGNING_ALGORITHMS.join(", ")}: set one here (and in keys.algorithms) or add one to keys.algorithms`);
  }
  // RFC 6749 §3.1.2 and RFC 8252: the one redirect URI rule (schemes, private-use for public clients only).
  for (const key of ["redirect_uris", "post_logout_redirect_uris"] as const) {
    (client[key] ?? []).forEach((uri, j) => {
      const problem = redirectUriProblem(uri, { publicClient: method === "none" });
      if (problem) issue([key, j], problem);
    });
  }
  const grantTypes = client.grant_types ?? ["authorization_code"];
  if (grantTypes.includes("authorization_code") && !(client.redirect_uris ?? []).length) {
    issue(["redirect_uris"], "the authorization code flow needs at least one redirect_uri");
  }
  return problems;
}
