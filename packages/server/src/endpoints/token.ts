import { ProtocolError } from "@tessera/protocol";
import { authenticateClient } from "../client-auth/index.ts";
import { endpointUrlFor, PATHS, type ProviderDeps } from "../deps.ts";
import { issueDpopNonce } from "../validation/dpop.ts";
import { validateSenderConstraint } from "../validation/sender-constraint.ts";
import type { GrantRegistry } from "../grants/index.ts";
import { readForm, REPEATABLE, type Params } from "../http/params.ts";
import { noStoreJson } from "../http/responses.ts";

/** Every parameter name some grant accepts more than once; each grant then refuses the repeats it does not take. */
function repeatableAnywhere(grants: GrantRegistry): ReadonlySet<string> {
  return new Set([...REPEATABLE, ...[...grants.values()].flatMap((g) => g.repeatableParameters ?? [])]);
}

/** RFC 6749 §3.2: parameters are sent once, but those the grant declares repeatable. */
function refuseRepeats(form: Params, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const [name] of form) {
    if (seen.has(name) && !REPEATABLE.has(name) && !allowed.includes(name)) throw new ProtocolError("invalid_request", `parameter ${name.slice(0, 64)} is repeated`);
    seen.add(name);
  }
}

/** POST {issuer}/connect/token (RFC 6749 §3.2). */
export function tokenEndpoint(deps: ProviderDeps) {
  const repeatable = repeatableAnywhere(deps.grants);
  return async (request: Request): Promise<Response> => {
    const form = await readForm(request, deps.options, true, repeatable);
    const client = await authenticateClient(request, form, deps);
    const grantType = form.get("grant_type");
    if (!grantType) throw new ProtocolError("invalid_request", "grant_type is missing");
    const grant = deps.grants.get(grantType);
    if (!grant) throw new ProtocolError("unsupported_grant_type", `grant_type ${grantType} is not supported`);
    if (repeatable.size > REPEATABLE.size) refuseRepeats(form, grant.repeatableParameters ?? []);
    if (!client.grantTypes.includes(grantType)) throw new ProtocolError("unauthorized_client", `the client may not use ${grantType}`);
    const { dpop, context } = await validateSenderConstraint(request, client, deps, endpointUrlFor(deps, request, PATHS.token));
    const validated = await grant.validate(form, client, deps, context);
    const headers: Record<string, string> = dpop && deps.options.dpop.requireNonce ? { "dpop-nonce": issueDpopNonce(deps) } : {};
    const issued = await grant.issue(validated, deps);
    const sub = (validated as { user?: { sub: string }; subject?: string }).user?.sub ?? (validated as { subject?: string }).subject;
    deps.emit({ type: "token.issued", grantType, clientId: client.clientId, ...(sub ? { sub } : {}), scope: issued.scope, tokenType: issued.token_type, refreshToken: issued.refresh_token !== undefined });
    return noStoreJson(issued, 200, headers);
  };
}
