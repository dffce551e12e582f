/**
 * The MCP server: one tool (`whoami`) over streamable HTTP at /mcp, protected by @tessera/api. A request
 * without a valid token gets 401 with `resource_metadata` (RFC 9728 §5.1), which is where an MCP client
 * starts: the metadata names Tessera as the authorization server.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { protectedResourceMetadata } from "@tessera/api";
import { serveResourceMetadata, tokenAuth, type TokenAuthVariables } from "@tessera/api/hono";
import { Hono } from "hono";

/** The scope the tool needs; Tessera's apiResources give it the MCP server's URL as audience. */
export const MCP_SCOPE = "mcp:tools";

export interface McpServerOptions {
  /** Tessera's issuer. */
  issuer: string;
  port: number;
  hostname?: string;
}

/** Starts the MCP server; `resource` is its RFC 8707 / RFC 9728 resource identifier (`{url}/mcp`). */
export async function startMcpServer(options: McpServerOptions): Promise<{ url: string; resource: string; close(): Promise<void> }> {
  const hostname = options.hostname ?? "127.0.0.1";
  let app: Hono<{ Variables: TokenAuthVariables }> | undefined;
  const listener = serve({ fetch: (request) => (app ? app.fetch(request) : new Response("starting", { status: 503 })), port: options.port, hostname });
  await new Promise((resolve) => listener.once("listening", resolve));
  const url = `http://${hostname}:${(listener.address() as AddressInfo).port}`;
  const resource = `${url}/mcp`;
  const metadata = protectedResourceMetadata({ resource, authorizationServers: [options.issuer], scopesSupported: [MCP_SCOPE], resourceName: "Tessera MCP sample" });
  app = new Hono<{ Variables: TokenAuthVariables }>();
  app.use(serveResourceMetadata(metadata));
  app.use("/mcp", tokenAuth({ issuer: options.issuer, audience: resource, requiredScopes: [MCP_SCOPE], resourceMetadata: metadata.url }));
  app.all("/mcp", async (c) => {
    const auth = c.get("auth");
    // Stateless: a server and transport per request, so any number of clients and processes can serve.
    const server = new McpServer({ name: "tessera-mcp-sample", version: "0.1.0" });
    server.registerTool("whoami", { title: "Who am I", description: "Says whom the access token was issued to" }, async () => ({
      content: [{ type: "text", text: `Hello ${auth.claims.sub}: client ${auth.claims.client_id ?? "?"}, scopes ${auth.scopes.join(" ")}` }],
    }));
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    const token = (c.req.header("authorization") ?? "").replace(/^\S+\s+/, "");
    return transport.handleRequest(c.req.raw, { authInfo: { token, clientId: auth.claims.client_id ?? "", scopes: auth.scopes, expiresAt: auth.claims.exp, extra: { sub: auth.claims.sub } } });
  });
  return {
    url,
    resource,
    close: () =>
      new Promise((resolve) => {
        listener.close(() => resolve());
        if ("closeAllConnections" in listener) listener.closeAllConnections();
      }),
  };
}
