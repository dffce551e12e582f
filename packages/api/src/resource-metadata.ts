/** The RFC 9728 §3 well-known path segment. */
export const PROTECTED_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

/** Options of {@link protectedResourceMetadata} (RFC 9728 §2 names, camelCase). */
export interface ProtectedResourceMetadataOptions {
  /** This API's resource identifier: an https (or, for local development, http) URL without a fragment. */
  resource: string;
  /** Issuers of the authorization servers whose tokens this API accepts. */
  authorizationServers: string[];
  /** Scopes this API understands (`scopes_supported`). */
  scopesSupported?: string[];
  /** How tokens are sent (`bearer_methods_supported`, default `["header"]`, the only method the validator reads). */
  bearerMethodsSupported?: ("header" | "body" | "query")[];
  /** Human-readable name (`resource_name`). */
  resourceName?: string;
  /** Where developers read about this API (`resource_documentation`). */
  resourceDocumentation?: string;
  /** `dpop_bound_access_tokens_required` (RFC 9728 §2). */
  dpopBoundAccessTokensRequired?: boolean;
  /** `tls_client_certificate_bound_access_tokens` (RFC 9728 §2). */
  tlsClientCertificateBoundAccessTokens?: boolean;
  /** Seconds clients may cache the document (default 3600). */
  maxAge?: number;
  /**
   * Also answer at the origin's `/.well-known/oauth-protected-resource` when the resource has a path
   * (default false). A compatibility fallback for older clients that probe only there: RFC 9728 §3.3
   * clients refuse that document (its `resource` is not the origin), and two resources of one origin
   * cannot both use it. The MCP SDK reads the challenge's `resource_metadata`, then the §3.1 URL, so it needs none.
   */
  serveAtOriginRoot?: boolean;
}

/** The RFC 9728 §2 document. */
export interface ProtectedResourceMetadataDocument {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  bearer_methods_supported: string[];
  resource_name?: string;
  resource_documentation?: string;
  dpop_bound_access_tokens_required?: boolean;
  tls_client_certificate_bound_access_tokens?: boolean;
}

/**
 * A `(Request) => Response` serving the metadata. It answers GET and HEAD at the RFC 9728 §3.1 location
 * (the well-known segment inserted before the resource's path; the origin's
 * `/.well-known/oauth-protected-resource` only for a resource without a path, or with
 * `serveAtOriginRoot`); 404 elsewhere, 405 for other methods.
 */
export interface ProtectedResourceMetadataHandler {
  (request: Request): Response;
  /** Where the document lives (RFC 9728 §3.1); give it to the validator as `resourceMetadata`. */
  readonly url: string;
  /** The paths the handler answers (what the adapters mount). */
  readonly paths: readonly string[];
  readonly document: ProtectedResourceMetadataDocument;
}

/** The RFC 9728 §3.1 metadata URL of a resource identifier: `https://api.example.com/.well-known/oauth-protected-resource/mcp`. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = resourceUrl(resource);
  const path = url.pathname === "/" ? "" : url.pathname;
  return `${url.origin}${PROTECTED_RESOURCE_METADATA_PATH}${path}${url.search}`;
}

/** Creates the RFC 9728 metadata endpoint of one resource. */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadataHandler {
  resourceUrl(options.resource);
  if (options.authorizationServers.length === 0) throw new TypeError("authorizationServers must name at least one issuer");
  for (const issuer of options.authorizationServers) resourceUrl(issuer, "authorization server");
  const document: ProtectedResourceMetadataDocument = {
    // §3.3: the document's resource is the identifier exactly as the API uses it.
    resource: options.resource,
    authorization_servers: [...options.authorizationServers],
    ...(options.scopesSupported ? { scopes_supported: [...options.scopesSupported] } : {}),
    bearer_methods_supported: [...(options.bearerMethodsSupported ?? ["header"])],
    ...(options.resourceName !== undefined ? { resource_name: options.resourceName } : {}),
    ...(options.resourceDocumentation !== undefined ? { resource_documentation: options.resourceDocumentation } : {}),
    ...(options.dpopBoundAccessTokensRequired !== undefined ? { dpop_bound_access_tokens_required: options.dpopBoundAccessTokensRequired } : {}),
    ...(options.tlsClientCertificateBoundAccessTokens !== undefined ? { tls_client_certificate_bound_access_tokens: options.tlsClientCertificateBoundAccessTokens } : {}),
  };
  const url = protectedResourceMetadataUrl(options.resource);
  const paths = [...new Set([new URL(url).pathname, ...(options.serveAtOriginRoot ? [PROTECTED_RESOURCE_METADATA_PATH] : [])])];
  const body = JSON.stringify(document);
  const maxAge = Math.max(0, Math.floor(options.maxAge ?? 3600));
  const handler = (request: Request): Response => {
    const pathname = new URL(request.url).pathname;
    if (!paths.includes(pathname)) return new Response(JSON.stringify({ error: "not_found" }), { status: 404, headers: { "content-type": "application/json" } });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
    }
    // Public metadata: any origin may read it (browser-based clients discover the authorization server).
    const headers = { "content-type": "application/json", "cache-control": `public, max-age=${maxAge}`, "access-control-allow-origin": "*" };
    return new Response(request.method === "HEAD" ? null : body, { status: 200, headers });
  };
  return Object.assign(handler, { url, paths, document });
}

function resourceUrl(value: string, what = "resource"): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${what} ${value} is not an absolute URL`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.hash || value.includes("#")) throw new TypeError(`${what} ${value} must be an http(s) URL without a fragment`);
  return url;
}
