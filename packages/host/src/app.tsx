import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createArgon2Hasher, ProtocolError, createMemoryStore, createPostgresStore, createProvider, createSqliteStore, DataProtector, FailureThrottle, SecondFactorService, isLoopbackIpRedirect, isStoreUnavailable, meetsAcr, normalizeUsername, requestTelemetry, StoreValueError, UserDirectory, type EventSink, type Logger, type Provider, type RequestContext, type SessionInfo, type Store, type TesseraEvent } from "@tessera/server";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import type { Child } from "hono/jsx";
import { ADMIN_SCOPE, type TesseraConfig } from "./config.ts";
import { CsrfProtection } from "./csrf.ts";
import { resolveDataKey, type DataKeySource } from "./data-key.ts";
import { ConsentPage } from "./pages/consent.tsx";
import { DeviceCodePage, DeviceConfirmPage } from "./pages/device.tsx";
import { GrantsPage } from "./pages/grants.tsx";
import { HomePage } from "./pages/home.tsx";
import { Layout } from "./pages/layout.tsx";
import { LoginPage } from "./pages/login.tsx";
import { LinkedAccountsPage } from "./pages/linked-accounts.tsx";
import { LogoutPromptPage, SignedOutPage } from "./pages/logout.tsx";
import { MessagePage } from "./pages/message.tsx";
import { SessionsPage } from "./pages/sessions.tsx";
import { ClientFormPage, ClientSecretPage, ClientsPage, DeleteClientPage, metadataFromForm, type FormValues } from "./pages/clients.tsx";
import { adminApi, type AdminAccess } from "./admin-api.ts";
import { createConsoleMailer, createSmtpMailer } from "./mail.ts";
import { mountSelfService, selfServiceSettings, type SelfService } from "./self-service.tsx";
import { UserPage, UsersPage } from "./pages/users.tsx";
import { DEFAULT_THROTTLE, LoginThrottle } from "./throttle.ts";
import { DeviceCookies } from "./device-cookie.ts";
import { addressList, clientAddress, type ProxyTrust } from "./client-address.ts";
import { clientCertificateFrom, onMtlsListener, readMtlsMaterial, type MtlsMaterial } from "./mtls.ts";
import type { HttpBindings } from "@hono/node-server";
import { createMetrics, type HostMetrics } from "./metrics.ts";
import { mfaSettings, secondFactors } from "./second-factors.tsx";
import { AccountPage } from "./pages/account.tsx";

/** Options of {@link createHostApp} beyond the config file. */
export interface HostOptions {
  /** Folder that relative paths in the config resolve against (default: the working directory). */
  baseDir?: string;
  /** Environment for `TESSERA_DATA_KEY` (default: process.env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Milliseconds clock, for tests. */
  clock?: () => number;
  /** Receives audit events (default: the logger). */
  events?: EventSink;
}

/** The identity server as one request handler: the provider plus the login, consent and home pages. */
export interface HostApp {
  /** `env` carries the Node request (its TLS socket gives the client certificate on the mTLS listener). */
  fetch(request: Request, env?: HttpBindings): Promise<Response>;
  /** The mTLS material when `mtls.enabled`, for the listener. */
  mtls?: MtlsMaterial;
  provider: Provider;
  /** The accounts: the config's users beside the stored ones (the CLI's `tessera users` works through it). */
  users: UserDirectory;
  /** Prometheus metrics, when `management` is configured (the management listener serves them). */
  metrics?: HostMetrics;
  issuer: string;
  dataKeySource: DataKeySource;
  close(): Promise<void>;
}

const MAX_PAGE_FORM_BYTES = 16 * 1024;
const INVALID_CREDENTIALS = "Invalid username or password.";
const TOO_MANY_ATTEMPTS = "Too many failed sign-ins. Wait a few minutes and try again.";
const UNKNOWN_USER_CODE = "That code is not valid or has expired. Check the code on your device and try again.";
const TOO_MANY_CODES = "Too many wrong codes. Wait a few minutes and try again.";

async function openStore(config: TesseraConfig, baseDir: string): Promise<{ store: Store; dataDir?: string; shared?: boolean }> {
  const kind = config.store ?? { kind: "sqlite", path: "./data/tessera.db" };
  if (kind.kind === "memory") return { store: createMemoryStore() };
  if (kind.kind === "postgres") return { store: await createPostgresStore(kind.url), shared: true };
  const path = resolve(baseDir, kind.path);
  return { store: await createSqliteStore(path), dataDir: join(path, "..") };
}

/** Characters Node refuses in a header value (its ERR_INVALID_CHAR check). */
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * The response, or a plain server_error when one of its header values could not be written: the Node
 * adapter would otherwise answer a 500 whose body is the raw error message.
 */
function writableResponse(response: Response, logger: Logger | undefined): Response {
  for (const [name, value] of response.headers) {
    if (INVALID_HEADER_VALUE.test(value)) {
      logger?.error({ header: name }, "a response header value has characters HTTP cannot carry");
      return new Response(JSON.stringify({ error: "server_error" }), { status: 500, headers: { "content-type": "application/json", "cache-control": "no-store" } });
    }
  }
  return response;
}

/** Builds the host from a validated config. */
export async function createHostApp(config: TesseraConfig, hostOptions: HostOptions = {}): Promise<HostApp> {
  const baseDir = hostOptions.baseDir ?? process.cwd();
  const { store, dataDir, shared } = await openStore(config, baseDir);
  const dataKey = resolveDataKey(config.dataKey, hostOptions.env ?? process.env, dataDir);
  if (shared && dataKey.source === "ephemeral") {
    await store.close();
    // Every process on a shared database must protect cookies and keys with the same key.
    throw new Error("the postgres store needs a data key shared by every process: set TESSERA_DATA_KEY or dataKey");
  }
  // Metrics count what the audit events say; prom-client loads only when a management listener is on.
  const metrics = config.management ? await createMetrics() : undefined;
  const logEvent: EventSink = (event) => hostOptions.logger?.info({ event }, event.type);
  const events: EventSink | undefined = metrics
    ? (event) => {
        metrics.event(event);
        (hostOptions.events ?? logEvent)(event);
      }
    : hostOptions.events;
  const emitHost = (event: TesseraEvent) => (events ?? logEvent)({ ...event, at: new Date((hostOptions.clock ?? Date.now)()).toISOString() });
  const clockSeconds = () => Math.floor((hostOptions.clock ?? Date.now)() / 1000);
  const selfServiceConfig = selfServiceSettings(config.accounts);
  // Mail: SMTP when configured, else the console transport (development: links are printed).
  const mailer = config.smtp ? await createSmtpMailer(config.smtp, hostOptions.logger) : createConsoleMailer(hostOptions.logger);
  // Fixed accounts from the config beside the stored ones (accounts.store, default on). Disabling or deleting
  // an account ends its server-side sessions (with back-channel logout) and revokes its tokens; cookie-only
  // sessions end on their next use (UserDirectory.isSessionValid).
  const users = new UserDirectory({
    store: (config.accounts?.store ?? true) ? store.accounts : undefined,
    fixed: config.users ?? [],
    hasher: createArgon2Hasher(config.accounts?.passwordHashing),
    minPasswordLength: config.accounts?.minPasswordLength,
    clock: hostOptions.clock,
    emit: emitHost,
    clockMs: () => (hostOptions.clock ?? Date.now)(),
    onDeactivated: async (sub) => {
      await provider.removeSessions({ subject: sub, revokeTokens: true, sendBackchannelLogout: true });
      await provider.revokeGrants(sub);
    },
    // A changed password: every session but the user's own ends (back-channel logout to its clients), and
    // every token and code of the account goes except the kept session's; without a kept session (a reset,
    // an administrator, the CLI) consents go too.
    onPasswordChanged: async (sub, keep) => {
      if (keep === undefined) {
        await provider.removeSessions({ subject: sub, revokeTokens: true, sendBackchannelLogout: true });
        await provider.revokeGrants(sub);
        return;
      }
      let cursor: string | undefined;
      const others: string[] = [];
      do {
        const page = await provider.querySessions({ subject: sub, cursor, count: 200 });
        for (const s of page.sessions) if (s.subject === sub && s.sessionId !== keep) others.push(s.sessionId);
        cursor = page.next ?? undefined;
      } while (cursor);
      for (const sessionId of others) await provider.removeSessions({ sessionId, subject: sub, revokeTokens: true, sendBackchannelLogout: true });
      for (;;) {
        const batch = await store.grants.findAll({ subject: sub }, 500);
        // The user's own consents stay (they are decisions, not credentials); tokens of other sessions go.
        const gone = batch.filter((grant) => grant.sessionId !== keep && grant.kind !== "consent");
        for (const grant of gone) await store.grants.remove(grant.key);
        if (batch.length < 500 || gone.length === 0) break;
      }
    },
  });
  const throttle = new LoginThrottle(store.grants, { ...DEFAULT_THROTTLE, ...config.loginThrottling }, () => Math.floor((hostOptions.clock ?? Date.now)() / 1000));
  const mtls = config.mtls?.enabled ? readMtlsMaterial(config.mtls, baseDir) : undefined;
  // Behind a proxy (a certificate header configured) the mTLS endpoints are the issuer's own URLs.
  const issuerUrl = new URL(config.issuer);
  const base = issuerUrl.pathname.replace(/\/+$/, "");
  const mtlsBaseUrl = mtls
    ? config.mtls?.clientCertificateHeader
      ? config.issuer.replace(/\/+$/, "")
      : `https://${issuerUrl.hostname}:${config.mtls?.port ?? 5443}${base}`
    : undefined;
  // The admin API is an API of its own: scope tessera.admin, audience {issuer}/admin/api.
  const adminAudience = `${config.issuer.replace(/\/+$/, "")}/admin/api`;
  const apiScopes = [...(config.apiScopes ?? []), ...(config.admin ? [{ name: ADMIN_SCOPE, description: "Manage Tessera (sessions)", userClaims: ["role"] }] : [])];
  const apiResources = [...(config.apiResources ?? []), ...(config.admin ? [{ name: adminAudience, scopes: [ADMIN_SCOPE] }] : [])];
  const provider = createProvider({
    issuer: config.issuer,
    store,
    dataKey: dataKey.key,
    clients: config.clients ?? [],
    identityResources: config.identityResources,
    apiScopes,
    apiResources,
    serverSideSessions: config.serverSideSessions,
    dpop: config.dpop,
    par: config.par,
    deviceFlow: config.deviceFlow,
    tokenExchange: config.tokenExchange,
    ...(mtls ? { mtls: { clientCa: mtls.clientCa, endpointBaseUrl: mtlsBaseUrl } } : {}),
    users,
    ...(selfServiceConfig.registration && users.store ? { interaction: { registrationUrl: "/account/register" } } : {}),
    // Step-up goes as far as the second factors this host offers (none without the store's accounts).
    authentication: { ...config.authentication, requireSecondFactor: config.accounts?.mfa?.required ?? false, acrValues: offeredAcrValues(store, config.accounts?.mfa) },
    keys: config.keys,
    tokens: config.tokens,
    logout: config.logout,
    outbound: config.outbound && { ...config.outbound, ca: config.outbound.ca === undefined ? undefined : readOutboundCa(resolve(baseDir, config.outbound.ca)) },
    clientIdMetadataDocuments: config.clientIdMetadataDocuments,
    limits: config.limits && { maxFormBytes: config.limits.maxFormBytes, maxParameterLength: config.limits.maxParameterLength, maxParameters: config.limits.maxParameters, maxRequestObjectLength: config.limits.maxRequestObjectLength },
    clientAuthThrottling: config.clientAuthThrottling,
    clientCache: config.clientCache,
    registration: config.registration,
    externalProviders: config.externalProviders,
    logger: hostOptions.logger,
    events,
    observer: metrics,
    clock: hostOptions.clock,
  });
  // What the connection tells about a request: its certificate (mTLS listener, or a trusted proxy's header)
  // and the client's address after the trusted-proxy rules.
  const certificateHeader = config.mtls?.enabled ? config.mtls.clientCertificateHeader : undefined;
  const proxyTrust: ProxyTrust = {
    hops: config.trustedProxies ?? 0,
    header: config.trustedProxyHeader ?? "x-forwarded-for",
    ...(config.trustedProxyAddresses ? { addresses: addressList(config.trustedProxyAddresses) } : {}),
  };
  if (certificateHeader && !config.trustedProxyAddresses) {
    hostOptions.logger?.warn({ header: certificateHeader }, "mtls.clientCertificateHeader is believed from any direct peer of the plain listener: set trustedProxyAddresses to the proxies' addresses");
  }
  const requestContext = (request: Request, env: Partial<HttpBindings> | undefined): RequestContext => ({
    clientCertificate: clientCertificateFrom(env, request, certificateHeader, proxyTrust),
    clientAddress: clientAddress(request, env, proxyTrust),
    mtlsListener: mtls !== undefined && onMtlsListener(env),
  });
  const pageProtector = new DataProtector(dataKey.key);
  const csrf = new CsrfProtection(pageProtector.subkey("csrf"), issuerUrl.protocol === "https:", base || "/");
  const devices = new DeviceCookies(pageProtector.subkey("device-cookie"), issuerUrl.protocol === "https:", base || "/", () => Math.floor((hostOptions.clock ?? Date.now)() / 1000));
  // Chromium applies form-action to the redirects that follow a form post, and login and consent end in
  // a redirect to a client, so the clients' redirect origins are allowed as form targets.
  const addFormTargets = (targets: Set<string>, uris: readonly string[]) => {
    for (const uri of uris) {
      let url: URL;
      try {
        url = new URL(uri);
      } catch {
        continue;
      }
      targets.add(url.protocol === "http:" || url.protocol === "https:" ? url.origin : url.protocol);
      // RFC 8252 §7.3: a loopback IP redirect URI matches any port (with PKCE), so the form target does too;
      // the matcher's own predicate decides. (`http://[::1]:*` is no valid CSP source: browsers ignore it.)
      if (isLoopbackIpRedirect(uri)) targets.add(`http://${url.hostname}:*`);
    }
    return targets;
  };
  const formTargets = addFormTargets(new Set<string>(["'self'"]), (config.clients ?? []).flatMap((client) => client.redirect_uris ?? []));
  // The external-provider button and the logout form end in redirects to the providers (authorize, end session).
  for (const external of config.externalProviders ?? []) {
    for (const uri of [external.issuer, external.authorization_endpoint]) if (uri) formTargets.add(new URL(uri).origin);
  }
  const formAction = [...formTargets].join(" ");
  /** Form targets of a page serving one client's request: a stored client's redirect origins are not in the static list. */
  const formActionFor = (redirectUris: readonly string[] | undefined) => (redirectUris?.length ? [...addFormTargets(new Set(formTargets), redirectUris)].join(" ") : formAction);

  /** Renders a page; `body` may take the CSP nonce (for a page's own script), `frameSrc` allows iframes. */
  const render = async (title: string, body: Child | ((nonce: string) => Child | Promise<Child>), status = 200, cookies: string[] = [], frameSrc: string[] = [], pageFormAction = formAction) => {
    const nonce = randomBytes(16).toString("base64url");
    const content = typeof body === "function" ? await body(nonce) : body;
    const html = "<!doctype html>" + (await (<Layout title={title} nonce={nonce}>{content}</Layout>).toString());
    const frames = frameSrc.length ? frameSrc.join(" ") : "'none'";
    const headers = new Headers({
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; frame-src ${frames}; form-action ${pageFormAction}; frame-ancestors 'none'; base-uri 'none'`,
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    });
    for (const cookie of cookies) headers.append("set-cookie", cookie);
    return new Response(html, { status, headers });
  };
  const redirectTo = (location: string, cookies: string[] = []) => {
    const headers = new Headers({ location, "cache-control": "no-store" });
    for (const cookie of cookies) headers.append("set-cookie", cookie);
    return new Response(null, { status: 302, headers });
  };
  /**
   * After a form post, a redirect to an origin the pages' form-action does not list (a provider added at run
   * time) would be blocked by Chromium: such a target is reached from a page that moves on by itself instead.
   */
  const leaveTo = (location: string, cookies: string[] = []) => {
    const origin = new URL(location, issuerUrl).origin;
    if (origin === issuerUrl.origin || formTargets.has(origin)) return redirectTo(location, cookies);
    const escaped = location.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
    const headers = new Headers({ "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'", "x-frame-options": "DENY", "referrer-policy": "no-referrer" });
    for (const cookie of cookies) headers.append("set-cookie", cookie);
    return new Response(`<!doctype html><meta http-equiv="refresh" content="0;url=${escaped}"><title>Continue</title><p><a id="continue" href="${escaped}">Continue</a></p>`, { status: 200, headers });
  };
  // A form's CSRF token is bound to the session (its sid) or, before sign-in, to the pending request it serves.
  const csrfBinding = async (c: Context, pending?: string) => {
    const session = await provider.getSession(c.req.raw);
    return session ? `sid:${session.sid}` : `pre:${pending ?? ""}`;
  };
  const csrfFor = async (c: Context, pending?: string) => {
    const issued = csrf.issue(getCookie(c, csrf.cookieName), await csrfBinding(c, pending));
    return { token: issued.token, cookies: issued.cookie ? [issued.cookie] : [] };
  };
  const csrfOk = async (c: Context, form: Record<string, string>, pending?: string) =>
    csrf.verify(getCookie(c, csrf.cookieName), form.csrf, await csrfBinding(c, pending));
  const formOf = async (c: Context): Promise<Record<string, string>> => {
    // A body that is not a valid form is an empty form: the CSRF check then refuses it (400), never a 500.
    const body = await c.req.parseBody().catch(() => ({}) as Record<string, string | File>);
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(body)) if (typeof value === "string") out[name] = value;
    return out;
  };
  const csrfFailed = (c: Context) =>
    render("Please try again", <MessagePage base={base} heading="Please try again" text="This form expired or was not sent from this site. Go back, reload the page and try again." />, 400);

  const app = new Hono();
  const logger = hostOptions.logger;
  const nowSeconds = () => Math.floor((hostOptions.clock ?? Date.now)() / 1000);
  // Second factors and passkeys (issue 20): their credentials live in the store's accounts.
  const mfaConfig = mfaSettings(config.accounts?.mfa);
  const mfa = store.accounts
    ? secondFactors(
        {
          base,
          secure: issuerUrl.protocol === "https:",
          provider,
          service: new SecondFactorService({ accounts: store.accounts, grants: store.grants, protector: pageProtector, issuer: config.issuer, clock: hostOptions.clock }),
          settings: mfaConfig,
          protector: pageProtector,
          throttle: new FailureThrottle(store.grants, nowSeconds),
          account: async (sub) => {
            const found = await users.get(sub);
            if (!found || found.disabled) return undefined;
            const name = typeof found.claims.name === "string" ? found.claims.name : undefined;
            return { username: found.username, ...(name !== undefined ? { name } : {}) };
          },
          emit: emitHost,
          now: nowSeconds,
        },
        {
          render,
          redirectTo,
          csrfFor,
          csrfOk,
          csrfFailed,
          formOf,
          returnTarget: async (returnUrl) => {
            const details = returnUrl ? await provider.getInteraction(returnUrl) : undefined;
            const back = details?.returnUrl ?? (returnUrl && isLocalReturn(returnUrl) ? returnUrl : undefined);
            return { ...(back !== undefined ? { back } : {}), ...(details ? { details } : {}) };
          },
          deviceRequirement: async (c, userCode) => {
            const found = await provider.getDeviceRequest(userCode.slice(0, 100), { clientAddress: addressOf(c) });
            return found.status === "found" ? found.request : undefined;
          },
          limit: bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.text("request body too large", 413) }),
        },
      )
    : undefined;
  if (logger) {
    app.use(async (c, next) => {
      const started = performance.now();
      await next();
      // Path only (query strings carry codes and tokens), as sent: percent-encoded, so it cannot hold a
      // line break or a terminal escape.
      logger.info({ method: c.req.method, path: new URL(c.req.url).pathname, status: c.res.status, ms: Math.round(performance.now() - started) }, "request");
    });
  }
  // A redirect answering a form POST (login, consent, logout, ...) is a 303 (RFC 9110 §15.4.4; FAPI 2.0 SP
  // §5.3.2.2), so the browser follows with GET; redirects answering GET stay 302.
  app.use(async (c, next) => {
    await next();
    if (c.req.method === "POST" && c.res.status === 302) c.res = new Response(c.res.body, { status: 303, headers: c.res.headers });
  });
  // Spans and metrics for this host's pages; the provider observes the requests forwarded to it.
  app.use(requestTelemetry({ observer: metrics, passThrough: "/*" }));
  const limit = bodyLimit({ maxSize: MAX_PAGE_FORM_BYTES, onError: (c) => c.text("request body too large", 413) });

  // Administrators: users whose `role` claim holds admin.role (contract §4).
  const isAdmin = async (sub: string) => {
    if (!config.admin) return false;
    const role = (await users.findBySubject(sub))?.claims.role;
    return Array.isArray(role) ? role.includes(config.admin.role) : role === config.admin.role;
  };
  app.get(`${base}/`, async (c) => {
    const session = await provider.getSession(c.req.raw);
    const { token, cookies } = await csrfFor(c);
    const admin = session ? await isAdmin(session.sub) : false;
    return render("Home", <HomePage base={base} sub={session?.sub} name={session?.name} csrf={token} admin={admin} discoveryUrl={`${provider.issuer}/.well-known/openid-configuration`} account={selfService !== undefined} />, 200, cookies);
  });
  if (base) app.get(base, (c) => c.redirect(`${base}/`));

  // Pages of this host a login may return to; anything else must be a pending authorization request.
  const linkedAccountsPage = `${base}/account/providers`;
  const localReturn = new Set([`${base}/grants`, `${base}/serversidesessions`, `${base}/account`, linkedAccountsPage, `${base}/admin/clients`, `${base}/admin/users`]);
  // The verification page with its code (RFC 8628 §3.3), returned to once signed in.
  const devicePage = `${base}/device`;
  // A code found by the CSRF-checked POST comes back from the login page with a short-lived ticket (an
  // HMAC of the code and of this browser's CSRF cookie, which is SameSite=Lax: a cross-site <img> does not
  // send it, and nobody else can mint one for it), so the confirmation follows sign-in directly; a bare
  // GET only pre-fills the form.
  const lookupKey = pageProtector.subkey("device-lookup");
  const lookupTicket = (c: Context, userCode: string, expires = nowSeconds() + 600) =>
    `${expires}.${createHmac("sha256", lookupKey).update(`${expires}.${userCode}.`).update(getCookie(c, csrf.cookieName) ?? "").digest("base64url")}`;
  const ticketValid = (c: Context, userCode: string, ticket: string) => {
    const expires = /^(\d{1,12})\./.exec(ticket)?.[1];
    if (!expires || Number(expires) <= nowSeconds() || !getCookie(c, csrf.cookieName)) return false;
    const expected = Buffer.from(lookupTicket(c, userCode, Number(expires)));
    const given = Buffer.from(ticket);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  const deviceReturn = (userCode: string, ticket?: string) => `${devicePage}?user_code=${encodeURIComponent(userCode)}${ticket ? `&lookup=${ticket}` : ""}`;
  const isLocalReturn = (url: string) =>
    localReturn.has(url) || (url.startsWith(devicePage) && /^\/device\?user_code=[A-Za-z0-9-]{1,40}(&lookup=\d{1,12}\.[A-Za-z0-9_-]{43})?$/.test(url.slice(base.length)));
  app.get(`${base}/login`, async (c) => {
    const returnUrl = c.req.query("returnUrl");
    const details = returnUrl ? await provider.getInteraction(returnUrl) : undefined;
    const back = details?.returnUrl ?? (returnUrl && isLocalReturn(returnUrl) ? returnUrl : undefined);
    // A signed-in user whose session is too weak or too old for this request steps up (a second factor).
    const stepUp = c.req.query("another") === "1" ? undefined : await mfa?.stepUp(c, details, back);
    if (stepUp) return stepUp;
    const { token, cookies } = await csrfFor(c, back);
    const externalButtons = details ? await provider.externalProviders() : undefined;
    return render("Sign in", (nonce) => <LoginPage base={base} returnUrl={back} username={details?.loginHint} clientName={details?.client.clientName} clientHost={details?.client.metadataDocumentHost ?? details?.client.redirectHost} unverified={details?.client.unverified} csrf={token} registerUrl={selfService?.registrationUrl(back)} forgotUrl={selfService?.forgotUrl()} passkeyNonce={mfa?.passkeysOn ? nonce : undefined} providers={externalButtons} />, 200, cookies, [], formActionFor(details?.client.redirectUris));
  });

  // A button per external provider (contract §15): on to that provider for the pending request.
  app.post(`${base}/login/external`, limit, async (c) => {
    const form = await formOf(c);
    const details = form.returnUrl ? await provider.getInteraction(form.returnUrl) : undefined;
    if (!(await csrfOk(c, form, details?.returnUrl))) return csrfFailed(c);
    let target: { url: string; cookies: string[] } | undefined;
    try {
      target = details && form.provider ? await provider.startExternalSignIn(c.req.raw, form.provider, details.returnUrl) : undefined;
    } catch (error) {
      // The provider cannot be reached, or too many sign-ins are pending.
      if (error instanceof ProtocolError) return render("Please try again", <MessagePage base={base} heading="Please try again later" text={error.description ?? "The sign-in provider is not available right now."} />, 503);
      throw error;
    }
    if (!target) return render("Please try again", <MessagePage base={base} heading="Please try again" text="This sign-in request has expired or the provider is unknown. Return to the application and try again." />, 400);
    return leaveTo(target.url, target.cookies);
  });

  app.post(`${base}/login`, limit, async (c) => {
    const form = await formOf(c);
    const details = form.returnUrl ? await provider.getInteraction(form.returnUrl) : undefined;
    const back = details?.returnUrl ?? (form.returnUrl && isLocalReturn(form.returnUrl) ? form.returnUrl : undefined);
    if (!(await csrfOk(c, form, back))) return csrfFailed(c);
    const username = (form.username ?? "").slice(0, 200);
    const password = (form.password ?? "").slice(0, 1024);
    const address = clientAddress(c.req.raw, c.env as Partial<HttpBindings> | undefined, proxyTrust);
    const again = () => csrfFor(c, back);
    // A browser that signed in to this account before has its own counter (OWASP device cookies).
    // Counted by the name accounts are unique by (case and compatibility forms alike), stored or fixed.
    const accountKey = normalizeUsername(username);
    const device = username ? devices.deviceFor(getCookie(c, devices.name), accountKey) : undefined;
    // Taken before the password is checked (so parallel attempts count each other), refused when a limit
    // is used up, and the same for existing and unknown accounts.
    const attempt = await throttle.begin(accountKey, address, device);
    if (!attempt) {
      emitHost({ type: "sign_in.failed", reason: "throttled" });
      const { token, cookies } = await again();
      return render("Sign in", <LoginPage base={base} returnUrl={back} username={username} clientName={details?.client.clientName} clientHost={details?.client.metadataDocumentHost ?? details?.client.redirectHost} unverified={details?.client.unverified} providers={details ? await provider.externalProviders() : undefined} csrf={token} error={TOO_MANY_ATTEMPTS} />, 429, cookies, [], formActionFor(details?.client.redirectUris));
    }
    // Should the check throw, the attempt's slots stay held: it counts as a failure.
    // One answer for a wrong password, an unknown user and a disabled account.
    const user = username && password ? await users.verifyPassword(username, password) : undefined;
    if (!user) {
      const delay = await throttle.failed(attempt);
      // Never the submitted username: people type their password into it.
      emitHost({ type: "sign_in.failed", reason: "credentials" });
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const { token, cookies } = await again();
      return render("Sign in", <LoginPage base={base} returnUrl={back} username={username} clientName={details?.client.clientName} clientHost={details?.client.metadataDocumentHost ?? details?.client.redirectHost} unverified={details?.client.unverified} providers={details ? await provider.externalProviders() : undefined} csrf={token} error={INVALID_CREDENTIALS} />, 200, cookies, [], formActionFor(details?.client.redirectUris));
    }
    await throttle.succeeded(attempt);
    // An address still to verify blocks sign-in (with a resend button).
    const blocked = await selfService?.signInBlocked(c, user, back);
    if (blocked) return blocked;
    const name = typeof user.claims?.name === "string" ? user.claims.name : undefined;
    const secondStep = await mfa?.afterPassword(c, { sub: user.sub, ...(name !== undefined ? { name } : {}) }, { persistent: form.remember === "1", back, details }, [devices.issue(accountKey)]);
    if (secondStep) return secondStep;
    const { cookies } = await provider.signIn(c.req.raw, { sub: user.sub, name, amr: ["pwd"], idp: "local" }, { persistent: form.remember === "1" });
    return redirectTo(back ?? `${base}/`, [...cookies, devices.issue(accountKey)]);
  });

  app.get(`${base}/consent`, async (c) => {
    const returnUrl = c.req.query("returnUrl") ?? "";
    const details = await provider.getInteraction(returnUrl);
    if (!details) return render("Request expired", <MessagePage base={base} heading="Request expired" text="This request has expired. Return to the application and try again." />, 400);
    if (!(await provider.getSession(c.req.raw))) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(details.returnUrl)}`);
    const { token, cookies } = await csrfFor(c);
    const scopes = details.scopes.map((name) => ({ name, description: config.apiScopes?.find((s) => s.name === name)?.description }));
    return render("Allow access?", <ConsentPage base={base} clientName={details.client.clientName} clientHost={details.client.metadataDocumentHost ?? details.client.redirectHost} unverified={details.client.unverified} rememberable={details.client.metadataDocumentHost === undefined} scopes={scopes} returnUrl={details.returnUrl} csrf={token} />, 200, cookies, [], formActionFor(details.client.redirectUris));
  });

  app.post(`${base}/consent`, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    if (form.decision !== "allow" && form.decision !== "deny") return render("Please try again", <MessagePage base={base} heading="Please try again" text="Choose Allow or Deny." />, 400);
    const next = await provider.completeConsent(c.req.raw, form.returnUrl ?? "", form.decision === "allow", { remember: form.remember === "1" });
    if (!next) return render("Request expired", <MessagePage base={base} heading="Request expired" text="This request has expired or you are no longer signed in. Return to the application and try again." />, 400);
    return redirectTo(next);
  });

  // Device authorization (RFC 8628 §3.3): enter the code, sign in, confirm, done.
  const addressOf = (c: Context) => clientAddress(c.req.raw, c.env as Partial<HttpBindings> | undefined, proxyTrust);
  const codeForm = async (c: Context, userCode: string | undefined, error?: string, status = 200) => {
    const { token, cookies } = await csrfFor(c, "device");
    return render("Connect a device", <DeviceCodePage base={base} csrf={token} userCode={userCode} error={error} />, status, cookies);
  };
  const codeRefused = (c: Context, userCode: string, status: "invalid" | "throttled") =>
    status === "throttled" ? codeForm(c, userCode, TOO_MANY_CODES, 429) : codeForm(c, userCode, UNKNOWN_USER_CODE, 400);

  /** The code looked up: the confirmation, through the login page (with a ticket to come back) when nobody is signed in. */
  const deviceConfirmation = async (c: Context, typed: string) => {
    const found = await provider.getDeviceRequest(typed, { clientAddress: addressOf(c) });
    if (found.status !== "found") return codeRefused(c, typed, found.status);
    const { request } = found;
    // Signed in, and as strongly as the client's policy asks (else the login page steps the session up).
    const session = await provider.getSession(c.req.raw);
    if (!session || !meetsAcr(session.amr, request.acr)) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(deviceReturn(request.userCode, lookupTicket(c, request.userCode)))}`);
    const { token, cookies } = await csrfFor(c);
    const scopes = request.scopes.map((name) => ({ name, description: config.apiScopes?.find((s) => s.name === name)?.description }));
    return render("Allow this device?", <DeviceConfirmPage base={base} csrf={token} userCode={request.userCode} clientName={request.client.clientName} scopes={scopes} />, 200, cookies);
  };

  // verification_uri_complete (RFC 8628 §3.3.1) skips typing the code: a top-level visit typed, scanned or
  // from this site (Fetch Metadata: `Sec-Fetch-Site` none or same-origin, `Sec-Fetch-Dest` document; clients
  // that send none, like CLIs and test browsers, count as such) looks the code up at once, towards the login
  // page and the confirmation. A cross-site request (an <img>, a link on another site) only pre-fills the
  // form, so another site cannot spend a visitor's wrong-code budget; the lookup then runs on the
  // CSRF-checked POST (or with its ticket, after the login page).
  const topLevelSameSite = (c: Context) => {
    const site = c.req.header("sec-fetch-site");
    const dest = c.req.header("sec-fetch-dest");
    return (site === undefined || site === "none" || site === "same-origin") && (dest === undefined || dest === "document");
  };
  app.get(devicePage, async (c) => {
    const typed = c.req.query("user_code")?.slice(0, 100);
    const ticket = c.req.query("lookup");
    if (typed && ticket && ticketValid(c, typed, ticket)) return deviceConfirmation(c, typed);
    if (typed && topLevelSameSite(c)) return deviceConfirmation(c, typed);
    return codeForm(c, typed);
  });

  app.post(devicePage, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form, "device"))) return csrfFailed(c);
    return deviceConfirmation(c, (form.user_code ?? "").slice(0, 100));
  });

  app.post(`${devicePage}/decision`, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    if (form.decision !== "allow" && form.decision !== "deny") return render("Please try again", <MessagePage base={base} heading="Please try again" text="Choose Allow or Deny." />, 400);
    const userCode = (form.user_code ?? "").slice(0, 100);
    const result = await provider.completeDeviceAuthorization(c.req.raw, userCode, form.decision === "allow", { clientAddress: addressOf(c) });
    if (!result.ok) {
      if (result.reason === "signed_out" || result.reason === "step_up") return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(deviceReturn(userCode))}`);
      return codeRefused(c, userCode, result.reason);
    }
    return result.decision === "approved"
      ? render("Device connected", <MessagePage base={base} heading="Device connected" text="You're all set: your device may continue. You can close this window." />, 200, result.cookies)
      : render("Access denied", <MessagePage base={base} heading="Access denied" text="The device was not given access. You can close this window." />, 200, result.cookies);
  });

  app.get(`${base}/grants`, async (c) => {
    const session = await provider.getSession(c.req.raw);
    if (!session) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(`${base}/grants`)}`);
    const { token, cookies } = await csrfFor(c);
    return render("Application access", <GrantsPage base={base} grants={await provider.listGrants(session.sub)} csrf={token} />, 200, cookies);
  });

  app.post(`${base}/grants`, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    const session = await provider.getSession(c.req.raw);
    if (!session) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(`${base}/grants`)}`);
    if (form.clientId) await provider.revokeGrants(session.sub, form.clientId);
    return redirectTo(`${base}/grants`);
  });

  // Registration, email verification, password reset and the account page (issue 20).
  if (!config.smtp && users.store) logger?.warn({}, "smtp is not configured: account mails (verification and reset links) are written to this log, not sent; configure smtp in production");
  const selfService: SelfService | undefined = users.store
    ? mountSelfService(app, {
        base,
        issuer: provider.issuer,
        secure: issuerUrl.protocol === "https:",
        provider,
        serverSideSessions: config.serverSideSessions?.enabled ?? false,
        directory: users,
        accounts: users.store,
        grants: store.grants,
        mailer,
        settings: selfServiceConfig,
        pages: { render: (title, body, status, cookies) => render(title, body, status, cookies), redirectTo, csrfFor, csrfOk, csrfFailed, formOf, addressOf: (c) => addressOf(c), limit },
        emit: emitHost,
        now: clockSeconds,
        logger,
        isLocalReturn,
        providersUrl: async () => ((await provider.externalProviders()).length ? linkedAccountsPage : undefined),
        // Second factors and passkeys add their sections to the account page (contract §14).
        ...(mfa ? { accountSections: async (c: Context, account: { sub: string }, csrf: string, nonce: string) => await mfa.accountSections(c, account.sub, csrf, nonce) } : {}),
      })
    : undefined;
  // Second-factor and passkey actions (enrolment, removal, sign-in ceremonies).
  mfa?.mount(app);

  const forbidden = () => render("Forbidden", <MessagePage base={base} heading="Forbidden" text="This page is for administrators." />, 403);
  const sessionsPage = `${base}/serversidesessions`;

  app.get(sessionsPage, async (c) => {
    const session = await provider.getSession(c.req.raw);
    if (!session) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(sessionsPage)}`);
    if (!(await isAdmin(session.sub))) return forbidden();
    const filters = { subject: c.req.query("subject") || undefined, displayName: c.req.query("displayName") || undefined, sessionId: c.req.query("sessionId") || undefined };
    const page = await provider.querySessions({ ...filters, cursor: c.req.query("cursor") || undefined, count: 10 });
    const { token, cookies } = await csrfFor(c);
    return render("Server-side sessions", <SessionsPage base={base} csrf={token} enabled={config.serverSideSessions?.enabled ?? false} sessions={page.sessions} filters={filters} next={page.next} />, 200, cookies);
  });

  app.post(sessionsPage, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    const session = await provider.getSession(c.req.raw);
    if (!session) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(sessionsPage)}`);
    if (!(await isAdmin(session.sub))) return forbidden();
    if (form.sessionId) {
      const removed = await provider.removeSessions({ sessionId: form.sessionId });
      logger?.info({ event: "session_revoked", by: session.sub, sessionId: form.sessionId, removed }, "session revoked from the sessions page");
    }
    return redirectTo(sessionsPage);
  });

  // Client administration pages (issue 19): list, create, edit, rotate a secret, delete; admins only.
  const clientsPage = `${base}/admin/clients`;
  /** The signed-in administrator, or the response to send instead (login, 403). */
  const adminOnly = async (c: Context, returnTo: string): Promise<{ sub: string } | Response> => {
    const session = await provider.getSession(c.req.raw);
    if (!session) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(localReturn.has(returnTo) ? returnTo : clientsPage)}`);
    if (!(await isAdmin(session.sub))) return forbidden();
    return { sub: session.sub };
  };
  const clientForm = async (c: Context): Promise<FormValues> => {
    const body = await c.req.parseBody({ all: true }).catch(() => ({}) as Record<string, unknown>);
    const out: FormValues = {};
    for (const [name, value] of Object.entries(body)) {
      if (typeof value === "string") out[name] = value;
      else if (Array.isArray(value)) out[name] = value.filter((v): v is string => typeof v === "string");
    }
    return out;
  };
  const csrfOkValues = async (c: Context, form: FormValues) => csrf.verify(getCookie(c, csrf.cookieName), typeof form.csrf === "string" ? form.csrf : undefined, await csrfBinding(c));
  const notFoundPage = () => render("Not found", <MessagePage base={base} heading="Not found" text="There is no such client." />, 404);
  const errorText = (error: unknown) => (error instanceof ProtocolError ? (error.description ?? error.code) : undefined);

  app.get(clientsPage, async (c) => {
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    let page: Awaited<ReturnType<typeof provider.clients.list>>;
    try {
      page = await provider.clients.list({ cursor: c.req.query("cursor") || undefined, count: 20 });
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      page = await provider.clients.list({ count: 20 });
    }
    return render("Clients", <ClientsPage base={base} clients={page.clients} next={page.next} />);
  });

  app.get(`${clientsPage}/new`, async (c) => {
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const { token, cookies } = await csrfFor(c);
    return render("New client", <ClientFormPage base={base} csrf={token} />, 200, cookies);
  });

  app.post(clientsPage, limit, async (c) => {
    const form = await clientForm(c);
    if (!(await csrfOkValues(c, form))) return csrfFailed(c);
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const { metadata, error } = metadataFromForm(form);
    const again = async (message: string) => {
      const { token, cookies } = await csrfFor(c);
      return render("New client", <ClientFormPage base={base} csrf={token} values={metadata} error={message} />, 400, cookies);
    };
    if (error) return again(error);
    try {
      const created = await provider.clients.create(metadata, "admin");
      logger?.info({ event: "client_created", by: admin.sub, clientId: created.client.client_id }, "client created on the admin pages");
      return render("Client created", <ClientSecretPage base={base} heading="Client created" clientId={created.client.client_id} secret={created.clientSecret} />, 201);
    } catch (failure) {
      const message = errorText(failure);
      if (message === undefined) throw failure;
      return again(message);
    }
  });

  app.get(`${clientsPage}/:clientId`, async (c) => {
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const client = await provider.clients.get(c.req.param("clientId"));
    if (!client) return notFoundPage();
    const { token, cookies } = await csrfFor(c);
    return render("Client", <ClientFormPage base={base} csrf={token} client={client} saved={c.req.query("saved") === "1"} />, 200, cookies);
  });

  app.post(`${clientsPage}/:clientId`, limit, async (c) => {
    const form = await clientForm(c);
    if (!(await csrfOkValues(c, form))) return csrfFailed(c);
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const clientId = c.req.param("clientId");
    const client = await provider.clients.get(clientId);
    if (!client) return notFoundPage();
    const { metadata, error } = metadataFromForm(form, clientId);
    const again = async (message: string) => {
      const { token, cookies } = await csrfFor(c);
      return render("Client", <ClientFormPage base={base} csrf={token} client={client} values={metadata} error={message} />, client.source === "config" ? 409 : 400, cookies);
    };
    if (error) return again(error);
    try {
      const updated = await provider.clients.update(clientId, metadata, "admin");
      if (!updated) return notFoundPage();
      if (updated.clientSecret) return render("Client saved", <ClientSecretPage base={base} heading="Client saved, with a new secret" clientId={clientId} secret={updated.clientSecret} />);
      return redirectTo(`${clientsPage}/${encodeURIComponent(clientId)}?saved=1`);
    } catch (failure) {
      const message = errorText(failure);
      if (message === undefined) throw failure;
      return again(message);
    }
  });

  app.post(`${clientsPage}/:clientId/secret`, limit, async (c) => {
    const form = await clientForm(c);
    if (!(await csrfOkValues(c, form))) return csrfFailed(c);
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const clientId = c.req.param("clientId");
    try {
      const rotated = await provider.clients.rotateSecret(clientId);
      if (!rotated) return notFoundPage();
      return render("New secret", <ClientSecretPage base={base} heading="New secret" clientId={clientId} secret={rotated.clientSecret} />);
    } catch (failure) {
      const message = errorText(failure);
      if (message === undefined) throw failure;
      return render("Cannot rotate", <MessagePage base={base} heading="Cannot add a secret" text={message} />, 409);
    }
  });

  app.post(`${clientsPage}/:clientId/secrets/:secretId/remove`, limit, async (c) => {
    const form = await clientForm(c);
    if (!(await csrfOkValues(c, form))) return csrfFailed(c);
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const clientId = c.req.param("clientId");
    let result: "removed" | "not_found" | "last_secret";
    try {
      result = await provider.clients.removeSecret(clientId, c.req.param("secretId"));
    } catch (failure) {
      const message = errorText(failure);
      if (message === undefined) throw failure;
      return render("Cannot remove", <MessagePage base={base} heading="Cannot remove the secret" text={message} />, 409);
    }
    if (result === "not_found") return notFoundPage();
    if (result === "last_secret") return render("Cannot remove", <MessagePage base={base} heading="Cannot remove the last secret" text="Add a new secret first, then remove this one." />, 409);
    return redirectTo(`${clientsPage}/${encodeURIComponent(clientId)}`);
  });

  app.get(`${clientsPage}/:clientId/delete`, async (c) => {
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    const client = await provider.clients.get(c.req.param("clientId"));
    if (!client) return notFoundPage();
    if (client.source === "config") return render("Read-only", <MessagePage base={base} heading="Read-only client" text="Clients from the configuration file cannot be deleted here." />, 409);
    const { token, cookies } = await csrfFor(c);
    return render("Delete client", <DeleteClientPage base={base} csrf={token} client={client} />, 200, cookies);
  });

  app.post(`${clientsPage}/:clientId/delete`, limit, async (c) => {
    const form = await clientForm(c);
    if (!(await csrfOkValues(c, form))) return csrfFailed(c);
    const admin = await adminOnly(c, clientsPage);
    if (admin instanceof Response) return admin;
    if (form.confirm !== "delete") return render("Please try again", <MessagePage base={base} heading="Please try again" text="Confirm with Delete." />, 400);
    const clientId = c.req.param("clientId");
    try {
      if (!(await provider.clients.delete(clientId, "admin"))) return notFoundPage();
    } catch (failure) {
      const message = errorText(failure);
      if (message === undefined) throw failure;
      return render("Read-only", <MessagePage base={base} heading="Read-only client" text={message} />, 409);
    }
    logger?.info({ event: "client_deleted", by: admin.sub, clientId }, "client deleted on the admin pages");
    return redirectTo(clientsPage);
  });

  // Administrators' account pages (issue 20): list and search, one account with disable/enable, reset of
  // second factors and its sessions.
  const usersPage = `${base}/admin/users`;
  const sessionsOf = async (sub: string) => {
    const found: SessionInfo[] = [];
    let cursor: string | undefined;
    do {
      const page = await provider.querySessions({ subject: sub, cursor, count: 100 });
      found.push(...page.sessions.filter((s) => s.subject === sub));
      cursor = page.next ?? undefined;
    } while (cursor && found.length < 100);
    return found;
  };
  const adminPage = async (c: Context) => {
    const session = await provider.getSession(c.req.raw);
    if (!session) return { denied: redirectTo(`${base}/login?returnUrl=${encodeURIComponent(usersPage)}`) };
    if (!(await isAdmin(session.sub))) return { denied: await forbidden() };
    return { admin: session.sub };
  };
  const userPage = async (c: Context, sub: string, notice?: string, status = 200) => {
    const user = await users.get(sub);
    if (!user) return render("Not found", <MessagePage base={base} heading="No such user" text="This account does not exist (any more)." />, 404);
    const secondFactors = users.store ? (await users.store.listCredentials(sub)).length : 0;
    const { token, cookies } = await csrfFor(c);
    return render(
      user.username,
      <UserPage base={base} csrf={token} user={user} secondFactors={secondFactors} sessions={await sessionsOf(sub)} serverSideSessions={config.serverSideSessions?.enabled ?? false} notice={notice} />,
      status,
      cookies,
    );
  };

  app.get(usersPage, async (c) => {
    const gate = await adminPage(c);
    if (gate.denied) return gate.denied;
    const query = (c.req.query("query") ?? "").slice(0, 200);
    const page = await users.list({ query: query || undefined, cursor: c.req.query("cursor") || undefined, count: 20 });
    return render("Users", <UsersPage base={base} users={page.users} query={query} next={page.next} stored={users.store !== undefined} />);
  });

  app.get(`${usersPage}/:sub`, async (c) => {
    const gate = await adminPage(c);
    if (gate.denied) return gate.denied;
    return userPage(c, c.req.param("sub"));
  });

  app.post(`${usersPage}/:sub`, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    const gate = await adminPage(c);
    if (gate.denied) return gate.denied;
    const sub = c.req.param("sub");
    const user = await users.get(sub);
    if (!user) return userPage(c, sub);
    let notice: string;
    if (form.sessionId) {
      // Only a session of this user: the form names the user in its URL.
      const removed = await provider.removeSessions({ sessionId: form.sessionId, subject: sub });
      notice = removed ? "The session was ended." : "That session had ended already.";
    } else if (user.fixed) {
      return userPage(c, sub, "This account is defined in the config file: change it there.", 409);
    } else if (form.action === "disable" || form.action === "enable") {
      await users.setDisabled(sub, form.action === "disable", "admin");
      notice = form.action === "disable" ? "The account is disabled and its sessions have ended." : "The account is enabled.";
    } else if (form.action === "reset-second-factors") {
      const removed = await users.resetSecondFactors(sub, "admin");
      notice = `${removed} second factor${removed === 1 ? "" : "s"} removed.`;
    } else {
      return userPage(c, sub, "Choose an action.", 400);
    }
    logger?.info({ event: "account_admin", by: gate.admin, sub, action: form.sessionId ? "revoke_session" : form.action }, "account changed from the admin pages");
    return userPage(c, sub, notice);
  });

  // The account's external providers: link and unlink, after a recent authentication.
  const linkedAccounts = async (c: Context, status = 200, notes: { message?: string; error?: string; reauthenticate?: boolean } = {}) => {
    const links = await provider.listExternalLinks(c.req.raw);
    if (!links) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(linkedAccountsPage)}`);
    const { token, cookies } = await csrfFor(c);
    return render("Sign-in providers", <LinkedAccountsPage base={base} csrf={token} links={links} providers={await provider.externalProviders()} {...notes} />, status, cookies);
  };
  app.get(linkedAccountsPage, (c) => linkedAccounts(c));
  app.post(linkedAccountsPage, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    if (!(await provider.getSession(c.req.raw))) return redirectTo(`${base}/login?returnUrl=${encodeURIComponent(linkedAccountsPage)}`);
    if (form.link || form.reauth) {
      let started: Awaited<ReturnType<Provider["startExternalLink"]>>;
      try {
        started = await provider.startExternalLink(c.req.raw, form.link || form.reauth!, form.link ? "link" : "reauth", linkedAccountsPage);
      } catch (error) {
        if (error instanceof ProtocolError) return linkedAccounts(c, 503, { error: error.description ?? "The provider is not available right now." });
        throw error;
      }
      if (started === "reauthenticate") return linkedAccounts(c, 403, { reauthenticate: true });
      if (started === "invalid") return linkedAccounts(c, 400, { error: "That provider is not available." });
      return leaveTo(started.url, started.cookies);
    }
    if (form.unlink) {
      const removed = await provider.removeExternalLink(c.req.raw, form.issuer ?? "", form.externalSubject ?? "");
      if (removed === "reauthenticate") return linkedAccounts(c, 403, { reauthenticate: true });
      if (removed === "last_method") return linkedAccounts(c, 409, { error: "This is the only way to sign in to your account, so it cannot be unlinked." });
      if (removed === "not_found") return linkedAccounts(c, 404, { error: "That provider is not linked to your account." });
      return linkedAccounts(c, 200, { message: "The provider was unlinked." });
    }
    return linkedAccounts(c, 400, { error: "Choose a provider." });
  });

  const access: AdminAccess = { provider, users, audience: adminAudience, isAdmin, logger, requestContext };
  if (config.admin) app.route(`${base}/admin/api`, adminApi(access));

  app.get(`${base}/logout`, async (c) => {
    const logoutId = c.req.query("logoutId");
    const known = logoutId ? await provider.getLogoutRequest(logoutId) : undefined;
    // An ended request is not carried on: confirming then signs out the current session afresh.
    const pending = known && !known.ended ? known : undefined;
    if (!(await provider.getSession(c.req.raw))) {
      // Nobody to sign out: finish the request (the signed-out page still continues to the client).
      const ended = await provider.endSession(c.req.raw, pending ? logoutId : undefined);
      return redirectTo(ended.signedOutUrl);
    }
    const { token, cookies } = await csrfFor(c);
    return render("Sign out", <LogoutPromptPage base={base} csrf={token} logoutId={pending ? logoutId : undefined} clientName={pending?.clientName} />, 200, cookies);
  });

  app.post(`${base}/logout`, limit, async (c) => {
    const form = await formOf(c);
    if (!(await csrfOk(c, form))) return csrfFailed(c);
    if (form.decision !== "logout") return render("Please try again", <MessagePage base={base} heading="Please try again" text="Choose Sign out to sign out." />, 400);
    const ended = await provider.endSession(c.req.raw, form.logoutId);
    logger?.info({ event: "logout" }, "signed out");
    return leaveTo(ended.signedOutUrl, ended.cookies);
  });

  app.get(`${base}/signedout`, async (c) => {
    const found = await provider.getSignedOut(c.req.query("logoutId") ?? "", c.req.raw);
    // A replayed logout id with someone signed in: they confirm on the prompt (a GET never signs out).
    if (found && "logoutPromptUrl" in found) return redirectTo(found.logoutPromptUrl);
    if (!found) return render("Signed out", <MessagePage base={base} heading="You are signed out" text="You can close this window." />);
    const { cookies = [], ...details } = found;
    const frameOrigins = [...new Set(details.frontChannelUrls.map((u) => new URL(u).origin))];
    return render("Signed out", (nonce) => <SignedOutPage nonce={nonce} {...details} />, 200, cookies, frameOrigins);
  });

  app.all("*", (c) => provider.fetch(c.req.raw, requestContext(c.req.raw, c.env as Partial<HttpBindings> | undefined)));
  app.onError((error, c) => {
    if (error instanceof StoreValueError) {
      logger?.warn({ err: error }, "value refused by the store");
      return c.json({ error: "invalid_request", error_description: "a value is too long or contains characters that cannot be stored" }, 400);
    }
    if (isStoreUnavailable(error)) {
      logger?.warn({ err: error }, "store unavailable");
      c.header("retry-after", "5");
      return c.json({ error: "temporarily_unavailable" }, 503);
    }
    logger?.error({ err: error }, "unhandled error in a page");
    return c.json({ error: "server_error" }, 500);
  });

  return {
    fetch: async (request, env) => writableResponse(await app.fetch(request, env), logger),
    mtls,
    provider,
    users,
    metrics,
    issuer: provider.issuer,
    dataKeySource: dataKey.source,
    close: async () => {
      await selfService?.idle();
      mailer.close();
      await provider.close();
    },
  };
}

/** `outbound.ca`: extra CAs for the provider's own https requests (metadata documents, jwks_uri, logout). */
function readOutboundCa(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read outbound.ca (${path}): ${(error as Error).message}`);
  }
}

/** The acr values the login pages can step up to: `mfa` with TOTP or passkeys, `phr` with passkeys. */
function offeredAcrValues(store: Store, mfa: { totp?: boolean; passkeys?: boolean } | undefined): ("mfa" | "phr")[] {
  if (!store.accounts) return [];
  const { totp, passkeys } = mfaSettings(mfa);
  return [...(totp || passkeys ? (["mfa"] as const) : []), ...(passkeys ? (["phr"] as const) : [])];
}
