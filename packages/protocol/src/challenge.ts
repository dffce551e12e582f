/**
 * An auth-param value of a `WWW-Authenticate` challenge as an RFC 9110 §5.6.4 quoted-string: characters
 * outside visible ASCII and space are dropped, `"` and `\` escaped, so no value can break the header or
 * add parameters to it.
 */
export function quotedString(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, "").replace(/["\\]/g, "\\$&")}"`;
}
