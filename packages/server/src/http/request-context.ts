import type { ClientCertificateContext } from "../client-auth/certificates.ts";

/** What the host knows about a request's connection. */
export interface RequestContext {
  /** The TLS client certificate the connection presented (mutual TLS). */
  clientCertificate?: ClientCertificateContext;
  /** The client's network address after the host's trusted-proxy rules (failure throttling). */
  clientAddress?: string;
  /** The request arrived on the mTLS listener, whose endpoint URLs are the `mtls_endpoint_aliases` (DPoP `htu`). */
  mtlsListener?: boolean;
}

/** Facts only the host knows, kept beside the request (clients cannot set them through headers). */
const contexts = new WeakMap<Request, RequestContext>();

/** Records what the host established about the request's connection. */
export function attachRequestContext(request: Request, context: RequestContext): void {
  contexts.set(request, context);
}

/** The request's client certificate, if its connection presented one. */
export function clientCertificateOf(request: Request): ClientCertificateContext | undefined {
  return contexts.get(request)?.clientCertificate;
}

/** The client address the host gave for the request, if any. */
export function clientAddressOf(request: Request): string | undefined {
  return contexts.get(request)?.clientAddress;
}

/** True when the host says the request arrived on the mTLS listener. */
export function arrivedOnMtlsListener(request: Request): boolean {
  return contexts.get(request)?.mtlsListener === true;
}
