/**
 * CORS for the endpoints browser-based clients call (token, PAR, revocation, userinfo): an origin is allowed when
 * some client registered a redirect URI on it (IdentityServer derives allowed origins the same way): the
 * configured clients' and, through `stored`, the run-time clients'.
 */
export class CorsPolicy {
  /** Origins of the configured clients' redirect URIs. */
  readonly configured: readonly string[];
  private readonly allowed: ReadonlySet<string>;

  constructor(
    redirectUris: Iterable<string>,
    /** Origins of the stored clients' redirect URIs (cached by the caller). */
    private readonly stored: () => Promise<ReadonlySet<string>> = async () => new Set(),
  ) {
    this.allowed = redirectOrigins(redirectUris);
    this.configured = [...this.allowed];
  }

  /** Every allowed origin, configured first (the check-session iframe's frame-ancestors). */
  async origins(): Promise<string[]> {
    return [...new Set([...this.configured, ...(await this.stored())])];
  }

  private async allows(origin: string | null): Promise<boolean> {
    return origin !== null && (this.allowed.has(origin) || (await this.stored()).has(origin));
  }

  /** The answer to a preflight (OPTIONS) request. */
  async preflight(request: Request): Promise<Response> {
    const origin = request.headers.get("origin");
    if (!origin || !(await this.allows(origin))) return new Response(null, { status: 204 });
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
  async apply(request: Request, response: Response): Promise<Response> {
    const origin = request.headers.get("origin");
    if (!origin || !(await this.allows(origin))) return response;
    const headers = new Headers(response.headers);
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-expose-headers", "www-authenticate, dpop-nonce");
    headers.append("vary", "origin");
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

/** The http(s) origins of redirect URIs. */
export function redirectOrigins(redirectUris: Iterable<string>): Set<string> {
  const origins = new Set<string>();
  for (const uri of redirectUris) {
    try {
      const url = new URL(uri);
      if (url.protocol === "https:" || url.protocol === "http:") origins.add(url.origin);
    } catch {
      // Not a URL: no origin to allow.
    }
  }
  return origins;
}
