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
 * RFC 6749 §3.1.2.3 with RFC 8252 §7.3: a requested redirect URI matches a registered one when the two are
 * the same string, or when both are loopback IP (`http://127.0.0.1`, `http://[::1]`) redirect URIs that
 * differ only in the port (native apps listen on an ephemeral port). No other normalization, no prefixes.
 */
export function redirectUriMatches(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  const portless = withoutLoopbackPort(requested);
  if (portless === undefined) return false;
  return registered.some((uri) => withoutLoopbackPort(uri) === portless);
}
