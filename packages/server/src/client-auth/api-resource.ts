import { constantTimeEqual } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import type { ApiResource } from "../options.ts";
import { authenticateClient, invalidClient, presentedCredentials, throttledAuthentication } from "./index.ts";

/** Who called introspection: an API (resource name + secret) or a client (for its own tokens). */
export type IntrospectionCaller = { kind: "resource"; resource: ApiResource } | { kind: "client"; client: Client };

/** Authenticates an API resource by its secret (Basic or form), else the request as a client. */
export async function authenticateIntrospectionCaller(request: Request, form: Params, deps: ProviderDeps): Promise<IntrospectionCaller> {
  const presented = presentedCredentials(request, form);
  const resource = deps.options.apiResources.find((r) => r.name === presented.clientId && r.secret !== undefined);
  if (resource) {
    return throttledAuthentication(request, presented.clientId, deps, "guessable", async () => {
      if (presented.method === "none" || !constantTimeEqual(presented.secret ?? "", resource.secret!)) {
        throw invalidClient("API resource authentication failed", presented.method === "client_secret_basic");
      }
      return { kind: "resource", resource } as const;
    });
  }
  return { kind: "client", client: await authenticateClient(request, form, deps) };
}
