import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { clientMetadataProblems, clientMetadataShapeProblems, isStorableText, STORE_LIMITS, type ClientMetadata } from "@tessera/server";
import { createRequire } from "node:module";
import type * as Zod from "zod";
import { addressList } from "./client-address.ts";

// zod's CommonJS build: the same code, but its ES module build is some 95 modules (every locale), which
// leaves `tessera start` about 5 MB larger at idle on Node 20.
const { z } = createRequire(import.meta.url)("zod") as typeof Zod;

const seconds = z.number().int().min(0);

/** The API scope that opens the admin API (contract §5); defined by Tessera when `admin` is configured. */
export const ADMIN_SCOPE = "tessera.admin";
const absoluteUrl = z.string().refine((v) => {
  try {
    const url = new URL(v);
    return !url.hash && (url.protocol === "https:" || url.protocol === "http:" || /^[a-z][a-z0-9+.-]*:$/.test(url.protocol));
  } catch {
    return false;
  }
}, "must be an absolute URL without a fragment");

/** An identifier that ends up in a store column: bounded by it, and text every store keeps (no NUL, no lone surrogate). */
const storedId = (max: number) => z.string().min(1).max(max).refine(isStorableText, "must not contain NUL or unpaired surrogate characters");

/** Paths (below `claims`) of strings that hold NUL or a lone surrogate: a claim may become a stored display name. */
function unstorableStrings(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value === "string") return isStorableText(value) ? [] : [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => unstorableStrings(v, [...path, i]));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => unstorableStrings(v, [...path, k]));
  return [];
}

/** Where the management listener binds when `management` names no port or host. */
export const MANAGEMENT_DEFAULTS = { port: 9464, host: "127.0.0.1" } as const;

const signingAlgorithm = z.enum(["RS256", "PS256", "ES256", "EdDSA"]);

/** Client entries are checked by the server's one client validator (in superRefine, with the config's scopes and keys). */
const clientSchema = z.custom<ClientMetadata>((value) => typeof value === "object" && value !== null && !Array.isArray(value), "must be an object");
const clientsSchema = z.array(clientSchema).superRefine((clients, ctx) =>
  clients.forEach((client, i) => {
    for (const problem of clientMetadataShapeProblems(client, { redirectUris: "absolute" })) ctx.addIssue({ code: "custom", path: [i, ...problem.path], message: problem.message });
  }),
);

/** An external identity provider (contract §15); OpenID Connect with `issuer`, else OAuth 2.0 with its endpoints. */
const externalProviderSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1 to 64 letters, digits, _ or -"),
    displayName: z.string().min(1).max(100).optional(),
    issuer: absoluteUrl.optional(),
    authorization_endpoint: absoluteUrl.optional(),
    token_endpoint: absoluteUrl.optional(),
    userinfo_endpoint: absoluteUrl.optional(),
    client_id: z.string().min(1).max(255),
    client_secret: z.string().min(1).optional(),
    token_endpoint_auth_method: z.enum(["client_secret_basic", "client_secret_post", "none"]).optional(),
    id_token_signed_response_alg: z.enum(["RS256", "PS256", "ES256", "EdDSA", "RS384", "RS512", "PS384", "PS512", "ES384", "ES512", "Ed25519"]).optional(),
    scope: z.string().max(1000).optional(),
    response_mode: z.enum(["query", "form_post"]).optional(),
    claims: z.record(z.string().min(1), z.string().min(1)).optional(),
    syncMode: z.enum(["import", "force"]).optional(),
    linking: z.enum(["subject", "verified-email"]).optional(),
    federatedSignOut: z.boolean().optional(),
    trustAmr: z.boolean().optional(),
    trustEmail: z.boolean().optional(),
  })
  .superRefine((p, ctx) => {
    const issue = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (!p.issuer && !(p.authorization_endpoint && p.token_endpoint && p.userinfo_endpoint)) issue(["issuer"], "give issuer (OpenID Connect) or authorization_endpoint, token_endpoint and userinfo_endpoint (OAuth 2.0)");
    if ((p.token_endpoint_auth_method ?? "client_secret_basic") !== "none" && !p.client_secret) issue(["client_secret"], "is required unless token_endpoint_auth_method is none");
    if (!p.issuer && p.linking === "verified-email") issue(["linking"], "verified-email needs an OpenID Connect provider");
  });

const userSchema = z.strictObject({
  sub: storedId(STORE_LIMITS.subject),
  username: z.string().min(1).max(200),
  password: z.string().min(1).optional(),
  password_hash: z.string().startsWith("$argon2id$", "must be an argon2id hash (tessera hash-password)").optional(),
  claims: z.record(z.string(), z.unknown()).optional(),
});

/** The config file (contract §2). Unknown keys are errors. */
export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    issuer: absoluteUrl,
    port: z.number().int().min(0).max(65535).optional(),
    host: z.string().optional(),
    /** Second listener for operators: /metrics, /healthz, /readyz (off when absent; loopback by default). */
    management: z.strictObject({ port: z.number().int().min(0).max(65535).optional(), host: z.string().min(1).optional() }).optional(),
    dataKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be 32 bytes, base64url").optional(),
    store: z.discriminatedUnion("kind", [
      z.strictObject({ kind: z.literal("memory") }),
      z.strictObject({ kind: z.literal("sqlite"), path: z.string().min(1) }),
      z.strictObject({ kind: z.literal("postgres"), url: z.string().min(1) }),
    ]).optional(),
    authentication: z
      .strictObject({ cookieLifetime: seconds.min(60).optional(), cookieSlidingExpiration: z.boolean().optional() })
      .optional(),
    keys: z
      .strictObject({
        algorithms: z.array(signingAlgorithm).min(1).optional(),
        rotationInterval: seconds.min(60).optional(),
        propagationTime: seconds.optional(),
        retentionTime: seconds.optional(),
      })
      .optional(),
    serverSideSessions: z
      .strictObject({
        enabled: z.boolean().optional(),
        userDisplayNameClaimType: z.string().min(1).optional(),
        removeExpiredSessions: z.boolean().optional(),
        removeExpiredSessionsFrequency: seconds.min(1).optional(),
        expiredSessionsTriggerBackchannelLogout: z.boolean().optional(),
      })
      .optional(),
    par: z
      .strictObject({ requestUriLifetime: seconds.min(1).max(600).optional(), required: z.boolean().optional(), maxPendingPerClient: z.number().int().min(1).max(1_000_000).optional() })
      .optional(),
    clientIdMetadataDocuments: z
      .strictObject({
        enabled: z.boolean().optional(),
        timeout: seconds.min(1).max(30).optional(),
        maxResponseBytes: z.number().int().min(1024).max(65536).optional(),
        minCacheTtl: seconds.optional(),
        maxCacheTtl: seconds.optional(),
        failureCacheTtl: seconds.optional(),
        maxCacheEntries: z.number().int().min(1).max(100_000).optional(),
        maxConcurrentFetches: z.number().int().min(1).max(10_000).optional(),
        maxConcurrentFetchesPerHost: z.number().int().min(1).max(1000).optional(),
        maxLookupsPerAddress: z.number().int().min(1).max(100_000).optional(),
        allowedScopes: z
          .array(z.string().min(1))
          .refine((scopes) => !scopes.some((s) => s.startsWith("tessera.")), { message: `may not hold ${ADMIN_SCOPE} or another tessera.* scope (the admin API is never open to metadata-document clients)` })
          .optional(),
      })
      .refine((c) => (c.minCacheTtl ?? 60) <= (c.maxCacheTtl ?? 86_400), { message: "minCacheTtl must not exceed maxCacheTtl", path: ["minCacheTtl"] })
      .optional(),
    deviceFlow: z
      .strictObject({ lifetime: seconds.min(10).max(3600).optional(), interval: seconds.min(1).max(60).optional(), userCodeLength: z.number().int().min(8).max(20).optional() })
      .optional(),
    tokenExchange: z.strictObject({ enabled: z.boolean().optional() }).optional(),
    dpop: z.strictObject({ requireNonce: z.boolean().optional(), proofLifetime: seconds.min(1).optional(), clockTolerance: seconds.max(60).optional() }).optional(),
    mtls: z
      .strictObject({
        enabled: z.boolean().optional(),
        port: z.number().int().min(0).max(65535).optional(),
        cert: z.string().optional(),
        key: z.string().optional(),
        clientCa: z.string().optional(),
        clientCertificateHeader: z.string().nullable().optional(),
      })
      .optional(),
    tokens: z
      .strictObject({
        authorizationCodeLifetime: seconds.min(1).optional(),
        idTokenLifetime: seconds.min(1).optional(),
        accessTokenLifetime: seconds.min(1).optional(),
      })
      .optional(),
    admin: z.strictObject({ role: z.string().min(1) }).optional(),
    trustedProxies: z.number().int().min(0).max(10).optional(),
    trustedProxyHeader: z.enum(["x-forwarded-for", "forwarded"]).optional(),
    trustedProxyAddresses: z
      .array(
        z.string().refine((entry) => {
          try {
            addressList([entry]);
            return true;
          } catch {
            return false;
          }
        }, "must be an IPv4 or IPv6 address or CIDR range"),
      )
      .min(1)
      .optional(),
    outbound: z
      .strictObject({ allowLoopback: z.boolean().optional(), allowPrivateNetworks: z.boolean().optional(), timeout: seconds.min(1).optional(), maxResponseBytes: z.number().int().min(1024).optional(), ca: z.string().min(1).optional() })
      .optional(),
    loginThrottling: z
      .strictObject({ window: seconds.min(1).optional(), perAccount: z.number().int().min(1).optional(), perAddress: z.number().int().min(1).optional() })
      .optional(),
    clientAuthThrottling: z
      .union([
        z.literal(false),
        z.strictObject({ window: seconds.min(1).optional(), maxPerClient: z.number().int().min(1).optional(), maxPerAddress: z.number().int().min(1).optional() }),
      ])
      .optional(),
    limits: z
      .strictObject({
        maxFormBytes: z.number().int().min(1024).max(10_485_760).optional(),
        maxParameterLength: z.number().int().min(256).max(1_048_576).optional(),
        maxRequestObjectLength: z.number().int().min(256).max(1_048_576).optional(),
        maxParameters: z.number().int().min(16).max(1000).optional(),
        requestTimeout: seconds.min(1).max(600).optional(),
      })
      .optional(),
    logout: z.strictObject({ backChannelTimeout: seconds.min(1).optional(), backChannelRetries: z.number().int().min(0).max(5).optional() }).optional(),
    identityResources: z
      .array(
        z.union([
          z.enum(["openid", "profile", "email", "address", "phone", "offline_access"]),
          z.strictObject({ name: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "not a valid scope name"), userClaims: z.array(z.string().min(1)), displayName: z.string().optional() }),
        ]),
      )
      .optional(),
    apiScopes: z
      .array(z.strictObject({ name: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "not a valid scope name"), displayName: z.string().optional(), description: z.string().optional(), userClaims: z.array(z.string().min(1)).optional() }))
      .optional(),
    apiResources: z
      .array(z.strictObject({ name: z.string().min(1), scopes: z.array(z.string()), secret: z.string().optional(), userClaims: z.array(z.string().min(1)).optional() }))
      .optional(),
    users: z.array(userSchema).optional(),
    clients: clientsSchema.optional(),
    /** Per-process cache of stored clients (seconds; a change elsewhere is seen within ttl). */
    clientCache: z.strictObject({ ttl: seconds.max(300).optional(), negativeTtl: seconds.max(300).optional(), maxEntries: z.number().int().min(0).max(1_000_000).optional() }).optional(),
    /** Dynamic client registration (RFC 7591/7592), contract §13. */
    registration: z
      .strictObject({
        enabled: z.boolean().optional(),
        initialAccessToken: z.string().min(1).nullable().optional(),
        allowedScopes: z.array(z.string().min(1)).optional(),
        allowedGrantTypes: z.array(z.enum(["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"])).optional(),
        rateLimit: z.strictObject({ window: seconds.min(1).optional(), max: z.number().int().min(1).optional(), networkMax: z.number().int().min(1).optional(), totalMax: z.number().int().min(1).optional() }).optional(),
        softwareStatement: z
          .strictObject({ jwks: z.strictObject({ keys: z.array(z.looseObject({ kty: z.string() })).min(1) }), issuer: z.string().min(1).optional(), required: z.boolean().optional() })
          .optional(),
      })
      .optional(),
    accounts: z
      .strictObject({
        registration: z.boolean().optional(),
        emailVerification: z.boolean().optional(),
        passwordReset: z.boolean().optional(),
        verificationLinkLifetime: seconds.min(60).max(604_800).optional(),
        resetLinkLifetime: seconds.min(60).max(86_400).optional(),
        /** Accounts in the store beside the config's `users` (default true; false: config users only). */
        store: z.boolean().optional(),
        /** argon2id parameters for new hashes; stored hashes with other parameters are rehashed at sign-in. */
        passwordHashing: z
          .strictObject({
            memoryCost: z.number().int().min(1024).max(4_194_304).optional(),
            timeCost: z.number().int().min(1).max(20).optional(),
            parallelism: z.number().int().min(1).max(16).optional(),
          })
          .optional(),
        minPasswordLength: z.number().int().min(1).max(128).optional(),
        /** Second factors: TOTP with recovery codes, passkeys, and the "second factor required" policy. */
        mfa: z.strictObject({ totp: z.boolean().optional(), passkeys: z.boolean().optional(), required: z.boolean().optional() }).optional(),
      })
      .optional(),
    smtp: z
      .strictObject({
        url: z.string().refine((v) => /^smtps?:\/\/[^/]/.test(v), "must be an smtp:// or smtps:// URL"),
        from: z.string().min(3).max(320).refine((v) => !/[\r\n]/.test(v), "must be one line"),
        timeout: seconds.min(1).max(120).optional(),
      })
      .optional(),
    externalProviders: z.array(externalProviderSchema).optional(),
  })
  .superRefine((config, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (config.mtls?.enabled) {
      if (!config.mtls.cert) issue(["mtls", "cert"], "the mTLS listener needs a certificate");
      if (!config.mtls.key) issue(["mtls", "key"], "the mTLS listener needs a key");
    }
    // Behind a proxy the mTLS aliases are the issuer's plain URLs, where the header is believed only from a trusted proxy.
    if (config.mtls?.enabled && config.mtls.clientCertificateHeader && !config.trustedProxies) {
      issue(["mtls", "clientCertificateHeader"], "is honoured only from a trusted proxy: set trustedProxies (and trustedProxyAddresses), or remove it");
    }
    if (config.trustedProxyAddresses && !config.trustedProxies) issue(["trustedProxyAddresses"], "needs trustedProxies");
    if (config.management) {
      const port = config.management.port ?? MANAGEMENT_DEFAULTS.port;
      if (port !== 0 && port === (config.port ?? 5000)) issue(["management", "port"], "must differ from port (the public listener)");
      if (port !== 0 && config.mtls?.enabled && port === (config.mtls.port ?? 5443)) issue(["management", "port"], "must differ from mtls.port");
    }
    const issuer = new URL(config.issuer);
    if (issuer.protocol !== "https:" && issuer.protocol !== "http:") issue(["issuer"], "must be an http(s) URL");
    if (issuer.search) issue(["issuer"], "must not have a query");
    if (config.apiScopes?.some((s) => s.name === ADMIN_SCOPE)) issue(["apiScopes"], `${ADMIN_SCOPE} is defined by Tessera when admin is configured`);
    const identityNames = (config.identityResources ?? ["openid", "profile", "email", "offline_access"]).map((r) => (typeof r === "string" ? r : r.name));
    const scopes = new Set([...identityNames, ...(config.apiScopes ?? []).map((s) => s.name), ...(config.admin ? [ADMIN_SCOPE] : [])]);
    const seen = new Set<string>();
    [...identityNames, ...(config.apiScopes ?? []).map((s) => s.name)].forEach((name) => {
      if (seen.has(name)) issue([], `scope ${name} is defined twice`);
      seen.add(name);
    });
    (config.clientIdMetadataDocuments?.allowedScopes ?? []).forEach((scope, i) => {
      if (!scopes.has(scope)) issue(["clientIdMetadataDocuments", "allowedScopes", i], `unknown scope ${scope}`);
    });
    (config.apiResources ?? []).forEach((resource, i) =>
      resource.scopes.forEach((scope, j) => {
        if (!scopes.has(scope)) issue(["apiResources", i, "scopes", j], `unknown scope ${scope}`);
      }),
    );
    const algorithms = config.keys?.algorithms ?? ["RS256"];
    const rotation = { rotationInterval: 7_776_000, propagationTime: 1_209_600, ...config.keys };
    if (rotation.propagationTime >= rotation.rotationInterval) issue(["keys", "propagationTime"], "must be shorter than keys.rotationInterval");
    (config.registration?.allowedScopes ?? []).forEach((scope, i) => {
      if (!scopes.has(scope)) issue(["registration", "allowedScopes", i], `unknown scope ${scope}`);
      if (scope === ADMIN_SCOPE) issue(["registration", "allowedScopes", i], `${ADMIN_SCOPE} is never given to registered clients`);
    });
    const providerIds = new Set<string>();
    (config.externalProviders ?? []).forEach((provider, i) => {
      if (providerIds.has(provider.id)) issue(["externalProviders", i, "id"], `duplicate id ${provider.id}`);
      providerIds.add(provider.id);
    });
    const ids = new Set<string>();
    const rules = { scopes, signingAlgorithms: algorithms, mtls: { enabled: config.mtls?.enabled ?? false, clientCa: Boolean(config.mtls?.clientCa) }, redirectUris: "absolute" as const, allowClientSecretJwt: true };
    (config.clients ?? []).forEach((client, i) => {
      for (const problem of clientMetadataProblems(client, { ...rules, hasSecret: typeof client.client_secret === "string" && client.client_secret.length > 0 })) {
        issue(["clients", i, ...problem.path], problem.message);
      }
      if (typeof client.client_id !== "string") return;
      if (ids.has(client.client_id)) issue(["clients", i, "client_id"], `duplicate client_id ${client.client_id}`);
      ids.add(client.client_id);
    });
    const subs = new Set<string>();
    const usernames = new Set<string>();
    (config.users ?? []).forEach((user, i) => {
      if (subs.has(user.sub)) issue(["users", i, "sub"], `duplicate sub ${user.sub}`);
      if (usernames.has(user.username.toLowerCase())) issue(["users", i, "username"], `duplicate username ${user.username}`);
      subs.add(user.sub);
      for (const path of unstorableStrings(user.claims ?? {})) issue(["users", i, "claims", ...path], "must not contain NUL or unpaired surrogate characters");
      usernames.add(user.username.toLowerCase());
      if ((user.password === undefined) === (user.password_hash === undefined)) {
        issue(["users", i], "give exactly one of password and password_hash");
      }
    });
  });

/** A validated config. */
export type TesseraConfig = Zod.infer<typeof configSchema>;

/** One config problem with its JSON path, e.g. `clients[0].redirect_uris[1]`. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** A config that could not be loaded; `problems` lists every reason. */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.path || "(root)"}: ${p.message}`).join("\n"));
    this.name = "ConfigError";
  }
}

function jsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out;
}

/** Validates parsed JSON; throws {@link ConfigError} listing every problem. */
export function parseConfig(json: unknown): TesseraConfig {
  const result = configSchema.safeParse(json);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const base = jsonPath(issue.path);
      if (issue.code === "unrecognized_keys") {
        return { path: base, message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}` };
      }
      return { path: base, message: issue.message };
    }),
  );
}

/** Environment overrides of contract §1. */
export interface ConfigOverrides {
  issuer?: string;
  port?: number;
}

/** Reads, parses and validates a config file; relative paths in it resolve against its folder. */
export function loadConfigFile(file: string, overrides: ConfigOverrides = {}): { config: TesseraConfig; baseDir: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError([{ path: "", message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([{ path: "", message: `not valid JSON: ${(error as Error).message}` }]);
  }
  if (json && typeof json === "object" && !Array.isArray(json)) {
    if (overrides.issuer !== undefined) (json as Record<string, unknown>).issuer = overrides.issuer;
    if (overrides.port !== undefined) (json as Record<string, unknown>).port = overrides.port;
  }
  return { config: parseConfig(json), baseDir: dirname(resolve(file)) };
}
