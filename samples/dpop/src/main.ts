/**
 * The DPoP sample, in one command (`npm run sample:dpop`): the identity server requiring DPoP nonces
 * (port 5000), an API that accepts only DPoP-bound tokens (5006), a client-credentials worker calling it
 * every 10 seconds, and an interactive web app (5007).
 */
import { join } from "node:path";
import { startServer } from "@tessera/host";
import { startDpopApi } from "./api.ts";
import { startDpopWeb } from "./web.ts";
import { createWorker } from "./worker.ts";

const identity = await startServer(join(import.meta.dirname, "..", "tessera.config.json"));
const api = await startDpopApi(identity.app.issuer, 5006);
const web = await startDpopWeb({ issuer: identity.app.issuer, apiUrl: api.url, port: 5007, baseUrl: "http://localhost:5007" });
const callApi = createWorker(identity.app.issuer, api.url);

process.stdout.write(`
Identity server: ${identity.url}
DPoP API:        ${api.url}/data
Web app:         ${web.url}   (sign in as alice / alice; the page shows what the API answered)
The worker calls the API every 10 seconds with a DPoP-bound client-credentials token:
`);
const tick = async () => {
  const result = await callApi().catch((error: Error) => ({ status: 0, body: error.message }));
  process.stdout.write(`worker: HTTP ${result.status} ${JSON.stringify(result.body)}\n`);
};
await tick();
const timer = setInterval(() => void tick(), 10_000);
const stop = async () => {
  clearInterval(timer);
  await Promise.all([web.close(), api.close()]);
  await identity.stop();
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
