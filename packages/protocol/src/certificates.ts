import { createHash, X509Certificate } from "node:crypto";

/** RFC 8705 §3.1: base64url SHA-256 of a certificate's DER encoding, the `x5t#S256` confirmation. */
export function certificateThumbprint(certificate: X509Certificate | string | Uint8Array): string {
  const der = certificate instanceof X509Certificate ? certificate.raw : typeof certificate === "string" ? new X509Certificate(certificate).raw : Buffer.from(certificate);
  return createHash("sha256").update(der).digest("base64url");
}
