import { FailureThrottle, issuerCookieName, meetsAcr, withSecondFactor, type DataProtector, type InteractionDetails, type Provider, type SecondFactorService, type TesseraEvent } from "@tessera/server";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { Child } from "hono/jsx";
import QRCode from "qrcode";
import { PASSKEYS_SCRIPT } from "./passkeys-script.ts";
import { PasskeyStepUpPage, RecoveryCodesPage, SecondFactorPage, SecondFactorSections, type TotpEnrolmentView } from "./pages/second-factors.tsx";

/** `accounts.mfa` of the config, defaults applied. */
export interface MfaSettings {
  /** TOTP (authenticator apps) with recovery codes (default true). */
  totp: boolean;
  /** Passkeys: registration on the account page, sign-in from the login page (default true). */
  passkeys: boolean;
  /** Every sign-in needs a second factor; users without one enrol at sign-in (default false). */
  required: boolean;
}

/** The settings from the config's `accounts.mfa`. */
export function mfaSettings(mfa: Partial<MfaSettings> | undefined): MfaSettings {
  return { totp: mfa?.totp ?? true, passkeys: mfa?.passkeys ?? true, required: mfa?.required ?? false };
}

/** The host's page plumbing this module uses (the same helpers the host's own pages use). */
export interface SecondFactorKit {
  render(title: string, body: Child | ((nonce: string) => Child | Promise<Child>), status?: number, cookies?: string[]): Promise<Response>;
  redirectTo(location: string, cookies?: string[]): Response;
  csrfFor(c: Context, pending?: string): Promise<{ token: string; cookies: string[] }>;
  csrfOk(c: Context, form: Record<string, string>, pending?: string): Promise<boolean>;
  csrfFailed(c: Context): Promise<Response>;
  formOf(c: Context): Promise<Record<string, string>>;
  /** Where a login may return to: a pending authorization request's URL or one of the host's own pages. */
  returnTarget(returnUrl: string | undefined): Promise<{ back?: string; details?: InteractionDetails }>;
  limit: MiddlewareHandler;
}

/** Dependencies of {@link secondFactors}. */
export interface SecondFactorDeps {
  base: string;
  secure: boolean;
  provider: Provider;
  service: SecondFactorService;
  settings: MfaSettings;
  /** Seals the pending sign-in between the password and the code. */
  protector: DataProtector;
  /** Counts wrong codes per account in the store (every process sees them). */
  throttle: FailureThrottle;
  /** The account's name for authenticator apps and passkeys, and its display name; undefined when it is gone or disabled. */
  account(sub: string): Promise<{ username: string; name?: string } | undefined>;
  emit(event: TesseraEvent): void;
  /** Unix seconds. */
  now(): number;
}

/** Wrong codes per account within the window before codes are refused for a while (like passwords). */
const CODE_LIMIT = { window: 900, max: 5 };
/** Seconds between the password and the code. */
const PENDING_LIFETIME = 300;
const PENDING_COOKIE = "tessera.second_factor";
const WRONG_CODE = "That code is not valid. Try the current code from your app, or a recovery code.";
const TOO_MANY_CODES = "Too many wrong codes. Wait a few minutes and try again.";
const PASSKEY_FAILED = "That passkey could not be used here.";

/** A sign-in between its password and its second factor (sealed in a short-lived cookie). */
interface PendingSignIn {
  sub: string;
  name?: string;
  persistent: boolean;
}

/**
 * Second factors in the host: the code step after the password (and enrolment there when a policy needs a
 * second factor), step-up of a signed-in session (acr_values, max_age, the second-factor policy), passkey
 * sign-in from the login page, and the account page's sections for TOTP, recovery codes and passkeys.
 */
export function secondFactors(deps: SecondFactorDeps, kit: SecondFactorKit) {
  const { base, provider, service, settings } = deps;
  const pendingCookie = issuerCookieName(PENDING_COOKIE, deps.secure, base || "/");
  const cookiePath = deps.secure ? "/" : base || "/";
  const pendingSetCookie = (value: string, maxAge: number) => `${pendingCookie}=${value}; Path=${cookiePath}; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${deps.secure ? "; Secure" : ""}`;
  const secondFactorUrl = (back?: string) => `${base}/login/second-factor${back ? `?returnUrl=${encodeURIComponent(back)}` : ""}`;

  const readPending = async (c: Context): Promise<PendingSignIn | undefined> => {
    const value = getCookie(c, pendingCookie);
    if (!value || value.length > 4096) return undefined;
    const payload = await deps.protector.openJwt("second-factor", value, deps.now());
    if (payload?.t !== "pending" || typeof payload.sub !== "string") return undefined;
    return { sub: payload.sub, ...(typeof payload.name === "string" ? { name: payload.name } : {}), persistent: payload.p === true };
  };

  /** Who the code step is for: the pending password sign-in, else the signed-in user stepping up. */
  const subjectOf = async (c: Context) => {
    const pending = await readPending(c);
    if (pending) return { pending, sub: pending.sub };
    const session = await provider.getSession(c.req.raw);
    return session ? { session, sub: session.sub } : undefined;
  };

  const enrolmentView = async (sub: string, ticket?: string): Promise<TotpEnrolmentView | undefined> => {
    const account = await deps.account(sub);
    const label = account?.username ?? sub;
    const enrolment = (ticket ? await service.reopenTotp(sub, ticket, label) : undefined) ?? (await service.beginTotp(sub, label));
    return { secret: enrolment.secret, ticket: enrolment.ticket, qrSvg: await QRCode.toString(enrolment.uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 }) };
  };

  /** True when a sign-in of `sub` for this request must show a code (or enrol one) before it counts. */
  const needsCode = async (sub: string, details: InteractionDetails | undefined) =>
    settings.totp && ((await service.hasSecondFactor(sub)) || settings.required || details?.acr === "mfa");

  const codePage = async (c: Context, sub: string, back: string | undefined, options: { error?: string; status?: number; ticket?: string; stepUp?: boolean } = {}) => {
    const { token, cookies } = await kit.csrfFor(c, back);
    const enrolment = (await service.hasSecondFactor(sub)) ? undefined : await enrolmentView(sub, options.ticket);
    return kit.render("Two-step verification", <SecondFactorPage base={base} csrf={token} returnUrl={back} error={options.error} enrolment={enrolment} stepUp={options.stepUp} />, options.status ?? 200, cookies);
  };

  return {
    /**
     * Called once the password is right: the response that continues to the code step when this sign-in
     * needs one, else undefined (sign in with the password alone). `cookies` go with the response.
     */
    async afterPassword(c: Context, user: { sub: string; name?: string }, options: { persistent: boolean; back?: string; details?: InteractionDetails }, cookies: string[]): Promise<Response | undefined> {
      if (!(await needsCode(user.sub, options.details))) return undefined;
      const sealed = await deps.protector.sealJwt("second-factor", { t: "pending", sub: user.sub, ...(user.name !== undefined ? { name: user.name } : {}), p: options.persistent }, deps.now() + PENDING_LIFETIME);
      return kit.redirectTo(secondFactorUrl(options.back), [...cookies, pendingSetCookie(sealed, PENDING_LIFETIME)]);
    },

    /**
     * The login page's answer for a signed-in user whose session is too weak or too old for the request
     * (step-up, not a new password): the code step, or a passkey for `phr`. Undefined: show the login form.
     */
    async stepUp(c: Context, details: InteractionDetails | undefined, back: string | undefined): Promise<Response | undefined> {
      if (!details) return undefined;
      const session = await provider.getSession(c.req.raw);
      if (!session || details.prompt.includes("login")) return undefined;
      // A passkey is the way up to `phr`, and to `mfa` where authenticator apps are off.
      if ((details.acr === "phr" || (details.acr === "mfa" && !settings.totp)) && !meetsAcr(session.amr, details.acr)) {
        if (!settings.passkeys) return undefined;
        const { token, cookies } = await kit.csrfFor(c, back);
        return kit.render("Use your passkey", (nonce) => <PasskeyStepUpPage base={base} csrf={token} returnUrl={back} nonce={nonce} />, 200, cookies);
      }
      const weak = details.acr !== undefined && !meetsAcr(session.amr, details.acr);
      const old = details.maxAge !== undefined && deps.now() - session.authTime > details.maxAge;
      if (!weak && !old) return undefined;
      // Too old but without a second factor to show: the password again.
      if (!weak && !(await service.hasSecondFactor(session.sub))) return undefined;
      if (!settings.totp) return undefined;
      return codePage(c, session.sub, back, { stepUp: true });
    },

    /** Mounts the code step, passkey sign-in, the account page's actions and the passkey script. */
    mount(app: Hono) {
      app.get(`${base}/assets/passkeys.js`, () => new Response(PASSKEYS_SCRIPT, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache", "x-content-type-options": "nosniff" } }));

      app.get(`${base}/login/second-factor`, async (c) => {
        const { back } = await kit.returnTarget(c.req.query("returnUrl"));
        const who = await subjectOf(c);
        if (!who || !settings.totp) return kit.redirectTo(`${base}/login${back ? `?returnUrl=${encodeURIComponent(back)}` : ""}`);
        return codePage(c, who.sub, back, { stepUp: !who.pending });
      });

      app.post(`${base}/login/second-factor`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        const { back } = await kit.returnTarget(form.returnUrl);
        if (!(await kit.csrfOk(c, form, back))) return kit.csrfFailed(c);
        const who = await subjectOf(c);
        if (!who || !settings.totp) return kit.redirectTo(`${base}/login${back ? `?returnUrl=${encodeURIComponent(back)}` : ""}`);
        const { sub } = who;
        // Throttled like passwords: a slot is taken before the code is checked.
        const attempt = await deps.throttle.reserve(`second-factor:${sub}`, CODE_LIMIT);
        if (!attempt) {
          deps.emit({ type: "sign_in.failed", reason: "throttled" });
          return codePage(c, sub, back, { error: TOO_MANY_CODES, status: 429, ticket: form.ticket });
        }
        const code = (form.code ?? "").slice(0, 64);
        let used: "totp" | "recovery_code" | undefined;
        let recoveryCodes: string[] | undefined;
        if (await service.hasSecondFactor(sub)) {
          used = await service.verifyCode(sub, code);
        } else {
          // Enrolment at sign-in (a policy needs a second factor): the confirming code is the second factor.
          recoveryCodes = await service.confirmTotp(sub, (form.ticket ?? "").slice(0, 4096), code);
          if (recoveryCodes) {
            used = "totp";
            deps.emit({ type: "account.updated", sub, by: "self", fields: ["totp"] });
          }
        }
        if (!used) {
          await deps.throttle.fail(attempt);
          deps.emit({ type: "sign_in.failed", reason: "credentials" });
          return codePage(c, sub, back, { error: WRONG_CODE, ticket: form.ticket, stepUp: !who.pending });
        }
        await deps.throttle.clear(`second-factor:${sub}`);
        if (used === "recovery_code") deps.emit({ type: "account.updated", sub, by: "self", fields: ["recovery_codes"] });
        const session = who.session;
        const amr = withSecondFactor(who.pending ? ["pwd"] : session!.amr, "otp");
        const name = who.pending ? who.pending.name : session!.name;
        const { cookies } = await provider.signIn(
          c.req.raw,
          { sub, ...(name !== undefined ? { name } : {}), amr, auth_time: deps.now(), ...(session ? { idp: session.idp, claims: session.claims } : { idp: "local" }) },
          { persistent: who.pending ? who.pending.persistent : session!.persistent },
        );
        cookies.push(pendingSetCookie("", 0));
        const next = back ?? `${base}/`;
        if (recoveryCodes) return kit.render("Your recovery codes", <RecoveryCodesPage codes={recoveryCodes} continueUrl={next} />, 200, cookies);
        return kit.redirectTo(next, cookies);
      });

      // Passkey sign-in (discoverable credential: no username first).
      const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store" } });
      const refused = (status: number, description: string) => json({ error: status === 403 ? "access_denied" : "invalid_request", error_description: description }, status);
      const readJson = async (c: Context): Promise<Record<string, unknown>> => {
        const text = await c.req.text().catch(() => "");
        if (text.length > 64 * 1024) return {};
        try {
          const value = JSON.parse(text) as unknown;
          return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
        } catch {
          return {};
        }
      };
      const strings = (body: Record<string, unknown>) => Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === "string"));

      app.post(`${base}/login/passkey/options`, kit.limit, async (c) => {
        if (!settings.passkeys) return refused(404, "passkeys are off");
        const form = strings(await readJson(c));
        const { back } = await kit.returnTarget(form.returnUrl);
        if (!(await kit.csrfOk(c, form, back))) return refused(403, "This form expired. Reload the page and try again.");
        return json(await service.passkeySignIn());
      });

      app.post(`${base}/login/passkey`, kit.limit, async (c) => {
        if (!settings.passkeys) return refused(404, "passkeys are off");
        const body = await readJson(c);
        const form = strings(body);
        const { back } = await kit.returnTarget(form.returnUrl);
        if (!(await kit.csrfOk(c, form, back))) return refused(403, "This form expired. Reload the page and try again.");
        const result = await service.verifyPasskeySignIn(form.ticket ?? "", body.response);
        const account = result.ok ? await deps.account(result.sub) : undefined;
        if (!result.ok || !account) {
          deps.emit({ type: "sign_in.failed", reason: "credentials" });
          return refused(400, PASSKEY_FAILED);
        }
        const name = account.name;
        const { cookies } = await provider.signIn(c.req.raw, { sub: result.sub, ...(name !== undefined ? { name } : {}), amr: result.amr, idp: "local" });
        const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
        for (const cookie of [...cookies, pendingSetCookie("", 0)]) headers.append("set-cookie", cookie);
        return new Response(JSON.stringify({ location: back ?? `${base}/` }), { status: 200, headers });
      });

      // The account page's actions (signed in; CSRF bound to the session).
      const accountUrl = `${base}/account`;
      const signedIn = async (c: Context) => provider.getSession(c.req.raw);
      const toLogin = () => kit.redirectTo(`${base}/login?returnUrl=${encodeURIComponent(accountUrl)}`);

      app.post(`${accountUrl}/totp`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const session = await signedIn(c);
        if (!session) return toLogin();
        if (!settings.totp) return kit.redirectTo(accountUrl);
        const codes = await service.confirmTotp(session.sub, (form.ticket ?? "").slice(0, 4096), (form.code ?? "").slice(0, 64));
        if (!codes) return kit.redirectTo(`${accountUrl}?totp_error=1&ticket=${encodeURIComponent((form.ticket ?? "").slice(0, 4096))}`);
        deps.emit({ type: "account.updated", sub: session.sub, by: "self", fields: ["totp", "recovery_codes"] });
        // The session keeps its authentication: enrolling is not signing in (a request that needs `mfa` steps up).
        return kit.render("Your recovery codes", <RecoveryCodesPage codes={codes} continueUrl={accountUrl} heading="Two-step verification is on" />);
      });

      app.post(`${accountUrl}/totp/remove`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const session = await signedIn(c);
        if (!session) return toLogin();
        // Turning the second factor off takes a second factor (OWASP MFA cheat sheet): a stolen session alone cannot.
        const attempt = await deps.throttle.reserve(`second-factor:${session.sub}`, CODE_LIMIT);
        if (!attempt) return kit.redirectTo(`${accountUrl}?totp_remove_error=throttled`);
        if (!(await service.verifyCode(session.sub, (form.current_code ?? "").slice(0, 64)))) {
          await deps.throttle.fail(attempt);
          return kit.redirectTo(`${accountUrl}?totp_remove_error=code`);
        }
        await deps.throttle.clear(`second-factor:${session.sub}`);
        await service.removeTotp(session.sub);
        deps.emit({ type: "account.updated", sub: session.sub, by: "self", fields: ["totp", "recovery_codes"] });
        return kit.redirectTo(accountUrl);
      });

      app.post(`${accountUrl}/recovery-codes`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const session = await signedIn(c);
        if (!session) return toLogin();
        if (!(await service.hasSecondFactor(session.sub))) return kit.redirectTo(accountUrl);
        const codes = await service.newRecoveryCodes(session.sub);
        deps.emit({ type: "account.updated", sub: session.sub, by: "self", fields: ["recovery_codes"] });
        return kit.render("Your recovery codes", <RecoveryCodesPage codes={codes} continueUrl={accountUrl} heading="New recovery codes" />);
      });

      app.post(`${accountUrl}/passkeys/options`, kit.limit, async (c) => {
        const form = strings(await readJson(c));
        if (!(await kit.csrfOk(c, form))) return refused(403, "This form expired. Reload the page and try again.");
        const session = await signedIn(c);
        if (!session) return refused(403, "Sign in again to add a passkey.");
        if (!settings.passkeys) return refused(404, "passkeys are off");
        const account = await deps.account(session.sub);
        if (!account) return refused(403, "Sign in again to add a passkey.");
        return json(await service.passkeyRegistration({ sub: session.sub, username: account.username, ...(account.name !== undefined ? { displayName: account.name } : {}) }));
      });

      app.post(`${accountUrl}/passkeys`, kit.limit, async (c) => {
        const body = await readJson(c);
        const form = strings(body);
        if (!(await kit.csrfOk(c, form))) return refused(403, "This form expired. Reload the page and try again.");
        const session = await signedIn(c);
        if (!session) return refused(403, "Sign in again to add a passkey.");
        if (!settings.passkeys) return refused(404, "passkeys are off");
        const result = await service.registerPasskey(session.sub, form.ticket ?? "", body.response, form.name ?? "");
        if (!result.ok) return refused(400, result.reason === "duplicate" ? "This passkey is registered already." : "The passkey could not be added. Try again.");
        deps.emit({ type: "account.updated", sub: session.sub, by: "self", fields: ["passkeys"] });
        return json({ location: accountUrl });
      });

      app.post(`${accountUrl}/passkeys/remove`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const session = await signedIn(c);
        if (!session) return toLogin();
        if (await service.removePasskey(session.sub, form.id ?? "")) deps.emit({ type: "account.updated", sub: session.sub, by: "self", fields: ["passkeys"] });
        return kit.redirectTo(accountUrl);
      });
    },

    /** The account page's sections for `sub` (TOTP enrolment or status, recovery codes, passkeys). */
    async accountSections(c: Context, sub: string, csrf: string, nonce: string): Promise<Child> {
      const status = await service.status(sub);
      let totp: Parameters<typeof SecondFactorSections>[0]["totp"];
      if (settings.totp) {
        if (status.totp) {
          const failed = c.req.query("totp_remove_error");
          totp = { enabled: true, ...(failed ? { error: failed === "throttled" ? TOO_MANY_CODES : WRONG_CODE } : {}) };
        }
        else {
          const failed = c.req.query("totp_error") === "1";
          totp = { enabled: false, enrolment: await enrolmentView(sub, failed ? c.req.query("ticket") : undefined), ...(failed ? { error: WRONG_CODE } : {}) };
        }
      }
      return <SecondFactorSections base={base} csrf={csrf} nonce={nonce} totp={totp} recoveryCodes={status.recoveryCodes} passkeys={settings.passkeys ? status.passkeys : undefined} />;
    },

    /** The login page's passkey sign-in form, when passkeys are on. */
    passkeysOn: settings.passkeys,
  };
}

export type SecondFactors = ReturnType<typeof secondFactors>;
