/**
 * `http://` + a loopback IP literal, an optional port, then the rest (path and query) kept as written.
 * Only the literal forms RFC 8252 §7.3 names: not `localhost`, not other spellings of ::1, not https.
 */
const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::([1-9][0-9]{0,4}))?([/?][^#]*)?$/;

/** The URI without its port when it is a loopback IP redirect URI (RFC 8252 §7.3), else undefined. */
function withoutLoopbackPort(uri: string): string | undefined {
  const match = LOOPBACK.exec(uri);
  if (!match) return undefined;
  if (match[2] !== undefined && Number(match[2]) > 65535) return undefined;
  return `http://${match[1]}${match[3] ?? ""}`;
}

/**
 * True for a loopback IP redirect URI in the form RFC 8252 §7.3 names (`http://127.0.0.1…`, `http://[::1]…`),
 * the only URIs whose port {@link redirectUriMatches} may ignore. The host's CSP uses it too, so its
 * `form-action` allows any port exactly where the matcher does.
 */
export function isLoopbackIpRedirect(uri: string): boolean {
  return withoutLoopbackPort(uri) !== undefined;
}

/**
 * RFC 6749 §3.1.2.3 with RFC 8252 §7.3: a requested redirect URI matches a registered one when the two are
 * the same string, or, when the request uses PKCE (`anyLoopbackPort`), when both are loopback IP redirect
 * URIs (`http://127.0.0.1`, `http://[::1]`) that differ only in the port (native apps listen on an ephemeral
 * port). Without PKCE another app on the device could listen on another port and take the code (RFC 8252
 * §8.1), so the match is exact. No other normalization, no prefixes.
 */
export function redirectUriMatches(registered: readonly string[], requested: string, options: { anyLoopbackPort: boolean }): boolean {
  if (registered.includes(requested)) return true;
  if (!options.anyLoopbackPort) return false;
  const portless = withoutLoopbackPort(requested);
  if (portless === undefined) return false;
  return registered.some((uri) => withoutLoopbackPort(uri) === portless);
}

/** Schemes a browser runs or reads locally instead of handing them to an app: never a redirect target. */
const DANGEROUS_SCHEMES = new Set(["javascript:", "vbscript:", "data:", "blob:", "file:", "about:", "filesystem:"]);

/**
 * Why `uri` cannot be registered as a redirect (or post-logout redirect) URI of a client, or undefined
 * when it can. RFC 6749 §3.1.2: absolute, no fragment. `http:` and `https:` suit every client (claimed
 * https URIs, RFC 8252 §7.2, and loopback ones, §7.3, are ordinary URIs here). A private-use scheme
 * (RFC 8252 §7.1, `com.example.app:/callback`) only for a public client, since native apps are public
 * clients (§8.4), and only a reverse domain name: §8.4 says a private-use scheme without a period SHOULD be
 * rejected (older oidc-provider releases refused those too). Never a scheme a browser would run or read
 * locally (`javascript:`, `data:`, `file:`, ...), and nothing a URL parser would silently trim or rewrite.
 */
export function redirectUriProblem(uri: string, client: { publicClient: boolean }): string | undefined {
  // URL parsing drops leading and trailing C0 controls and spaces and removes tabs and newlines: the
  // registered string must be the one a browser is sent to.
  if (/[\u0000-\u0020\u007f]/.test(uri)) return "must not contain spaces or control characters";
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI";
  }
  if (uri.includes("#")) return "must not contain a fragment (RFC 6749 §3.1.2)";
  const scheme = url.protocol;
  if (!uri.toLowerCase().startsWith(scheme)) return "must be an absolute URI";
  if (scheme === "http:" || scheme === "https:") return undefined;
  if (DANGEROUS_SCHEMES.has(scheme)) return `must not use the ${scheme.slice(0, -1)} scheme`;
  if (!client.publicClient) return "a private-use URI scheme is only for public (native) clients, token_endpoint_auth_method none (RFC 8252 §8.4)";
  if (!scheme.includes(".")) return "a private-use URI scheme must be a reverse domain name such as com.example.app (RFC 8252 §7.1, §8.4)";
  return undefined;
}
