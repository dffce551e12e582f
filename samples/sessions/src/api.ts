/** A small API that accepts the identity server's access tokens, checked by introspection (RFC 7662). */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ApiOptions {
  issuer: string;
  /** The API resource's name and secret, as registered with the identity server. */
  resource: string;
  secret: string;
  requiredScope: string;
  port: number;
}

export async function startApi(options: ApiOptions): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  let introspectionEndpoint: string | undefined;
  const server = createServer(async (req, res) => {
    const reply = (status: number, body: unknown, challenge?: string) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...(challenge ? { "www-authenticate": challenge } : {}) });
      res.end(JSON.stringify(body));
    };
    try {
      const header = req.headers.authorization ?? "";
      const token = /^bearer /i.test(header) ? header.slice(7).trim() : "";
      if (!token) return reply(401, { error: "invalid_token" }, "Bearer");
      introspectionEndpoint ??= ((await (await fetch(`${options.issuer}/.well-known/openid-configuration`)).json()) as { introspection_endpoint: string }).introspection_endpoint;
      const response = await fetch(introspectionEndpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${encodeURIComponent(options.resource)}:${encodeURIComponent(options.secret)}`).toString("base64")}` },
        body: new URLSearchParams({ token, token_type_hint: "access_token" }),
      });
      const result = (await response.json()) as { active: boolean; sub?: string; client_id?: string; scope?: string };
      // Inactive: expired, revoked, or its user session ended (coordinate_lifetime_with_user_session).
      if (!result.active) return reply(401, { error: "invalid_token" }, 'Bearer error="invalid_token"');
      if (!(result.scope ?? "").split(" ").includes(options.requiredScope)) return reply(403, { error: "insufficient_scope" }, `Bearer error="insufficient_scope", scope="${options.requiredScope}"`);
      reply(200, { message: "Hello from the API", sub: result.sub, client_id: result.client_id, scope: result.scope });
    } catch (error) {
      reply(502, { error: "introspection failed", detail: (error as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
