import { FailureThrottle, issuerCookieName, meetsAcr, withSecondFactor, type AcrValue, type AuthenticationSession, type DataProtector, type InteractionDetails, type Provider, type SecondFactorService, type TesseraEvent } from "@tessera/server";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { Child } from "hono/jsx";
import QRCode from "qrcode";
import { PASSKEYS_SCRIPT } from "./passkeys-script.ts";
import { PasskeyStepUpPage, RecoveryCodesPage, SecondFactorPage, SecondFactorSections, SecondFactorSetupPage, type TotpEnrolmentView } from "./pages/second-factors.tsx";

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
  /** What approving the device authorization of `userCode` needs (undefined: no such pending request). */
  deviceRequirement(c: Context, userCode: string): Promise<{ acr?: AcrValue; secondFactorRequired?: boolean } | undefined>;
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
/**
 * Seconds after an authentication within which its session may change the account's factors (add or
 * remove TOTP, passkeys, recovery codes); older sessions confirm first, as strongly as the strongest factor.
 */
export const FACTOR_CHANGE_FRESHNESS = 300;
const CONFIRM_FIRST = "Confirm it's you first: sign in again, then try once more.";

/** What a sign-in or step-up must meet, from its authorization request, device request or account page. */
interface Requirement {
  acr?: AcrValue;
  maxAge?: number;
  /** A second-factor policy demands one (then a user without one enrols right after the password). */
  policy: boolean;
  prompt: string[];
}

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
  const loginUrl = (back?: string) => `${base}/login${back ? `?returnUrl=${encodeURIComponent(back)}` : ""}`;
  const accountUrl = `${base}/account`;

  /**
   * What the sign-in returning to `back` must meet: the authorization request's `acr`/`max_age`/policy;
   * for the account page (changing factors) a recent authentication as strong as the strongest factor;
   * for a device approval the client's policy; else only the provider-wide policy.
   */
  const requirementOf = async (c: Context, sub: string, back: string | undefined, details: InteractionDetails | undefined): Promise<Requirement> => {
    if (details) return { ...(details.acr ? { acr: details.acr } : {}), ...(details.maxAge !== undefined ? { maxAge: details.maxAge } : {}), policy: settings.required || details.secondFactorRequired === true, prompt: details.prompt };
    if (back === accountUrl) {
      const acr = await service.strongestAcr(sub);
      return { ...(acr ? { acr } : {}), maxAge: FACTOR_CHANGE_FRESHNESS, policy: settings.required, prompt: [] };
    }
    const userCode = back?.startsWith(`${base}/device?`) ? new URL(back, "http://host").searchParams.get("user_code") : null;
    const device = userCode ? await kit.deviceRequirement(c, userCode) : undefined;
    return { ...(device?.acr ? { acr: device.acr } : {}), policy: settings.required || device?.secondFactorRequired === true, prompt: [] };
  };

  /** True when `session` may change the account's second factors now (see {@link FACTOR_CHANGE_FRESHNESS}). */
  const mayChangeFactors = async (session: AuthenticationSession) =>
    deps.now() - session.authTime <= FACTOR_CHANGE_FRESHNESS && meetsAcr(session.amr, await service.strongestAcr(session.sub));

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

  /**
   * True when a password sign-in of `sub` must show a code before it counts: the user has TOTP, or a policy
   * demands a second factor (then one without enrols; a request's `acr_values` alone never makes one enrol
   * at sign-in, see {@link SecondFactorSetupPage}).
   */
  const needsCode = async (c: Context, sub: string, back: string | undefined, details: InteractionDetails | undefined) =>
    settings.totp && ((await service.hasSecondFactor(sub)) || (await requirementOf(c, sub, back, details)).policy);

  /**
   * The code step is for users with TOTP; a user without it enrols there only right after the password
   * (a pending sign-in, not a session) and only when a policy demands a second factor. A first enrolment
   * proves possession of the app from then on, not before: the policy accepts that for the first sign-in.
   */
  const mayUseCodeStep = async (c: Context, who: { pending?: PendingSignIn; sub: string }, back: string | undefined, details: InteractionDetails | undefined) =>
    (await service.hasSecondFactor(who.sub)) || (who.pending !== undefined && (await requirementOf(c, who.sub, back, details)).policy);

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
      if (!(await needsCode(c, user.sub, options.back, options.details))) return undefined;
      const sealed = await deps.protector.sealJwt("second-factor", { t: "pending", sub: user.sub, ...(user.name !== undefined ? { name: user.name } : {}), p: options.persistent }, deps.now() + PENDING_LIFETIME);
      return kit.redirectTo(secondFactorUrl(options.back), [...cookies, pendingSetCookie(sealed, PENDING_LIFETIME)]);
    },

    /**
     * The login page's answer for a signed-in user whose session is too weak or too old for the request
     * (an authorization request, the account page's factor changes, a device approval): a code, a passkey,
     * or the page that says a second factor must be set up first. Undefined: show the login form.
     *
     * One authentication event: a recent session gains the code (its `auth_time` stays, so `max_age` still
     * counts from the password). Past `max_age` the answer must be fresh on its own: a passkey for `phr`,
     * the password and the code for `mfa` (the login form), a code alone (amr `otp`) otherwise.
     */
    async stepUp(c: Context, details: InteractionDetails | undefined, back: string | undefined): Promise<Response | undefined> {
      if (!details && !back) return undefined;
      const session = await provider.getSession(c.req.raw);
      if (!session) return undefined;
      const need = await requirementOf(c, session.sub, back, details);
      if (need.prompt.includes("login")) return undefined;
      const weak = !meetsAcr(session.amr, need.acr);
      const old = need.maxAge !== undefined && deps.now() - session.authTime > need.maxAge;
      if (!weak && !old) return undefined;
      const passkeyPage = async () => {
        const { token, cookies } = await kit.csrfFor(c, back);
        return kit.render("Use your passkey", (nonce) => <PasskeyStepUpPage base={base} csrf={token} returnUrl={back} nonce={nonce} />, 200, cookies);
      };
      // A passkey is the way up to `phr`, and to `mfa` where authenticator apps are off.
      if (need.acr === "phr" || (need.acr === "mfa" && !settings.totp)) return settings.passkeys ? passkeyPage() : undefined;
      if (!settings.totp) return undefined;
      const hasCode = await service.hasSecondFactor(session.sub);
      if (old) return need.acr === undefined && hasCode ? codePage(c, session.sub, back, { stepUp: true }) : undefined;
      if (hasCode) return codePage(c, session.sub, back, { stepUp: true });
      if (settings.passkeys && (await service.strongestAcr(session.sub)) === "phr") return passkeyPage();
      // No second factor: enrolment only right after a password (the login form), and only for a policy.
      if (need.policy) return undefined;
      return kit.render("Set up two-step verification", <SecondFactorSetupPage base={base} returnUrl={back} />);
    },

    /** Mounts the code step, passkey sign-in, the account page's actions and the passkey script. */
    mount(app: Hono) {
      app.get(`${base}/assets/passkeys.js`, () => new Response(PASSKEYS_SCRIPT, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache", "x-content-type-options": "nosniff" } }));

      app.get(`${base}/login/second-factor`, async (c) => {
        const { back, details } = await kit.returnTarget(c.req.query("returnUrl"));
        const who = await subjectOf(c);
        if (!who || !settings.totp || !(await mayUseCodeStep(c, who, back, details))) return kit.redirectTo(loginUrl(back));
        return codePage(c, who.sub, back, { stepUp: !who.pending });
      });

      app.post(`${base}/login/second-factor`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        const { back, details } = await kit.returnTarget(form.returnUrl);
        if (!(await kit.csrfOk(c, form, back))) return kit.csrfFailed(c);
        const who = await subjectOf(c);
        if (!who || !settings.totp || !(await mayUseCodeStep(c, who, back, details))) return kit.redirectTo(loginUrl(back));
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
        // One authentication event (see stepUp): a recent session gains the code and keeps its auth_time;
        // past the request's max_age only the code counts, as of now.
        const old = session ? (await requirementOf(c, sub, back, details)).maxAge : undefined;
        const stale = session !== undefined && old !== undefined && deps.now() - session.authTime > old;
        const amr = who.pending ? withSecondFactor(["pwd"], "otp") : stale ? ["otp"] : withSecondFactor(session!.amr, "otp");
        const authTime = who.pending || stale ? deps.now() : session!.authTime;
        const name = who.pending ? who.pending.name : session!.name;
        const { cookies } = await provider.signIn(
          c.req.raw,
          { sub, ...(name !== undefined ? { name } : {}), amr, auth_time: authTime, ...(session ? { idp: session.idp, claims: session.claims } : { idp: "local" }) },
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

      // The account page's actions (signed in; CSRF bound to the session). Changing factors takes a recent
      // authentication as strong as the strongest factor (mayChangeFactors): a stolen session alone cannot.
      const signedIn = async (c: Context) => provider.getSession(c.req.raw);
      const toLogin = () => kit.redirectTo(loginUrl(accountUrl));
      /** The session, when it may change factors; else the response that sends it to confirm first. */
      const changer = async (c: Context): Promise<{ session: AuthenticationSession } | { response: Response }> => {
        const session = await signedIn(c);
        if (!session) return { response: toLogin() };
        if (!(await mayChangeFactors(session))) return { response: toLogin() };
        return { session };
      };
      const jsonChanger = async (c: Context): Promise<{ session: AuthenticationSession } | { response: Response }> => {
        const session = await signedIn(c);
        if (!session || !(await mayChangeFactors(session))) return { response: json({ error: "access_denied", error_description: CONFIRM_FIRST, location: loginUrl(accountUrl) }, 403) };
        return { session };
      };
      const changed = (sub: string, fields: string[]) => deps.emit({ type: "account.updated", sub, by: "self", fields });
      /** A current TOTP code (never a recovery code), throttled like sign-in codes; the failure, or undefined. */
      const currentCode = async (sub: string, typed: string | undefined): Promise<"throttled" | "code" | undefined> => {
        const attempt = await deps.throttle.reserve(`second-factor:${sub}`, CODE_LIMIT);
        if (!attempt) return "throttled";
        if (!(await service.verifyTotp(sub, (typed ?? "").slice(0, 64)))) {
          await deps.throttle.fail(attempt);
          return "code";
        }
        await deps.throttle.clear(`second-factor:${sub}`);
        return undefined;
      };

      app.post(`${accountUrl}/totp`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const who = await changer(c);
        if ("response" in who) return who.response;
        const { session } = who;
        if (!settings.totp || (await service.hasSecondFactor(session.sub))) return kit.redirectTo(accountUrl);
        const ticket = (form.ticket ?? "").slice(0, 4096);
        const codes = await service.confirmTotp(session.sub, ticket, (form.code ?? "").slice(0, 64));
        if (!codes) {
          // Lost a race with another confirmation: TOTP is on now.
          if (await service.hasSecondFactor(session.sub)) return kit.redirectTo(accountUrl);
          // The same secret again (the ticket stays in the form's body, never in a URL), with the error.
          const { token, cookies } = await kit.csrfFor(c);
          const enrolment = await enrolmentView(session.sub, ticket);
          return kit.render("Two-step verification", (nonce) => <SecondFactorSections base={base} csrf={token} nonce={nonce} totp={{ enabled: false, ...(enrolment ? { enrolment } : {}), error: WRONG_CODE }} recoveryCodes={0} />, 400, cookies);
        }
        changed(session.sub, ["totp", "recovery_codes"]);
        // The session keeps its authentication: enrolling is not signing in (a request that needs `mfa` steps up).
        return kit.render("Your recovery codes", <RecoveryCodesPage codes={codes} continueUrl={accountUrl} heading="Two-step verification is on" />);
      });

      app.post(`${accountUrl}/totp/remove`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const who = await changer(c);
        if ("response" in who) return who.response;
        const { session } = who;
        // Turning the second factor off takes the second factor itself (OWASP MFA cheat sheet): a current
        // code from the app, not a recovery code (those can be made anew from the session).
        const failed = await currentCode(session.sub, form.current_code);
        if (failed) return kit.redirectTo(`${accountUrl}?totp_remove_error=${failed}`);
        await service.removeTotp(session.sub);
        changed(session.sub, ["totp", "recovery_codes"]);
        return kit.redirectTo(accountUrl);
      });

      app.post(`${accountUrl}/recovery-codes`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const who = await changer(c);
        if ("response" in who) return who.response;
        const { session } = who;
        if (!(await service.hasSecondFactor(session.sub))) return kit.redirectTo(accountUrl);
        const failed = await currentCode(session.sub, form.current_code);
        if (failed) return kit.redirectTo(`${accountUrl}?recovery_error=${failed}`);
        const codes = await service.newRecoveryCodes(session.sub);
        changed(session.sub, ["recovery_codes"]);
        return kit.render("Your recovery codes", <RecoveryCodesPage codes={codes} continueUrl={accountUrl} heading="New recovery codes" />);
      });

      app.post(`${accountUrl}/passkeys/options`, kit.limit, async (c) => {
        const form = strings(await readJson(c));
        if (!(await kit.csrfOk(c, form))) return refused(403, "This form expired. Reload the page and try again.");
        if (!settings.passkeys) return refused(404, "passkeys are off");
        const who = await jsonChanger(c);
        if ("response" in who) return who.response;
        const { session } = who;
        const account = await deps.account(session.sub);
        if (!account) return refused(403, "Sign in again to add a passkey.");
        return json(await service.passkeyRegistration({ sub: session.sub, username: account.username, ...(account.name !== undefined ? { displayName: account.name } : {}) }));
      });

      app.post(`${accountUrl}/passkeys`, kit.limit, async (c) => {
        const body = await readJson(c);
        const form = strings(body);
        if (!(await kit.csrfOk(c, form))) return refused(403, "This form expired. Reload the page and try again.");
        if (!settings.passkeys) return refused(404, "passkeys are off");
        const who = await jsonChanger(c);
        if ("response" in who) return who.response;
        const { session } = who;
        const result = await service.registerPasskey(session.sub, form.ticket ?? "", body.response, form.name ?? "");
        if (!result.ok) return refused(400, result.reason === "duplicate" ? "This passkey is registered already." : "The passkey could not be added. Try again.");
        changed(session.sub, ["passkeys"]);
        return json({ location: accountUrl });
      });

      app.post(`${accountUrl}/passkeys/remove`, kit.limit, async (c) => {
        const form = await kit.formOf(c);
        if (!(await kit.csrfOk(c, form))) return kit.csrfFailed(c);
        const who = await changer(c);
        if ("response" in who) return who.response;
        const { session } = who;
        if (await service.removePasskey(session.sub, form.id ?? "")) changed(session.sub, ["passkeys"]);
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
        } else {
          totp = { enabled: false, enrolment: await enrolmentView(sub) };
        }
      }
      const recoveryFailed = c.req.query("recovery_error");
      const recoveryError = recoveryFailed ? (recoveryFailed === "throttled" ? TOO_MANY_CODES : WRONG_CODE) : undefined;
      return <SecondFactorSections base={base} csrf={csrf} nonce={nonce} totp={totp} recoveryCodes={status.recoveryCodes} {...(recoveryError ? { recoveryError } : {})} passkeys={settings.passkeys ? status.passkeys : undefined} />;
    },

    /** The login page's passkey sign-in form, when passkeys are on. */
    passkeysOn: settings.passkeys,
  };
}

export type SecondFactors = ReturnType<typeof secondFactors>;
