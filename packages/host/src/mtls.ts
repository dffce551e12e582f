import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { TLSSocket } from "node:tls";
import { serve, type HttpBindings } from "@hono/node-server";
import type { ClientCertificateContext } from "@tessera/server";
import { fromTrustedProxy } from "./client-address.ts";

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

/**
 * The client certificate of a request. On a TLS connection (the mTLS listener) only the connection's own
 * certificate counts. On the plain listener a certificate header (URL-encoded PEM, as nginx's
 * $ssl_client_escaped_cert) counts only when one is configured and the direct peer is a trusted proxy
 * (`trustedProxies` > 0), since anyone else can send that header. Header certificates are never trusted
 * as verified: the provider checks them against the client CA itself.
 */
export function clientCertificateFrom(env: Partial<HttpBindings> | undefined, request: Request, header: string | null | undefined, trustedProxies: number): ClientCertificateContext | undefined {
  const socket = env?.incoming?.socket as TLSSocket | undefined;
  if (socket?.encrypted) {
    const certificate = socket.getPeerX509Certificate();
    return certificate ? { certificate, chainVerified: socket.authorized === true } : undefined;
  }
  if (!header || !fromTrustedProxy(env, trustedProxies)) return undefined;
  const value = request.headers.get(header);
  if (!value) return undefined;
  try {
    const pem = value.includes("%") ? decodeURIComponent(value) : value;
    return { certificate: new X509Certificate(pem.includes("BEGIN CERTIFICATE") ? pem : Buffer.from(pem, "base64")), chainVerified: false };
  } catch {
    return undefined;
  }
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
  const server = serve({
    fetch: fetch as never,
    port,
    ...(hostname ? { hostname } : {}),
    // node:https loads only when the mTLS listener is enabled.
    createServer: (await import("node:https")).createServer,
    serverOptions: { cert: material.cert, key: material.key, ...(material.clientCa ? { ca: material.clientCa } : {}), requestCert: true, rejectUnauthorized: false, ...serverTimeouts(requestTimeout) },
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once("listening", () => resolveListen());
    server.once("error", reject);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
