import { TestBrowser, type TestHost } from "@tessera/testing";
import * as oidc from "openid-client";

export const CALLBACK = "http://127.0.0.1/cb";

/** openid-client configuration for a client of `host` (over HTTP). */
export function discover(host: TestHost, clientId: string, auth: oidc.ClientAuth = oidc.None(), metadata: Partial<oidc.ClientMetadata> = {}): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(host.issuer), clientId, metadata, auth, { execute: [oidc.allowInsecureRequests] });
}

/** The code flow through the host's login page with openid-client doing PKCE, state and nonce. */
export async function codeFlow(
  config: oidc.Configuration,
  options: { scope: string; browser?: TestBrowser; username?: string; password?: string; extra?: Record<string, string>; consent?: "allow" | "deny"; dpop?: oidc.DPoPHandle },
): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  const browser = options.browser ?? new TestBrowser();
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: CALLBACK,
    scope: options.scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
    ...options.extra,
  });
  const stopAt = (u: URL) => u.href.startsWith(CALLBACK);
  let page = await browser.get(url, { stopAt });
  if (page.query("input[name=password]")) {
    page = await browser.submitForm(page, { fields: { username: options.username ?? "alice", password: options.password ?? "alice" }, stopAt });
  }
  if (options.consent && page.query("button[name=decision]")) {
    page = await browser.submitForm(page, { button: `button[name=decision][value=${options.consent}]`, stopAt });
  }
  if (!page.location) throw new Error(`no redirect to the client: ${page.status} ${page.url}`);
  const checks = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: options.scope.split(" ").includes("openid") };
  const callback = new URL(page.location);
  if (!options.dpop) return oidc.authorizationCodeGrant(config, callback, checks);
  try {
    return await oidc.authorizationCodeGrant(config, callback, checks, undefined, { DPoP: options.dpop });
  } catch (error) {
    // One retry for a server nonce (the handle keeps it); the code was not consumed by the refusal.
    if ((error as { error?: string }).error === "use_dpop_nonce") return oidc.authorizationCodeGrant(config, callback, checks, undefined, { DPoP: options.dpop });
    throw error;
  }
}

/** The OAuth error code of a rejected openid-client call. */
export async function errorOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    const e = error as { error?: string; response?: Response; message: string };
    if (e.error) return e.error;
    // A 401 with WWW-Authenticate comes as a challenge error; the OAuth code is in the body.
    if (e.response) {
      const body = (await e.response.clone().json().catch(() => ({}))) as { error?: string };
      if (body.error) return body.error;
    }
    return e.message;
  }
}
