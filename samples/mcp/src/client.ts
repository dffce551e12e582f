/**
 * The MCP client: the SDK's client and OAuth support. It connects to the MCP server, gets 401 with
 * `resource_metadata`, reads the RFC 9728 metadata and Tessera's discovery, identifies itself with a
 * Client ID Metadata Document (an https URL it serves itself), signs the user in with the code flow, PKCE
 * and `resource`, and calls the `whoami` tool.
 */
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { UnauthorizedError, type OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";

export interface McpClientOptions {
  /** The MCP endpoint, e.g. http://localhost:5010/mcp. */
  serverUrl: string;
  /** Host name of this client's two listeners (its metadata document and its redirect URI). */
  hostname?: string;
  /** Port of the https listener serving the metadata document (0: any free port). */
  metadataPort: number;
  /** Port of the loopback redirect URI listener (0: any free port). */
  callbackPort: number;
  /** Certificate and key for the https listener, from a CA the authorization server trusts. */
  tls: { cert: string; key: string };
  /** Shows the authorization URL to the user (the sample prints it; the test drives a TestBrowser). */
  openBrowser(url: URL): void | Promise<void>;
}

/** A started client: its client_id (the metadata document URL) and one authorized tool call. */
export interface McpSampleClient {
  clientId: string;
  redirectUri: string;
  /** Connects (signing the user in first when needed) and calls `whoami`; resolves to its text. */
  callWhoami(): Promise<string>;
  close(): Promise<void>;
}

const METADATA_PATH = "/oauth/client-metadata.json";

export async function startMcpClient(options: McpClientOptions): Promise<McpSampleClient> {
  const hostname = options.hostname ?? "127.0.0.1";
  let pending: { state: string; resolve(code: string): void; reject(error: Error): void } | undefined;

  const callback = createHttpServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/callback") return void res.writeHead(404).end();
    const waiting = pending;
    const code = url.searchParams.get("code");
    const ok = waiting && url.searchParams.get("state") === waiting.state && code;
    res.writeHead(ok ? 200 : 400, { "content-type": "text/html; charset=utf-8" }).end(`<!doctype html><p>${ok ? "Signed in. You can close this tab." : "The sign-in did not complete."}</p>`);
    if (!waiting) return;
    pending = undefined;
    if (ok) waiting.resolve(code);
    else waiting.reject(new Error(`authorization failed: ${url.searchParams.get("error") ?? "state mismatch"} ${url.searchParams.get("error_description") ?? ""}`.trim()));
  });
  const callbackPort = await listen(callback, options.callbackPort, hostname);
  const redirectUri = `http://${hostname}:${callbackPort}/callback`;

  let document = "";
  const metadataServer = createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
    if (new URL(req.url ?? "/", "https://localhost").pathname !== METADATA_PATH) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" }).end(document);
  });
  const metadataPort = await listen(metadataServer, options.metadataPort, hostname);
  const clientId = `https://${hostname}:${metadataPort}${METADATA_PATH}`;
  const clientMetadata: OAuthClientMetadata = {
    client_name: "Tessera MCP sample client",
    client_uri: `https://${hostname}:${metadataPort}/`,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
    scope: "mcp:tools",
  };
  // The Client ID Metadata Document: client_id is its own URL.
  document = JSON.stringify({ client_id: clientId, ...clientMetadata });

  let information: OAuthClientInformationMixed | undefined;
  let tokens: OAuthTokens | undefined;
  let verifier = "";
  const authProvider: OAuthClientProvider = {
    get redirectUrl() {
      return redirectUri;
    },
    clientMetadataUrl: clientId,
    get clientMetadata() {
      return clientMetadata;
    },
    state: () => {
      const state = randomBytes(16).toString("base64url");
      const waiting = pending;
      if (waiting) waiting.state = state;
      return state;
    },
    clientInformation: () => information,
    saveClientInformation: (info) => void (information = info),
    tokens: () => tokens,
    saveTokens: (saved) => void (tokens = saved),
    saveCodeVerifier: (saved) => void (verifier = saved),
    codeVerifier: () => verifier,
    redirectToAuthorization: (url) => {
      // Not awaited: the flow goes on when the redirect URI receives the code.
      Promise.resolve(options.openBrowser(url)).catch((error: Error) => pending?.reject(error));
    },
  };

  const connect = async (): Promise<Client> => {
    const client = new Client({ name: "tessera-mcp-sample-client", version: "0.1.0" });
    const transport = new StreamableHTTPClientTransport(new URL(options.serverUrl), { authProvider });
    const code = new Promise<string>((resolve, reject) => (pending = { state: "", resolve, reject }));
    code.catch(() => undefined); // observed below, or never needed when already authorized
    try {
      await client.connect(transport);
      pending = undefined;
      return client;
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
    }
    await transport.finishAuth(await code);
    const authorized = new Client({ name: "tessera-mcp-sample-client", version: "0.1.0" });
    await authorized.connect(new StreamableHTTPClientTransport(new URL(options.serverUrl), { authProvider }));
    return authorized;
  };

  return {
    clientId,
    redirectUri,
    async callWhoami() {
      const client = await connect();
      try {
        const result = await client.callTool({ name: "whoami", arguments: {} });
        const content = result.content as { type: string; text?: string }[];
        return content.map((part) => part.text ?? "").join("");
      } finally {
        await client.close();
      }
    },
    close: async () => {
      await Promise.all([close(callback), close(metadataServer)]);
    },
  };
}

function listen(server: HttpServer | HttpsServer, port: number, hostname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
