/**
 * CORS for the endpoints browser-based clients call (token, PAR, revocation, userinfo): an origin is allowed when
 * some client registered a redirect URI on it (IdentityServer derives allowed origins the same way).
 */
export class CorsPolicy {
  /** Origins of the clients' redirect URIs. */
  readonly origins: readonly string[];
  private readonly allowed: ReadonlySet<string>;

  constructor(redirectUris: Iterable<string>) {
    const origins = new Set<string>();
    for (const uri of redirectUris) {
      try {
        const url = new URL(uri);
        if (url.protocol === "https:" || url.protocol === "http:") origins.add(url.origin);
      } catch {
        // Not a URL: no origin to allow.
      }
    }
    this.allowed = origins;
    this.origins = [...origins];
  }

  /** The answer to a preflight (OPTIONS) request. */
  preflight(request: Request): Response {
    const origin = request.headers.get("origin");
    if (!origin || !this.allowed.has(origin)) return new Response(null, { status: 204 });
    return new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "authorization, content-type, dpop",
        "access-control-max-age": "600",
        vary: "origin",
      },
    });
  }

  /** Adds the CORS headers to a response for an allowed origin. */
  apply(request: Request, response: Response): Response {
    const origin = request.headers.get("origin");
    if (!origin || !this.allowed.has(origin)) return response;
    const headers = new Headers(response.headers);
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-expose-headers", "www-authenticate, dpop-nonce");
    headers.append("vary", "origin");
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}
