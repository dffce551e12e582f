/**
 * The server-side sessions sample, in one command (`npm run sample:sessions` at the repository root):
 * the identity server with server-side sessions (port 5000), a web app whose refresh tokens extend the
 * user's session (port 5003), and an API that introspects its tokens (port 5004).
 */
import { join } from "node:path";
import { startServer } from "@tessera/host";
import { startWebClient } from "@tessera/sample-web-client/server";
import { startApi } from "./api.ts";

const identity = await startServer(join(import.meta.dirname, "..", "tessera.config.json"));
const api = await startApi({ issuer: identity.app.issuer, resource: "urn:api1", secret: "api1-secret", requiredScope: "api1.read", port: 5004 });
const web = await startWebClient({
  issuer: identity.app.issuer,
  clientId: "sessions-web",
  clientSecret: "sessions-web-secret",
  port: 5003,
  baseUrl: "http://localhost:5003",
  scope: "openid profile email offline_access api1.read",
  apiUrl: `${api.url}/data`,
});

process.stdout.write(`
Identity server: ${identity.url}   (server-side sessions page: ${identity.url}/serversidesessions)
Web app:         ${web.url}
API:             ${api.url}/data

1. Open ${web.url}, sign in as alice / alice, and press "Call the API".
2. Open ${identity.url}/serversidesessions in another tab (alice is an administrator): note the session's Expires.
3. Back in the app press "Refresh the access token", reload the sessions page: Expires moved later.
4. Revoke the session on the sessions page: the app receives a back-channel logout and shows you signed out;
   its refresh token no longer works.
`);

const stop = async () => {
  await Promise.all([web.close(), api.close()]);
  await identity.stop();
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
