import { X509Certificate } from "node:crypto";

/** The client certificate of a request, as the host established it. */
export interface ClientCertificateContext {
  certificate: X509Certificate;
  /** True when the TLS layer (or the proxy, per configuration) verified the chain against the client CA. */
  chainVerified: boolean;
}

/** Parses PEM certificates (a bundle allowed). */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

/** Within its validity period at `now` (milliseconds). */
export function isCurrent(certificate: X509Certificate, now: number): boolean {
  return Date.parse(certificate.validFrom) <= now && now <= Date.parse(certificate.validTo);
}

/** Issued and signed by one of the CAs, and current (single-level chains: the client CA issues client certificates). */
export function chainsTo(certificate: X509Certificate, cas: readonly X509Certificate[], now: number): boolean {
  if (!isCurrent(certificate, now)) return false;
  return cas.some((ca) => isCurrent(ca, now) && certificate.checkIssued(ca) && certificate.verify(ca.publicKey));
}

/** Subject alternative names of a kind ("DNS", "URI", "IP Address", "email"). */
export function subjectAltNames(certificate: X509Certificate, kind: "DNS" | "URI" | "IP Address" | "email"): string[] {
  return (certificate.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((entry) => entry.startsWith(`${kind}:`))
    .map((entry) => entry.slice(kind.length + 1));
}

/**
 * A distinguished name in a comparable form: RFC 4514-ish `CN=a,O=b` and Node's line-per-RDN subject both
 * become sorted lower-case `key=value` pairs.
 */
export function normalizeDn(dn: string): string {
  return dn
    .split(/\n|,(?=\s*[A-Za-z.0-9]+=)/)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf("=");
      return `${part.slice(0, eq).trim().toLowerCase()}=${part.slice(eq + 1).trim()}`;
    })
    .sort()
    .join(",");
}
