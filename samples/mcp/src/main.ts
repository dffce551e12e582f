/**
 * The MCP sample, in one command (`npm run sample:mcp`): makes a throwaway CA when missing, then starts
 * Tessera (5000), the MCP server (5010) and the MCP client, whose metadata document is served over https
 * (5011) and whose redirect URI listens on 5012. Open the printed URL, sign in as alice/alice, allow, and
 * the client calls the server's `whoami` tool. The MCP server stays up for other MCP clients.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startServer } from "@tessera/host";
import { startMcpClient } from "./client.ts";
import { startMcpServer } from "./server.ts";

const root = join(import.meta.dirname, "..");
const certs = join(root, "certs");
if (!existsSync(join(certs, "server.pem"))) execFileSync("bash", [join(root, "make-certs.sh"), certs], { stdio: "inherit" });
const read = (name: string) => readFileSync(join(certs, name), "utf8");

const identity = await startServer(join(root, "tessera.config.json"));
const mcp = await startMcpServer({ issuer: identity.app.issuer, port: 5010, hostname: "localhost" });
const client = await startMcpClient({
  serverUrl: mcp.resource,
  hostname: "localhost",
  metadataPort: 5011,
  callbackPort: 5012,
  tls: { cert: read("server.pem"), key: read("server.key") },
  openBrowser: (url) => void process.stdout.write(`\nOpen this URL in a browser and sign in as alice / alice:\n\n  ${url}\n\n`),
});
process.stdout.write(`
Identity server: ${identity.url}
MCP server:      ${mcp.resource} (metadata at ${mcp.url}/.well-known/oauth-protected-resource/mcp)
MCP client id:   ${client.clientId}

Note: tessera.config.json sets outbound.allowLoopback for this local demo only; never copy it to a deployment.
`);
try {
  process.stdout.write(`whoami: ${await client.callWhoami()}\n`);
} catch (error) {
  process.stdout.write(`the client failed: ${(error as Error).message}\n`);
}
await client.close();
process.stdout.write("The MCP server keeps running; Ctrl+C stops everything.\n");
const stop = async () => {
  await mcp.close();
  await identity.stop();
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
