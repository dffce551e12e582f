import { createHash, randomBytes } from "node:crypto";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig, type TestHostOptions, type TestPage } from "@tessera/testing";

export const RP = "https://rp.test";
export const REDIRECT = `${RP}/signin-oidc`;

/** argon2id hash of "bob-password". */
export const BOB_HASH = "$argon2id$v=19$m=19456,t=2,p=1$5nttYVwmw8NZYcqx/WfqAA$jm7pjhK6/wYIQk7vO6pzEb+tJ4ULgPV0u8KuEWs4Q88";

export function baseConfig(): TestHostConfig {
  return {
    apiScopes: [{ name: "api1.read" }, { name: "api1.write" }],
    apiResources: [{ name: "urn:api1", scopes: ["api1.read", "api1.write"], secret: "api1-secret" }],
    users: [
      { sub: "1", username: "alice", password: "alice", claims: { name: "Alice Smith", email: "alice@example.com", role: ["admin"] } },
      { sub: "2", username: "bob", password_hash: BOB_HASH, claims: { name: "Bob" } },
    ],
    clients: [
      { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid profile email api1.read", token_endpoint_auth_method: "client_secret_basic" },
      { client_id: "post", client_secret: "post-secret", redirect_uris: [REDIRECT], scope: "openid profile", token_endpoint_auth_method: "client_secret_post" },
      { client_id: "spa", redirect_uris: [REDIRECT], scope: "openid profile", token_endpoint_auth_method: "none" },
      { client_id: "consent", client_secret: "consent-secret", redirect_uris: [REDIRECT], scope: "openid profile", require_consent: true, client_name: "Consent App" },
      { client_id: "nopkce", client_secret: "nopkce-secret", redirect_uris: [REDIRECT], scope: "openid", require_pkce: false },
    ],
  };
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** A test host, a browser bound to it, and helpers for the code flow. */
export class Flow {
  readonly browser: TestBrowser;
  now = Date.now();

  private constructor(readonly host: TestHost) {
    this.browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => this.now });
  }

  static async create(config: TestHostConfig = baseConfig(), clock?: () => number, options: Omit<TestHostOptions, "clock" | "listen"> = {}): Promise<Flow> {
    let flow: Flow | undefined;
    const host = await createTestHost(config, { ...options, clock: clock ?? (() => flow?.now ?? Date.now()) });
    flow = new Flow(host);
    return flow;
  }

  async metadata(): Promise<Record<string, unknown>> {
    const response = await this.host.fetch(new Request(`${this.host.issuer}/.well-known/openid-configuration`));
    return (await response.json()) as Record<string, unknown>;
  }

  /** An authorization URL for `client_id` with sensible defaults; pass undefined to drop a parameter. */
  async authorizeUrl(params: Record<string, string | undefined> = {}): Promise<{ url: URL; verifier: string; state: string; nonce: string }> {
    const { verifier, challenge } = pkce();
    const state = randomBytes(8).toString("hex");
    const nonce = randomBytes(8).toString("hex");
    const url = new URL(String((await this.metadata()).authorization_endpoint));
    const all: Record<string, string | undefined> = {
      client_id: "web",
      redirect_uri: REDIRECT,
      response_type: "code",
      scope: "openid profile email api1.read",
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: "S256",
      ...params,
    };
    for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
    return { url, verifier, state, nonce };
  }

  /** Navigates, stopping at the relying party. */
  go(url: URL | string): Promise<TestPage> {
    return this.browser.get(url, { stopAt: (u) => u.origin === RP });
  }

  login(page: TestPage, username = "alice", password = "alice"): Promise<TestPage> {
    return this.browser.submitForm(page, { fields: { username, password }, stopAt: (u) => u.origin === RP });
  }

  /** The parameters of the authorization response the browser stopped at. */
  static response(page: TestPage): URLSearchParams {
    if (!page.location) throw new Error(`not a redirect to the RP: ${page.status} ${page.url}\n${page.body.slice(0, 500)}`);
    return new URL(page.location).searchParams;
  }

  async token(form: Record<string, string>, auth?: { id: string; secret: string }): Promise<Response> {
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
    if (auth) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(auth.id)}:${encodeURIComponent(auth.secret)}`).toString("base64")}`;
    return this.host.fetch(new Request(String((await this.metadata()).token_endpoint), { method: "POST", headers, body: new URLSearchParams(form).toString() }));
  }

  /** Full sign-in for `web`: returns the code, verifier and nonce. */
  async signIn(params: Record<string, string | undefined> = {}, user = "alice", password = "alice") {
    const request = await this.authorizeUrl(params);
    let page = await this.go(request.url);
    if (page.query("input[name=password]")) page = await this.login(page, user, password);
    const response = Flow.response(page);
    return { ...request, code: response.get("code")!, response };
  }

  redeem(code: string, verifier: string, client = { id: "web", secret: "web-secret" }): Promise<Response> {
    return this.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }, client);
  }

  close(): Promise<void> {
    return this.host.close();
  }
}
