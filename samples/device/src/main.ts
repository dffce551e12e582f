/**
 * The device flow sample, in one command (`npm run sample:device` at the repository root): the identity
 * server (port 5000), an API protected with @tessera/api (port 5008), and a CLI that signs in with the
 * device authorization grant and calls the API. Approve in a browser as alice / alice.
 */
import { join } from "node:path";
import { startServer } from "@tessera/host";
import { startDeviceApi } from "./api.ts";
import { runDeviceCli } from "./cli.ts";

const identity = await startServer(join(import.meta.dirname, "..", "tessera.config.json"));
const api = await startDeviceApi(identity.app.issuer, 5008);
const stop = async () => {
  await api.close();
  await identity.stop();
};
process.once("SIGINT", () => void stop().then(() => process.exit(130)));
process.once("SIGTERM", () => void stop().then(() => process.exit(143)));

process.stdout.write(`\nIdentity server: ${identity.url}   (sign in as alice / alice)\nAPI:             ${api.url}/data\n\n`);
try {
  await runDeviceCli({ issuer: identity.app.issuer, clientId: "device-cli", scope: "openid profile offline_access api1.read", apiUrl: `${api.url}/data` });
} catch (error) {
  process.stderr.write(`The device flow ended: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await stop();
}
