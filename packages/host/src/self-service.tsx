import { constantTimeEqual, randomHandle, sha256Base64url } from "@tessera/protocol";
import { AccountConflictError, AccountInputError, addressBucket, FailureThrottle, issuerCookieName, type AccountStore, type AccountView, type FailureLimit, type GrantStore, type Logger, type Provider, type TesseraEvent, type UserDirectory } from "@tessera/server";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { Child } from "hono/jsx";
import { linkMessage, type Mailer } from "./mail.ts";
import { AccountPage } from "./pages/account.tsx";
import { MessagePage } from "./pages/message.tsx";
import { CheckMailPage, ForgotPage, RegisterPage, ResetPage, VerifyRequiredPage } from "./pages/self-service.tsx";

/** `accounts` settings this module serves (config file, with defaults applied by {@link selfServiceSettings}). */
export interface SelfServiceSettings {
  /** `/account/register` and `prompt=create` (default false). */
  registration: boolean;
  /** New addresses must be verified before sign-in (default true). */
  emailVerification: boolean;
  /** `/account/forgot` (default true). */
  passwordReset: boolean;
  /** Seconds a verification link works (default 86400). */
  verificationLinkLifetime: number;
  /** Seconds a reset link works (default 1800). */
  resetLinkLifetime: number;
}

/** The settings from the config's `accounts` section. */
export function selfServiceSettings(accounts: Partial<SelfServiceSettings> | undefined): SelfServiceSettings {
  return {
    registration: accounts?.registration ?? false,
    emailVerification: accounts?.emailVerification ?? true,
    passwordReset: accounts?.passwordReset ?? true,
    verificationLinkLifetime: accounts?.verificationLinkLifetime ?? 86_400,
    resetLinkLifetime: accounts?.resetLinkLifetime ?? 1800,
  };
}

/** What the host's page plumbing gives this module (the same helpers its own pages use). */
export interface PageKit {
  /** `body` may take the page's CSP nonce. */
  render(title: string, body: Child | ((nonce: string) => Child | Promise<Child>), status?: number, cookies?: string[]): Promise<Response>;
  redirectTo(location: string, cookies?: string[]): Response;
  csrfFor(c: Context, pending?: string): Promise<{ token: string; cookies: string[] }>;
  csrfOk(c: Context, form: Record<string, string>, pending?: string): Promise<boolean>;
  csrfFailed(c: Context): Promise<Response>;
  formOf(c: Context): Promise<Record<string, string>>;
  /** The client's address after the trusted-proxy rules. */
  addressOf(c: Context): string | undefined;
  /** Body size limit for page forms. */
  limit: MiddlewareHandler;
}

/** Dependencies of {@link mountSelfService}. */
export interface SelfServiceDeps {
  base: string;
  /** The issuer URL without a trailing slash (links in mails are absolute). */
  issuer: string;
  secure: boolean;
  provider: Provider;
  /** Server-side sessions on: the account page lists the user's sessions. */
  serverSideSessions: boolean;
  directory: UserDirectory;
  accounts: AccountStore;
  grants: GrantStore;
  mailer: Mailer;
  settings: SelfServiceSettings;
  pages: PageKit;
  emit(event: TesseraEvent): void;
  /** Unix seconds. */
  now(): number;
  logger?: Logger;
  /**
   * Extra sections of the account page (second factors), rendered for the signed-in account; `nonce` is
   * the page's CSP nonce (for a section's own script).
   */
  accountSections?: (c: Context, account: AccountView, csrf: string, nonce: string) => Promise<Child> | Child;
  /** The account's external sign-in providers page, when external providers exist (the account page links to it). */
  providersUrl?: () => Promise<string | undefined>;
  /** Whether a pending authorization request's returnUrl is a page of this host a login may return to. */
  isLocalReturn(url: string): boolean;
}

/** The self-service parts the login page needs. */
export interface SelfService {
  /** The registration page when registration is on (the login page links to it). */
  registrationUrl(returnUrl?: string): string | undefined;
  /** The forgot-password page when password reset is on. */
  forgotUrl(): string | undefined;
  /**
   * After a correct password: the page to answer with instead of signing in (an address still to verify,
   * with a resend button), or undefined to go on.
   */
  signInBlocked(c: Context, account: AccountView, returnUrl: string | undefined): Promise<Response | undefined>;
  /** Resolves once the work queued after answering (reset links and their mails) is done. */
  idle(): Promise<void>;
}

const LIMITS = {
  /** New accounts per client address (IPv6 /64). */
  registerPerAddress: { window: 3600, max: 10 },
  /** Reset requests per client address; past it 429 (which tells nothing about any address). */
  forgotPerAddress: { window: 900, max: 10 },
  /** Mails per recipient and purpose; past it nothing is sent and the page is the same. */
  mailsPerAccount: { window: 3600, max: 3 },
  /** Wrong current passwords on the account page, per account. */
  passwordPerAccount: { window: 900, max: 5 },
} satisfies Record<string, FailureLimit>;

/** A reset link's token is exchanged for a form token of this lifetime (seconds) when the page opens. */
const RESET_FORM_LIFETIME = 900;
const REGISTRATION_COOKIE = "tessera.registration";
const INVALID_LINK = "This link is not valid: it has expired or was already used. Ask for a new one.";

/**
 * Registration (with OIDC Prompt Create), email verification, password reset and the account page
 * (issue 20). Pages at `{issuer}/account/...`; one-time tokens live hashed in the account store.
 */
export function mountSelfService(app: Hono, deps: SelfServiceDeps): SelfService {
  const { base, pages, settings, directory, accounts, provider } = deps;
  const counter = new FailureThrottle(deps.grants, deps.now);
  const registrationCookie = issuerCookieName(REGISTRATION_COOKIE, deps.secure, base || "/");
  const cookiePath = deps.secure ? "/" : base || "/";
  const link = (path: string, token: string) => `${deps.issuer}/account/${path}?token=${encodeURIComponent(token)}`;
  const message = (heading: string, text: string, status = 200) => pages.render(heading, <MessagePage base={base} heading={heading} text={text} />, status);
  const notFound = () => message("Not found", "This page does not exist.", 404);
  const host = new URL(deps.issuer).host;
  /** Work done after the answer, so its time tells nothing (a known address costs the same as an unknown one). */
  const queued = new Set<Promise<void>>();
  const queue = (work: () => Promise<void>) => {
    const running: Promise<void> = work()
      .catch((error: unknown) => deps.logger?.error({ err: { message: (error as Error).message } }, "queued account work failed"))
      .finally(() => queued.delete(running));
    queued.add(running);
  };

  /** Counts one event of `subject`; false when its limit is used up (nothing is counted then). */
  const take = async (subject: string, limit: FailureLimit): Promise<boolean> => {
    const reservation = await counter.reserve(subject, limit);
    if (!reservation) return false;
    await counter.fail(reservation);
    return true;
  };

  /** Stores a one-time token for the account and returns the token (only its hash is stored). */
  const issueToken = async (sub: string, purpose: string, lifetime: number, data: Record<string, unknown>) => {
    const token = randomHandle(32);
    const now = deps.now();
    await accounts.putToken({ key: sha256Base64url(token), subject: sub, purpose, data: JSON.stringify(data), createdAt: now, expiresAt: now + lifetime });
    return token;
  };
  const takeToken = async (token: string | undefined, purpose: string) => {
    if (!token || !/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
    const found = await accounts.consumeToken(sha256Base64url(token), purpose, deps.now());
    if (!found) return undefined;
    let data: Record<string, unknown> = {};
    try {
      data = JSON.parse(found.data ?? "{}") as Record<string, unknown>;
    } catch {
      // A token whose data cannot be read carries nothing but its subject.
    }
    return { sub: found.subject, data };
  };
  /** The returnUrl of a pending request (or a local page), else undefined. */
  const pendingReturn = async (returnUrl: string | undefined) => {
    if (!returnUrl) return undefined;
    const details = await provider.getInteraction(returnUrl);
    if (details) return { returnUrl: details.returnUrl, clientName: details.client.clientName };
    return deps.isLocalReturn(returnUrl) ? { returnUrl, clientName: undefined } : undefined;
  };

  /** Mails a verification link; counted per account (a limit reached sends nothing). */
  const sendVerification = async (account: AccountView, extra: { browser?: string; returnUrl?: string } = {}) => {
    if (!account.email) return;
    if (!(await take(`mail:verify:${account.sub}`, LIMITS.mailsPerAccount))) return;
    const token = await issueToken(account.sub, "email_verification", settings.verificationLinkLifetime, { email: account.email, ...extra });
    void deps.mailer.send(
      linkMessage(account.email, "Verify your email address", ["Hello,", `please confirm that this is your email address for your new account at ${host}. Open this link:`], { url: link("verify", token), label: "Verify my email address" }, `The link works once and expires in ${hours(settings.verificationLinkLifetime)}. If you did not create this account, ignore this mail.`),
    );
  };

  const registerForm = async (c: Context, returnUrl: string | undefined, fields: { username?: string; email?: string; error?: string; clientName?: string }, status = 200) => {
    const { token, cookies } = await pages.csrfFor(c, returnUrl);
    return pages.render("Create an account", <RegisterPage base={base} csrf={token} returnUrl={returnUrl} {...fields} />, status, cookies);
  };
  const checkMail = (cookies: string[] = []) =>
    pages.render("Check your mail", <CheckMailPage base={base} heading="Check your mail" text="We sent a link to the address you gave. Open it to verify your address and finish creating your account." />, 200, cookies);

  // Registration (contract §14; OIDC Prompt Create 1.0 brings a pending request here with its returnUrl).
  app.get(`${base}/account/register`, async (c) => {
    if (!settings.registration) return notFound();
    const back = await pendingReturn(c.req.query("returnUrl"));
    return registerForm(c, back?.returnUrl, { clientName: back?.clientName });
  });

  app.post(`${base}/account/register`, pages.limit, async (c) => {
    if (!settings.registration) return notFound();
    const form = await pages.formOf(c);
    const back = await pendingReturn(form.returnUrl);
    if (!(await pages.csrfOk(c, form, back?.returnUrl))) return pages.csrfFailed(c);
    const username = (form.username ?? "").trim().slice(0, 200);
    const email = (form.email ?? "").trim().slice(0, 400);
    const password = (form.password ?? "").slice(0, 2048);
    const again = (error: string, status = 400) => registerForm(c, back?.returnUrl, { username, email, error, clientName: back?.clientName }, status);
    if (!username || !email || !password) return again("Enter a username, an email address and a password.");
    const address = pages.addressOf(c);
    if (address && !(await take(`register:${addressBucket(address)}`, LIMITS.registerPerAddress))) {
      return again("Too many new accounts from your network. Try again later.", 429);
    }
    let account: AccountView;
    try {
      account = await directory.create({ username, email, password, emailVerified: false }, "self");
    } catch (error) {
      if (error instanceof AccountConflictError && error.field === "username") return again("That username is taken. Choose another one.", 409);
      if (error instanceof AccountConflictError && error.field === "email" && settings.emailVerification) {
        // Never tell the browser that the address has an account: tell the address's owner instead.
        await mailAccountExists(email);
        // The same cookie as a new registration (it matches no link), so the headers tell nothing either.
        return checkMail([registrationCookieFor(randomHandle(32))]);
      }
      if (error instanceof AccountConflictError) return again("That email address cannot be used. Sign in, or reset your password.", 409);
      if (error instanceof AccountInputError) return again(error.message);
      throw error;
    }
    deps.emit({ type: "account.registered", sub: account.sub });
    if (settings.emailVerification) {
      // This browser made the account: opening the link here continues the sign-in (the mailbox and the
      // password were both shown); opened elsewhere, the link only verifies.
      const browser = randomHandle(32);
      await sendVerification(account, { browser: sha256Base64url(browser), returnUrl: back?.returnUrl });
      return checkMail([registrationCookieFor(browser)]);
    }
    return signInAndContinue(c, account, back?.returnUrl);
  });

  const registrationCookieFor = (browser: string) => `${registrationCookie}=${browser}; Path=${cookiePath}; Max-Age=${settings.verificationLinkLifetime}; HttpOnly; SameSite=Lax${deps.secure ? "; Secure" : ""}`;

  const mailAccountExists = async (email: string) => {
    const existing = await directory.findByEmail(email);
    if (!existing?.email || !(await take(`mail:exists:${existing.sub}`, LIMITS.mailsPerAccount))) return;
    const forgot = settings.passwordReset ? { url: `${deps.issuer}/account/forgot`, label: "Reset my password" } : undefined;
    void deps.mailer.send(
      linkMessage(existing.email, "Someone tried to register with your address", [`Someone (hopefully you) tried to create an account at ${host} with this email address, which already has an account.`, forgot ? "If you forgot your password, you can reset it:" : "You can sign in with your existing account."], forgot, "If this was not you, you can ignore this mail: nothing was changed."),
    );
  };

  const signInAndContinue = async (c: Context, account: AccountView, returnUrl: string | undefined) => {
    const name = typeof account.claims.name === "string" ? account.claims.name : undefined;
    const { cookies } = await provider.signIn(c.req.raw, { sub: account.sub, name, amr: ["pwd"], idp: "local" });
    return pages.redirectTo(returnUrl ?? `${base}/account`, cookies);
  };

  // Email verification: the link verifies on GET (as Keycloak's does); a used or expired link fails.
  app.get(`${base}/account/verify`, async (c) => {
    const found = await takeToken(c.req.query("token"), "email_verification");
    const account = found && (await directory.get(found.sub));
    // Only the address the link was sent to: a changed address needs its own link.
    if (!found || !account || account.disabled || !account.email || account.email !== found.data.email) return message("Link not valid", INVALID_LINK, 400);
    if (!account.emailVerified) {
      await directory.update(account.sub, { emailVerified: true }, "self");
      deps.emit({ type: "account.email_verified", sub: account.sub });
    }
    await accounts.removeTokens(account.sub, "email_verification");
    const browser = getCookie(c, registrationCookie);
    const clear = `${registrationCookie}=; Path=${cookiePath}; Max-Age=0; HttpOnly; SameSite=Lax${deps.secure ? "; Secure" : ""}`;
    if (browser && typeof found.data.browser === "string" && constantTimeEqual(sha256Base64url(browser), found.data.browser)) {
      const back = await pendingReturn(typeof found.data.returnUrl === "string" ? found.data.returnUrl : undefined);
      const response = await signInAndContinue(c, account, back?.returnUrl);
      response.headers.append("set-cookie", clear);
      return response;
    }
    return pages.render("Email verified", <MessagePage base={base} heading="Email verified" text="Your address is verified. You can sign in now." />, 200, [clear]);
  });

  app.post(`${base}/account/verify/resend`, pages.limit, async (c) => {
    const form = await pages.formOf(c);
    if (!(await pages.csrfOk(c, form, "verify"))) return pages.csrfFailed(c);
    const found = await takeToken(form.resend, "verification_resend");
    const account = found && (await directory.get(found.sub));
    if (!found || !account || account.disabled) return message("Please sign in again", "This page expired. Sign in again to get a new link.", 400);
    const back = await pendingReturn(typeof found.data.returnUrl === "string" ? found.data.returnUrl : undefined);
    if (account.emailVerified) return verifyRequired(c, account, back?.returnUrl, true);
    // This browser showed the password: the new link opened here continues the sign-in, as after registration.
    const browser = randomHandle(32);
    await sendVerification(account, { browser: sha256Base64url(browser), returnUrl: back?.returnUrl });
    return verifyRequired(c, account, back?.returnUrl, true, [registrationCookieFor(browser)]);
  });

  const verifyRequired = async (c: Context, account: AccountView, returnUrl: string | undefined, sent = false, extraCookies: string[] = []) => {
    const resend = await issueToken(account.sub, "verification_resend", 900, returnUrl ? { returnUrl } : {});
    const { token, cookies } = await pages.csrfFor(c, "verify");
    const login = `${base}/login${returnUrl ? `?returnUrl=${encodeURIComponent(returnUrl)}` : ""}`;
    return pages.render("Verify your email", <VerifyRequiredPage base={base} csrf={token} resend={resend} sent={sent} login={login} />, 403, [...cookies, ...extraCookies]);
  };

  // Password reset: the same page whatever the address; a link only for an active stored account.
  app.get(`${base}/account/forgot`, async (c) => {
    if (!settings.passwordReset) return notFound();
    const { token, cookies } = await pages.csrfFor(c, "forgot");
    return pages.render("Reset your password", <ForgotPage base={base} csrf={token} />, 200, cookies);
  });

  app.post(`${base}/account/forgot`, pages.limit, async (c) => {
    if (!settings.passwordReset) return notFound();
    const form = await pages.formOf(c);
    if (!(await pages.csrfOk(c, form, "forgot"))) return pages.csrfFailed(c);
    const email = (form.email ?? "").trim().slice(0, 400);
    const address = pages.addressOf(c);
    if (address && !(await take(`forgot:${addressBucket(address)}`, LIMITS.forgotPerAddress))) {
      const { token, cookies } = await pages.csrfFor(c, "forgot");
      return pages.render("Reset your password", <ForgotPage base={base} csrf={token} error="Too many requests from your network. Try again in a few minutes." />, 429, cookies);
    }
    // Whether the address has an account is found out after answering: both answers do the same work.
    if (email) queue(() => requestReset(email));
    return pages.render("Check your mail", <CheckMailPage base={base} heading="Check your mail" text="If an account has this address, we sent it a link to choose a new password." />);
  });

  const requestReset = async (email: string) => {
    const account = await directory.findByEmail(email).catch(() => undefined);
    if (!account?.email || account.disabled || account.fixed) return;
    if (!(await take(`mail:reset:${account.sub}`, LIMITS.mailsPerAccount))) return;
    // The link is for this address only: after an email change it is refused (and removed).
    const token = await issueToken(account.sub, "password_reset", settings.resetLinkLifetime, { email: account.email });
    deps.emit({ type: "account.password_reset_requested", sub: account.sub });
    await deps.mailer.send(
      linkMessage(account.email, "Reset your password", ["Hello,", `someone asked to reset the password of your account at ${host}. To choose a new password, open this link:`], { url: link("reset", token), label: "Choose a new password" }, `The link works once and expires in ${hours(settings.resetLinkLifetime)}. If you did not ask for it, ignore this mail: your password stays.`),
    );
  };

  const resetForm = async (c: Context, formToken: string, error?: string, status = 200) => {
    const { token, cookies } = await pages.csrfFor(c, "reset");
    return pages.render("Choose a new password", <ResetPage base={base} csrf={token} token={formToken} error={error} />, status, cookies);
  };

  /** A reset link counts for an active stored account whose address is still the one the link was sent to. */
  const resetAllowed = (account: AccountView, data: Record<string, unknown>) => !account.disabled && !account.fixed && !!account.email && typeof data.email === "string" && account.email === data.email;

  // Opening the link uses it up: it is exchanged for a short-lived token in the form.
  app.get(`${base}/account/reset`, async (c) => {
    if (!settings.passwordReset) return notFound();
    const found = await takeToken(c.req.query("token"), "password_reset");
    const account = found && (await directory.get(found.sub));
    if (!found || !account || !resetAllowed(account, found.data)) return message("Link not valid", INVALID_LINK, 400);
    return resetForm(c, await issueToken(account.sub, "password_reset_form", RESET_FORM_LIFETIME, { email: account.email }));
  });

  app.post(`${base}/account/reset`, pages.limit, async (c) => {
    if (!settings.passwordReset) return notFound();
    const form = await pages.formOf(c);
    if (!(await pages.csrfOk(c, form, "reset"))) return pages.csrfFailed(c);
    const found = await takeToken(form.token, "password_reset_form");
    const account = found && (await directory.get(found.sub));
    if (!found || !account || !resetAllowed(account, found.data)) return message("Link not valid", INVALID_LINK, 400);
    try {
      // Whoever knew the old password is signed out everywhere (cookie-only sessions too), and the account's
      // tokens and consents are revoked (UserDirectory.setPassword): a reset is what people do when they fear
      // someone else got in.
      await directory.setPassword(account.sub, (form.password ?? "").slice(0, 2048), "self");
    } catch (error) {
      if (error instanceof AccountInputError) return resetForm(c, await issueToken(account.sub, "password_reset_form", RESET_FORM_LIFETIME, { email: account.email }), error.message, 400);
      throw error;
    }
    deps.emit({ type: "account.password_reset", sub: account.sub });
    // A reset proves the mailbox the link was sent to (resetAllowed: the account's address still): verified now.
    if (account.email && !account.emailVerified) {
      await directory.update(account.sub, { emailVerified: true }, "self");
      deps.emit({ type: "account.email_verified", sub: account.sub });
    }
    return message("Password changed", "Your new password is set, and you were signed out everywhere. Sign in with the new password.");
  });

  // The account page (signed in).
  const accountPage = async (c: Context, notice?: { notice?: string; error?: string }, status = 200) => {
    const session = await provider.getSession(c.req.raw);
    if (!session) return pages.redirectTo(`${base}/login?returnUrl=${encodeURIComponent(`${base}/account`)}`);
    const account = await directory.get(session.sub);
    if (!account) return message("No account", "You are signed in with an identity that has no account here.", 404);
    const { token, cookies } = await pages.csrfFor(c);
    const sessions = deps.serverSideSessions ? (await provider.querySessions({ subject: session.sub, count: 50 })).sessions.filter((s) => s.subject === session.sub) : undefined;
    const grants = await provider.listGrants(session.sub);
    const providersUrl = await deps.providersUrl?.();
    return pages.render(
      "Your account",
      async (nonce) => <AccountPage
        base={base}
        csrf={token}
        username={account.username}
        email={account.email}
        emailVerified={account.emailVerified}
        canChangePassword={!account.fixed}
        currentSid={session.sid}
        sessions={sessions}
        grants={grants}
        providersUrl={providersUrl}
        sections={deps.accountSections ? await deps.accountSections(c, account, token, nonce) : null}
        {...notice}
      />,
      status,
      cookies,
    );
  };
  app.get(`${base}/account`, (c) => accountPage(c, c.req.query("notice") === "password" ? { notice: "Password changed. Your other sessions were signed out." } : undefined));

  /** POST handlers of the account page: CSRF (bound to the session), then signed in, then the action. */
  const accountAction = (path: string, act: (c: Context, form: Record<string, string>, sub: string, sid: string) => Promise<Response>) =>
    app.post(`${base}/account/${path}`, pages.limit, async (c) => {
      const form = await pages.formOf(c);
      if (!(await pages.csrfOk(c, form))) return pages.csrfFailed(c);
      const session = await provider.getSession(c.req.raw);
      if (!session) return pages.redirectTo(`${base}/login?returnUrl=${encodeURIComponent(`${base}/account`)}`);
      return act(c, form, session.sub, session.sid);
    });

  accountAction("password", async (c, form, sub, sid) => {
    const account = await directory.get(sub);
    if (!account || account.fixed) return accountPage(c, { error: "This account's password cannot be changed here." }, 400);
    const current = (form.current_password ?? "").slice(0, 2048);
    const next = (form.new_password ?? "").slice(0, 2048);
    // Counted like sign-in failures of the account: the form must not become a password oracle. A slot is
    // held before the check (as the login form does), so parallel guesses cannot all get past the count.
    const reservation = await counter.reserve(`password:${sub}`, LIMITS.passwordPerAccount);
    if (!reservation) return accountPage(c, { error: "Too many wrong passwords. Try again later." }, 429);
    if (!current || !(await directory.checkPassword(sub, current))) {
      await counter.fail(reservation);
      return accountPage(c, { error: "Your current password is not right." }, 400);
    }
    await counter.release(reservation);
    const session = await provider.getSession(c.req.raw);
    if (!session || session.sid !== sid) return pages.redirectTo(`${base}/login?returnUrl=${encodeURIComponent(`${base}/account`)}`);
    let cookies: string[] = [];
    try {
      // Every other session ends and the account's other tokens are revoked; this one is signed in again
      // after the cutoff, keeping its sid (UserDirectory.setPassword).
      await directory.setPassword(sub, next, "self", {
        reissue: async () => {
          const signedIn = await provider.signIn(c.req.raw, { sub, name: session.name, amr: session.amr, auth_time: session.authTime, idp: session.idp, claims: session.claims }, { persistent: session.persistent });
          cookies = signedIn.cookies;
          return { sid: signedIn.session.sid, signedInAt: signedIn.session.signedInAt };
        },
      });
    } catch (error) {
      if (error instanceof AccountInputError) return accountPage(c, { error: error.message }, 400);
      throw error;
    }
    // The request's cookie is the old one: the page is shown by the next request, with the new cookie.
    return pages.redirectTo(`${base}/account?notice=password`, cookies);
  });

  accountAction("sessions", async (c, form, sub, sid) => {
    if (form.sessionId && form.sessionId !== sid) await provider.removeSessions({ sessionId: form.sessionId.slice(0, 200), subject: sub });
    return pages.redirectTo(`${base}/account`);
  });

  accountAction("applications", async (c, form, sub) => {
    if (form.clientId) await provider.revokeGrants(sub, form.clientId.slice(0, 400));
    return pages.redirectTo(`${base}/account`);
  });

  return {
    registrationUrl: (returnUrl) => (settings.registration ? `${base}/account/register${returnUrl ? `?returnUrl=${encodeURIComponent(returnUrl)}` : ""}` : undefined),
    forgotUrl: () => (settings.passwordReset ? `${base}/account/forgot` : undefined),
    async signInBlocked(c, account, returnUrl) {
      if (!settings.emailVerification || account.fixed || !account.email || account.emailVerified) return undefined;
      return verifyRequired(c, account, returnUrl);
    },
    async idle() {
      while (queued.size > 0) await Promise.all([...queued]);
    },
  };
}

function hours(seconds: number): string {
  if (seconds < 3600) return `${Math.round(seconds / 60)} minutes`;
  const h = Math.round(seconds / 3600);
  return h === 1 ? "1 hour" : `${h} hours`;
}
