/**
 * The mutual-TLS sample, in one command (`npm run sample:mtls`): makes throwaway certificates when missing,
 * then starts the identity server (HTTP 5000, mTLS 5443), an mTLS API (5444) and a client that
 * authenticates with its certificate (tls_client_auth) and calls the API with a certificate-bound token.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createClientCredentialsFetch } from "@tessera/client";
import { startServer } from "@tessera/host";
import { startMtlsApi } from "./api.ts";

const root = join(import.meta.dirname, "..");
const certs = join(root, "certs");
if (!existsSync(join(certs, "client.pem"))) execFileSync("bash", [join(root, "make-certs.sh"), certs], { stdio: "inherit" });
const read = (name: string) => readFileSync(join(certs, name), "utf8");

const identity = await startServer(join(root, "tessera.config.json"));
const api = await startMtlsApi({ issuer: identity.app.issuer, cert: read("server.pem"), key: read("server.key"), ca: read("ca.pem"), port: 5444 });
const apiFetch = createClientCredentialsFetch({ issuer: identity.app.issuer, clientId: "mtls-client", scope: "api1.read", tls: { cert: read("client.pem"), key: read("client.key"), ca: read("ca.pem") } });

process.stdout.write(`
Identity server: ${identity.url} (mTLS endpoints on https://localhost:${identity.mtlsPort})
mTLS API:        ${api.url}/data
The client calls the API every 10 seconds with a token bound to its certificate:
`);
const tick = async () => {
  const response = await apiFetch(`${api.url}/data`).catch((error: Error) => error);
  process.stdout.write(response instanceof Error ? `client: ${response.message}\n` : `client: HTTP ${response.status} ${await response.text()}\n`);
};
await tick();
const timer = setInterval(() => void tick(), 10_000);
const stop = async () => {
  clearInterval(timer);
  await api.close();
  await identity.stop();
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
