import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost } from "@tessera/testing";
import { startMcpClient, type McpSampleClient } from "../samples/mcp/src/client.ts";
import { MCP_SCOPE, startMcpServer } from "../samples/mcp/src/server.ts";
import { makePki, type TestPki } from "./support/certs.ts";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

describe("19 MCP sample", () => {
  let pki: TestPki;
  let host: TestHost;
  let mcp: Awaited<ReturnType<typeof startMcpServer>>;
  let client: McpSampleClient;
  const seen: { authorizationUrl?: URL; consentText?: string; loginText?: string } = {};

  before(async () => {
    pki = makePki();
    // Tessera names the MCP server's URL as the audience of its scope, so the port is chosen first.
    const port = await freePort();
    host = await createTestHost(
      {
        apiScopes: [{ name: MCP_SCOPE }],
        apiResources: [{ name: `http://127.0.0.1:${port}/mcp`, scopes: [MCP_SCOPE] }],
        users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice" } }],
        clientIdMetadataDocuments: { enabled: true, allowedScopes: ["openid", "profile", "offline_access", "mcp:tools"] },
        outbound: { allowLoopback: true, ca: pki.paths.ca },
      },
      { listen: true },
    );
    mcp = await startMcpServer({ issuer: host.issuer, port });
    const browser = new TestBrowser();
    client = await startMcpClient({
      serverUrl: mcp.resource,
      metadataPort: 0,
      callbackPort: 0,
      tls: pki.server,
      async openBrowser(url) {
        seen.authorizationUrl = url;
        const login = await browser.get(url);
        seen.loginText = login.text();
        const consent = await browser.submitForm(login, { fields: { username: "alice", password: "alice" } });
        seen.consentText = consent.text();
        // Allowing follows the redirect to the client's loopback redirect URI, which takes the code.
        await browser.submitForm(consent, { button: "button[name=decision][value=allow]" });
      },
    });
  });
  after(async () => {
    await client?.close();
    await mcp?.close();
    await host?.close();
    pki?.cleanup();
  });

  it("19 MCP: the server's 401 points at its RFC 9728 metadata, which names Tessera", async () => {
    const refused = await fetch(mcp.resource, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: "{}" });
    assert.equal(refused.status, 401);
    const challenge = refused.headers.get("www-authenticate") ?? "";
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    assert.equal(metadataUrl, `${mcp.url}/.well-known/oauth-protected-resource/mcp`);
    const metadata = (await (await fetch(metadataUrl!)).json()) as { resource: string; authorization_servers: string[]; scopes_supported: string[] };
    assert.deepEqual(metadata, { resource: mcp.resource, authorization_servers: [host.issuer], scopes_supported: [MCP_SCOPE], bearer_methods_supported: ["header"], resource_name: "Tessera MCP sample" });
  });

  it("19 MCP: the client finds Tessera, signs in with its metadata document (code + PKCE + resource) and calls the tool", async () => {
    const text = await client.callWhoami();
    assert.equal(text, `Hello 1: client ${client.clientId}, scopes ${MCP_SCOPE}`);
    const url = seen.authorizationUrl!;
    assert.equal(url.origin + url.pathname, `${host.issuer}/connect/authorize`);
    assert.equal(url.searchParams.get("client_id"), client.clientId);
    assert.match(client.clientId, /^https:\/\/127\.0\.0\.1:\d+\//);
    assert.equal(url.searchParams.get("code_challenge_method"), "S256");
    assert.equal(url.searchParams.get("resource"), mcp.resource);
    assert.equal(url.searchParams.get("redirect_uri"), client.redirectUri);
    const clientHost = new URL(client.clientId).host + new URL(client.clientId).pathname;
    assert.ok(seen.loginText?.includes(`Tessera MCP sample client (${clientHost})`), seen.loginText);
    assert.ok(seen.consentText?.includes(`Tessera MCP sample client (${clientHost}) is asking for`), seen.consentText);
    // The token is reused: a second call needs no sign-in.
    seen.authorizationUrl = undefined;
    assert.equal(await client.callWhoami(), text);
    assert.equal(seen.authorizationUrl, undefined);
  });
});
