import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { TLSSocket } from "node:tls";
import type { HttpBindings } from "@hono/node-server";
import type { ClientCertificateContext } from "@tessera/server";
import { fromTrustedProxy, type ProxyTrust } from "./client-address.ts";
import { lazyRequestListener } from "./node-listener.ts";

/** The mTLS files of a config, read (paths relative to the config's folder). */
export interface MtlsMaterial {
  cert: string;
  key: string;
  clientCa?: string;
}

/** Reads the listener certificate, key and client CA; errors name the config path. */
export function readMtlsMaterial(mtls: { cert?: string; key?: string; clientCa?: string }, baseDir: string): MtlsMaterial {
  const read = (path: string | undefined, name: string) => {
    try {
      return readFileSync(resolve(baseDir, path!), "utf8");
    } catch (error) {
      throw new Error(`cannot read mtls.${name} (${path}): ${(error as Error).message}`);
    }
  };
  return { cert: read(mtls.cert, "cert"), key: read(mtls.key, "key"), ...(mtls.clientCa ? { clientCa: read(mtls.clientCa, "clientCa") } : {}) };
}

const PEM_CERTIFICATE = /^\s*-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----\s*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * One certificate from a certificate header's value: URL-encoded or plain PEM, or base64 DER. Undefined
 * unless the value is exactly one certificate: no second one, no other data around or after it.
 */
function certificateFromHeader(value: string): X509Certificate | undefined {
  let text: string;
  try {
    text = value.includes("%") ? decodeURIComponent(value) : value;
  } catch {
    return undefined;
  }
  const pem = PEM_CERTIFICATE.exec(text);
  const base64 = pem ? pem[1]!.replace(/\s+/g, "") : text.trim();
  if (!BASE64.test(base64)) return undefined;
  const der = Buffer.from(base64, "base64");
  try {
    const certificate = new X509Certificate(der);
    // X509Certificate reads the first certificate and ignores whatever follows it.
    return certificate.raw.equals(der) ? certificate : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The client certificate of a request. On a TLS connection (the mTLS listener) only the connection's own
 * certificate counts. On the plain listener a certificate header (URL-encoded PEM, as nginx's
 * $ssl_client_escaped_cert) counts only when one is configured and the direct peer is a trusted proxy
 * (see {@link fromTrustedProxy}), since anyone else can send that header, and only when it holds exactly
 * one value with exactly one certificate. Header certificates are never trusted as verified: the provider
 * checks them against the client CA itself.
 */
export function clientCertificateFrom(env: Partial<HttpBindings> | undefined, request: Request, header: string | null | undefined, trust: ProxyTrust): ClientCertificateContext | undefined {
  const socket = env?.incoming?.socket as TLSSocket | undefined;
  if (socket?.encrypted) {
    const certificate = socket.getPeerX509Certificate();
    return certificate ? { certificate, chainVerified: socket.authorized === true } : undefined;
  }
  if (!header || !fromTrustedProxy(env, trust)) return undefined;
  // Repeated header lines are joined with ", " by Headers; a lone certificate value has no comma.
  const repeated = env?.incoming?.headersDistinct?.[header.toLowerCase()];
  if (repeated && repeated.length > 1) return undefined;
  const value = request.headers.get(header);
  if (!value || value.includes(",")) return undefined;
  const certificate = certificateFromHeader(value);
  return certificate ? { certificate, chainVerified: false } : undefined;
}

/**
 * True when the request came over TLS, which here only the mTLS listener speaks (the main listener is plain
 * HTTP, TLS being terminated in front of it); its endpoints are the `mtls_endpoint_aliases`.
 */
export function onMtlsListener(env: Partial<HttpBindings> | undefined): boolean {
  return (env?.incoming?.socket as TLSSocket | undefined)?.encrypted === true;
}

/**
 * Node server timeouts: a request (headers and body) must arrive within `requestTimeout` seconds, so a slow
 * or stalled client gets 408 and its connection closed instead of holding it open.
 */
export function serverTimeouts(requestTimeout: number): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number; keepAliveTimeout: number } {
  const ms = requestTimeout * 1000;
  return { requestTimeout: ms, headersTimeout: Math.min(ms, 20_000), connectionsCheckingInterval: Math.min(ms, 5_000) / 2, keepAliveTimeout: 5_000 };
}

/** Starts the HTTPS listener that asks for client certificates (and accepts connections without one). */
export async function startMtlsListener(fetch: (request: Request, env: HttpBindings) => Promise<Response>, material: MtlsMaterial, port: number, hostname?: string, requestTimeout = 30) {
  // node:https loads only when the mTLS listener is enabled; the node-server adapter with the first request.
  const { createServer } = await import("node:https");
  const server = createServer(
    { cert: material.cert, key: material.key, ...(material.clientCa ? { ca: material.clientCa } : {}), requestCert: true, rejectUnauthorized: false, ...serverTimeouts(requestTimeout) },
    lazyRequestListener(fetch, hostname),
  );
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => resolveListen());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
