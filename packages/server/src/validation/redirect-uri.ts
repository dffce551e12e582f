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
