import { ProtocolError, certificateThumbprint } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { GrantContext } from "../grants/index.ts";
import { clientCertificateOf } from "../http/request-context.ts";
import { validateDpop, type ValidatedDpop } from "./dpop.ts";

/** How a token request's tokens will be sender-constrained, and its DPoP proof if it had one. */
export interface SenderConstraint {
  dpop?: ValidatedDpop;
  context: GrantContext;
}

/**
 * The sender constraint of a token request (`url` is the endpoint's public URL), by the client's policy:
 * - RFC 9449 §5.2: a client registered for DPoP-bound tokens never gets a Bearer token;
 * - RFC 8705 §3: a client registered for certificate-bound tokens gets them, and needs a certificate;
 * - FAPI 2.0 SP §5.3.2.1-4/-5 (`requireSenderConstrainedTokens`): only sender-constrained access tokens,
 *   by DPoP or, without a proof, by the client certificate of the mTLS connection; a request with neither
 *   is `invalid_request` (the error every variant of the conformance suite's "ensure holder of key
 *   required" test accepts: invalid_request/invalid_grant/invalid_dpop_proof for DPoP, invalid_request/
 *   invalid_client for mTLS); DPoP proofs only with the client's algorithms (FAPI 2.0 SP §5.4.1).
 */
export async function validateSenderConstraint(request: Request, client: Client, deps: ProviderDeps, url: string): Promise<SenderConstraint> {
  const dpop = await validateDpop(request, deps, url, { algorithms: client.dpopAlgorithms });
  if (!dpop && client.dpopBoundAccessTokens) throw new ProtocolError("invalid_dpop_proof", "this client must send a DPoP proof");
  const presented = clientCertificateOf(request);
  let thumbprint: string | undefined;
  if (client.tlsClientCertificateBoundAccessTokens) {
    if (!presented) throw new ProtocolError("invalid_request", "this client's tokens are bound to its TLS client certificate: use the mTLS endpoint");
    thumbprint = certificateThumbprint(presented.certificate);
  } else if (client.requireSenderConstrainedTokens && !dpop) {
    if (!presented) throw new ProtocolError("invalid_request", "this client's tokens must be sender-constrained: send a DPoP proof, or use the mTLS endpoint with a client certificate");
    thumbprint = certificateThumbprint(presented.certificate);
  }
  return { dpop, context: { dpopJkt: dpop?.jkt, certificateThumbprint: thumbprint } };
}
