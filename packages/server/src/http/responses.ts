import type { ProtocolError } from "@tessera/protocol";

/** Headers every response from the provider carries. */
const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** JSON with `Cache-Control: no-store` (RFC 6749 §5.1). */
export function noStoreJson(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      pragma: "no-cache",
      ...headers,
    },
  });
}

/** Public, cacheable JSON (discovery, JWKS). */
export function cacheableJson(body: unknown, maxAge: number): Response {
  return new Response(JSON.stringify(body), {
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "application/json; charset=utf-8",
      "cache-control": `public, max-age=${maxAge}`,
      "access-control-allow-origin": "*",
    },
  });
}

/** A page: no caching, no framing, a CSP that allows only inline script carrying `nonce`. */
export function htmlPage(html: string, status = 200, nonce?: string): Response {
  const script = nonce ? `'nonce-${nonce}'` : "'none'";
  return new Response(html, {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src ${script}; form-action *; frame-ancestors 'none'; base-uri 'none'`,
      "x-frame-options": "DENY",
    },
  });
}

/** 302 to `location` with no caching. */
export function redirect(location: string, cookies: string[] = []): Response {
  const headers = new Headers({ ...SECURITY_HEADERS, location, "cache-control": "no-store" });
  for (const cookie of cookies) headers.append("set-cookie", cookie);
  return new Response(null, { status: 302, headers });
}

/**
 * A redirect answering a POST is a 303 See Other (RFC 9110 §15.4.4: the browser follows with GET; FAPI 2.0
 * SP §5.3.2.2 asks for 303 for authorization responses after a POST). Redirects answering GET stay 302.
 */
export function seeOtherAfterPost(request: Request, response: Response): Response {
  if (request.method !== "POST" || response.status !== 302) return response;
  return new Response(response.body, { status: 303, headers: response.headers });
}

/** RFC 6749 §5.2 JSON error. */
export function errorJson(error: ProtocolError): Response {
  return noStoreJson(error.toJSON(), error.status, error.headers);
}

/** Adds Set-Cookie headers to a response (a new Response, since some are immutable). */
export function withCookies(response: Response, cookies: string[]): Response {
  if (cookies.length === 0) return response;
  const headers = new Headers(response.headers);
  for (const cookie of cookies) headers.append("set-cookie", cookie);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
