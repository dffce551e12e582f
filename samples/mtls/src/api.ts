/** An API over mutual TLS that accepts only tokens bound to the caller's certificate. */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { createTokenValidator } from "@tessera/api";

export async function startMtlsApi(options: { issuer: string; cert: string; key: string; ca: string; port: number }): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const validator = createTokenValidator({ issuer: options.issuer, audience: "urn:api1", requiredScopes: ["api1.read"] });
  const server = createServer({ cert: options.cert, key: options.key, ca: options.ca, requestCert: true, rejectUnauthorized: true }, async (req, res) => {
    const result = await validator.validate(new Request(`https://localhost${req.url}`, { headers: req.headers as Record<string, string> }), {
      clientCertificate: (req.socket as TLSSocket).getPeerX509Certificate(),
    });
    res.writeHead(result.ok ? 200 : result.status, { "content-type": "application/json", ...(result.ok ? {} : { "www-authenticate": result.wwwAuthenticate }) });
    res.end(JSON.stringify(result.ok ? { message: "Hello over mutual TLS", sub: result.claims.sub, cnf: result.claims.cnf } : { error: result.error }));
  });
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
