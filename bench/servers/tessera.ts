/** Benchmark server: Tessera (host app, no request logging) with the memory or SQLite store. */
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type HttpBindings } from "@hono/node-server";
import { createHostApp, parseConfig } from "@tessera/host";

const [storeKind = "memory", alg = "ES256", variant] = process.argv.slice(2);
const port = Number(process.env.PORT ?? 0);
const REDIRECT = "http://127.0.0.1/callback";
const dir = mkdtempSync(join(tmpdir(), "tessera-bench-"));
const config = parseConfig({
  issuer: `http://127.0.0.1:${port}`,
  dataKey: "a".repeat(43),
  store: storeKind === "sqlite" ? { kind: "sqlite", path: join(dir, "tessera.db") } : { kind: "memory" },
  keys: { algorithms: [alg] },
  apiScopes: [{ name: "api1.read" }],
  apiResources: [{ name: "urn:api1", scopes: ["api1.read"], secret: "api1-secret" }],
  users: [{ sub: "alice", username: "alice", password: "alice", claims: { name: "Alice Smith" } }],
  clients: [
    { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" },
    { client_id: "ref", client_secret: "ref-secret", grant_types: ["client_credentials"], scope: "api1.read", access_token_format: "reference" },
    ...[
      { client_id: "sso", grant_types: ["authorization_code"] },
      { client_id: "web", grant_types: ["authorization_code", "refresh_token"] },
      { client_id: "ui", grant_types: ["authorization_code"] },
    ].map((client) => ({ ...client, client_secret: `${client.client_id}-secret`, redirect_uris: [REDIRECT], scope: "openid profile offline_access api1.read" })),
    ...(variant === "device" ? [{ client_id: "tv", token_endpoint_auth_method: "none" as const, grant_types: ["urn:ietf:params:oauth:grant-type:device_code" as const], scope: "openid api1.read" }] : []),
  ],
  // The device bench polls a pool of codes, each at most once a second, made from many (forwarded)
  // addresses so the per-address pending cap keeps them all.
  ...(variant === "device" ? { deviceFlow: { interval: 1 }, trustedProxies: 1 } : {}),
});
const app = await createHostApp(config, { baseDir: dir });
const server = serve({ fetch: (request, env) => app.fetch(request, env as HttpBindings), port, hostname: "127.0.0.1" }, (info: AddressInfo) => process.stdout.write(`listening on http://127.0.0.1:${info.port}\n`));
process.once("SIGTERM", () => server.close(() => void app.close().then(() => process.exit(0))));
