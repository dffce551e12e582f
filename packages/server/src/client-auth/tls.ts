import { calculateJwkThumbprint, exportJWK, type JWK } from "jose";
import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import { chainsTo, isCurrent, normalizeDn, subjectAltNames } from "./certificates.ts";
import { clientCertificateOf } from "../http/request-context.ts";

/**
 * RFC 8705 §2: tls_client_auth (chain to the client CA, then the registered subject DN or SAN) and
 * self_signed_tls_client_auth (the certificate's key is one of the client's registered keys). False when
 * the request has no client certificate or it does not fit.
 */
export async function certificateAuthenticates(request: Request, client: Client, deps: ProviderDeps): Promise<boolean> {
  const presented = clientCertificateOf(request);
  if (!presented) return false;
  const { certificate } = presented;
  const now = deps.clock();
  if (client.tokenEndpointAuthMethod === "tls_client_auth") {
    const trusted = presented.chainVerified ? isCurrent(certificate, now) : chainsTo(certificate, deps.options.mtls.clientCas, now);
    if (!trusted) return false;
    const names = client.tlsClientAuth ?? {};
    if (names.subjectDn !== undefined) return normalizeDn(certificate.subject) === normalizeDn(names.subjectDn);
    if (names.sanDns !== undefined) return subjectAltNames(certificate, "DNS").includes(names.sanDns);
    if (names.sanUri !== undefined) return subjectAltNames(certificate, "URI").includes(names.sanUri);
    if (names.sanIp !== undefined) return subjectAltNames(certificate, "IP Address").includes(names.sanIp);
    if (names.sanEmail !== undefined) return subjectAltNames(certificate, "email").includes(names.sanEmail);
    return false;
  }
  if (client.tokenEndpointAuthMethod === "self_signed_tls_client_auth") {
    if (!isCurrent(certificate, now)) return false;
    const thumbprint = await calculateJwkThumbprint((await exportJWK(certificate.publicKey)) as JWK);
    for (const key of client.jwks?.keys ?? []) {
      try {
        if ((await calculateJwkThumbprint(key)) === thumbprint) return true;
      } catch {
        // a malformed registered key matches nothing
      }
    }
  }
  return false;
}
