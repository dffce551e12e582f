import { serve } from "@hono/node-server";
import { createHostApp, parseConfig } from "@tessera/host";
const app = await createHostApp(parseConfig({ issuer: "http://127.0.0.1:5997", dataKey: "a".repeat(43), store: { kind: "memory" }, keys: { algorithms: ["ES256"] }, apiScopes: [{ name: "api1.read" }], apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }], clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }] }));
const server = serve({ fetch: (r) => app.fetch(r), port: 5997, hostname: "127.0.0.1" });
process.once("SIGINT", () => { server.close(); (server as unknown as { closeAllConnections(): void }).closeAllConnections(); void app.close().then(() => process.exit(0)); });
