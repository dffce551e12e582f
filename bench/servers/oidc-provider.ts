/**
 * Benchmark peer: oidc-provider configured for the same work as Tessera: the same clients, JWT access
 * tokens with the same algorithm for the API, rotating refresh tokens, opaque tokens where Tessera issues
 * reference tokens, a signed-in user who is never asked for consent.
 */
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [alg = "ES256", variant] = process.argv.slice(2);
const port = Number(process.env.PORT);
const { privateKey } = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), alg, use: "sig", kid: "bench" };
const REDIRECT = "http://127.0.0.1/callback";
/** Clients whose tokens are opaque (no resource): `ui` calls userinfo, `ref` is introspected. */
const OPAQUE = new Set(["ui", "ref"]);

/**
 * For the device bench: its memory adapter without the 1000-entry LRU bound of oidc-provider's own (which
 * would drop the pool of device codes being polled); the same lookups, kept in a Map.
 */
class MapAdapter {
  static readonly entries = new Map<string, Record<string, unknown>>();
  static readonly index = new Map<string, string>();
  constructor(private readonly model: string) {}
  private key(id: string) {
    return `${this.model}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>) {
    MapAdapter.entries.set(this.key(id), payload);
    if (typeof payload.userCode === "string") MapAdapter.index.set(`userCode:${payload.userCode}`, id);
    if (typeof payload.uid === "string") MapAdapter.index.set(`uid:${payload.uid}`, id);
  }
  async find(id: string) {
    return MapAdapter.entries.get(this.key(id));
  }
  async findByUserCode(userCode: string) {
    const id = MapAdapter.index.get(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }
  async findByUid(uid: string) {
    const id = MapAdapter.index.get(`uid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }
  async consume(id: string) {
    const entry = MapAdapter.entries.get(this.key(id));
    if (entry) entry.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    MapAdapter.entries.delete(this.key(id));
  }
  async revokeByGrantId(grantId: string) {
    for (const [key, entry] of MapAdapter.entries) if (entry.grantId === grantId) MapAdapter.entries.delete(key);
  }
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  ...(variant === "device" ? { adapter: MapAdapter } : {}),
  clients: [
    { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "api1.read", id_token_signed_response_alg: alg },
    { client_id: "ref", client_secret: "ref-secret", grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "api1.read", id_token_signed_response_alg: alg },
    { client_id: "tv", token_endpoint_auth_method: "none", grant_types: ["urn:ietf:params:oauth:grant-type:device_code"], response_types: [], redirect_uris: [], scope: "openid api1.read", id_token_signed_response_alg: alg },
    ...[
      { client_id: "sso", grant_types: ["authorization_code"] },
      { client_id: "web", grant_types: ["authorization_code", "refresh_token"] },
      { client_id: "ui", grant_types: ["authorization_code"] },
    ].map((client) => ({
      ...client,
      client_secret: `${client.client_id}-secret`,
      response_types: ["code"],
      redirect_uris: [REDIRECT],
      scope: "openid profile offline_access api1.read",
      id_token_signed_response_alg: alg,
    })),
  ],
  jwks: { keys: [jwk as never] },
  scopes: ["openid", "profile", "offline_access", "api1.read"],
  claims: { openid: ["sub"], profile: ["name"] },
  pkce: { required: () => true },
  cookies: { keys: ["bench-cookie-key-0123456789abcdef"] },
  findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, name: "Alice Smith" }) }),
  // The signed-in user has consented already (the documented way to skip the consent prompt).
  loadExistingGrant: async (ctx: never) => {
    const oidc = (ctx as { oidc: { client: { clientId: string }; session: { accountId: string; grantIdFor(id: string): string | undefined }; provider: { Grant: never } } }).oidc;
    const Grant = oidc.provider.Grant as unknown as { find(id: string): Promise<unknown>; new (init: object): { addOIDCScope(s: string): void; addResourceScope(r: string, s: string): void; save(): Promise<string> } };
    const existing = oidc.session.grantIdFor(oidc.client.clientId);
    if (existing) return Grant.find(existing);
    const grant = new Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope("openid profile offline_access api1.read");
    grant.addResourceScope("urn:api1", "api1.read");
    await grant.save();
    return grant;
  },
  // Refresh tokens for every client allowed the grant, rotated on every use, as Tessera does.
  issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed("refresh_token"),
  rotateRefreshToken: () => true,
  features: {
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx: { oidc: { client?: { clientId: string } } }) => (OPAQUE.has(ctx.oidc.client?.clientId ?? "") ? undefined : "urn:api1"),
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: "api1.read", audience: "urn:api1", accessTokenFormat: "jwt", jwt: { sign: { alg } } }),
    },
  },
} as never);
const server = provider.listen(port, "127.0.0.1", () => process.stdout.write(`listening on http://127.0.0.1:${port}\n`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
