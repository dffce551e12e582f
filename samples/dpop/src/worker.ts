/** A background worker: client credentials, DPoP-bound token, calls the API (nonces handled by @tessera/client). */
import { createClientCredentialsFetch } from "@tessera/client";

export function createWorker(issuer: string, apiUrl: string) {
  const apiFetch = createClientCredentialsFetch({ issuer, clientId: "dpop-worker", clientSecret: "dpop-worker-secret", scope: "api1.read", dpop: true });
  return async (): Promise<{ status: number; body: unknown }> => {
    const response = await apiFetch(`${apiUrl}/data`);
    return { status: response.status, body: await response.json() };
  };
}
