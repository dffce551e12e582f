import type { PasskeyInfo } from "@tessera/server";
import { raw } from "hono/html";

/** A TOTP enrolment as a page shows it: the secret (typed into an app) and its QR code (inline SVG). */
export interface TotpEnrolmentView {
  secret: string;
  /** SVG markup rendered here from the otpauth URI (no outside service). */
  qrSvg: string;
  ticket: string;
}

const day = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 10);

/** The secret, the QR code, and the code that confirms them; inside a form that posts `ticket` and `code`. */
function TotpEnrolmentFields(props: { enrolment: TotpEnrolmentView }) {
  return (
    <>
      <p>Scan this code with an authenticator app, or type the key into it.</p>
      <div id="totp-qr" class="qr" role="img" aria-label="QR code of the authenticator key">
        {raw(props.enrolment.qrSvg)}
      </div>
      <p>
        Key: <code data-totp-secret={props.enrolment.secret}>{props.enrolment.secret.replace(/(.{4})/g, "$1 ").trim()}</code>
      </p>
      <input type="hidden" name="ticket" value={props.enrolment.ticket} />
    </>
  );
}

/** The code field (a TOTP code, or a recovery code at sign-in). */
function CodeField(props: { label: string; autofocus?: boolean }) {
  return (
    <>
      <label for="code">{props.label}</label>
      <input type="text" id="code" name="code" inputmode="text" autocomplete="one-time-code" autocapitalize="none" spellcheck={false} maxlength={32} required autofocus={props.autofocus ?? true} />
    </>
  );
}

/** Sign-in, second step (contract §14): a code from the authenticator app or a recovery code; or enrolment when a policy demands a second factor. */
export function SecondFactorPage(props: { base: string; csrf: string; returnUrl?: string; error?: string; enrolment?: TotpEnrolmentView; stepUp?: boolean }) {
  return (
    <>
      <h1>{props.enrolment ? "Set up a second factor" : "Two-step verification"}</h1>
      <p class="muted">
        {props.enrolment
          ? "This sign-in needs a second factor. Set up an authenticator app to continue."
          : props.stepUp
            ? "This application asks you to confirm it's you with your authenticator app."
            : "Enter the code from your authenticator app, or one of your recovery codes."}
      </p>
      {props.error ? (
        <p class="error" role="alert" id="second-factor-error">
          {props.error}
        </p>
      ) : null}
      <form method="post" action={`${props.base}/login/second-factor`} novalidate>
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.returnUrl ? <input type="hidden" name="returnUrl" value={props.returnUrl} /> : null}
        {props.enrolment ? <TotpEnrolmentFields enrolment={props.enrolment} /> : null}
        <CodeField label={props.enrolment ? "Code from the app" : "Code"} />
        <button type="submit">{props.enrolment ? "Confirm and continue" : "Verify"}</button>
      </form>
      <p class="muted">
        <a href={`${props.base}/login?another=1${props.returnUrl ? `&returnUrl=${encodeURIComponent(props.returnUrl)}` : ""}`}>Sign in as someone else</a>
      </p>
    </>
  );
}

/** The passkey sign-in form (`button[name=passkey]`), driven by the served script. */
export function PasskeySignIn(props: { base: string; csrf: string; returnUrl?: string; nonce: string; label?: string }) {
  return (
    <>
      <form method="post" action={`${props.base}/login/passkey`} data-passkey="get" data-options-url={`${props.base}/login/passkey/options`} data-finish-url={`${props.base}/login/passkey`} class="passkey">
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.returnUrl ? <input type="hidden" name="returnUrl" value={props.returnUrl} /> : null}
        <button type="button" name="passkey" value="1" class="secondary">
          {props.label ?? "Sign in with a passkey"}
        </button>
        <p class="error" role="alert" data-passkey-status hidden></p>
      </form>
      <script nonce={props.nonce} src={`${props.base}/assets/passkeys.js`} defer></script>
    </>
  );
}

/** Step-up to a phishing-resistant sign-in (acr `phr`): only a passkey will do. */
export function PasskeyStepUpPage(props: { base: string; csrf: string; returnUrl?: string; nonce: string }) {
  return (
    <>
      <h1>Use your passkey</h1>
      <p class="muted">This application asks for a sign-in with a passkey.</p>
      <PasskeySignIn base={props.base} csrf={props.csrf} returnUrl={props.returnUrl} nonce={props.nonce} label="Continue with a passkey" />
      <p class="muted">No passkey yet? Sign in, then add one on your account page.</p>
    </>
  );
}

/**
 * A request asked for two factors (`acr_values=mfa`) from a user who has none, without a policy that
 * demands one: a second factor is set up on the account page (after a recent sign-in), not on the spot.
 */
export function SecondFactorSetupPage(props: { base: string; returnUrl?: string }) {
  return (
    <>
      <h1>Set up two-step verification</h1>
      <p class="muted" id="second-factor-setup">
        This application asks for a sign-in with two-step verification, and your account has none yet. Set up an authenticator app or a passkey on your account page, then return to the application.
      </p>
      <p>
        <a href={`${props.base}/account`} id="account-link">
          Go to your account
        </a>
      </p>
      <p class="muted">
        <a href={`${props.base}/login?another=1${props.returnUrl ? `&returnUrl=${encodeURIComponent(props.returnUrl)}` : ""}`}>Sign in as someone else</a>
      </p>
    </>
  );
}

/** Recovery codes, shown once right after they were made. */
export function RecoveryCodesPage(props: { codes: string[]; continueUrl: string; heading?: string }) {
  return (
    <>
      <h1>{props.heading ?? "Your recovery codes"}</h1>
      <p>Keep these codes somewhere safe. Each one signs you in once if you lose your authenticator app. They are shown only now.</p>
      <ol id="recovery-codes">
        {props.codes.map((code) => (
          <li>
            <code data-recovery-code={code}>{code}</code>
          </li>
        ))}
      </ol>
      <p>
        <a href={props.continueUrl} id="continue">
          Continue
        </a>
      </p>
    </>
  );
}

/** What the account page's second-factor sections show. */
export interface SecondFactorSectionsProps {
  base: string;
  csrf: string;
  nonce: string;
  totp: { enabled: true; error?: string } | { enabled: false; enrolment?: TotpEnrolmentView; error?: string } | undefined;
  recoveryCodes: number;
  /** Why new recovery codes were refused (a wrong or missing current code). */
  recoveryError?: string;
  /** Undefined when passkeys are off. */
  passkeys?: PasskeyInfo[];
}

/** The account page's sections for the authenticator app, recovery codes and passkeys (contract §14). */
export function SecondFactorSections(props: SecondFactorSectionsProps) {
  const csrf = <input type="hidden" name="csrf" value={props.csrf} />;
  return (
    <>
      {props.totp ? (
        <section id="totp">
          <h2>Authenticator app</h2>
          {props.totp.enabled ? (
            <>
              <p>
                Two-step verification is <strong>on</strong>: signing in asks for a code from your app.
              </p>
              <form method="post" action={`${props.base}/account/totp/remove`} novalidate>
                {csrf}
                {props.totp.error ? (
                  <p class="error" role="alert" id="totp-error">
                    {props.totp.error}
                  </p>
                ) : null}
                <label for="current-code">To turn it off, enter a current code from your app</label>
                <input type="text" id="current-code" name="current_code" autocomplete="one-time-code" autocapitalize="none" spellcheck={false} maxlength={32} required />
                <button type="submit" name="remove-totp" value="1" class="secondary">
                  Turn off
                </button>
              </form>
            </>
          ) : props.totp.enrolment ? (
            <form method="post" action={`${props.base}/account/totp`} novalidate>
              {csrf}
              {props.totp.error ? (
                <p class="error" role="alert" id="totp-error">
                  {props.totp.error}
                </p>
              ) : null}
              <TotpEnrolmentFields enrolment={props.totp.enrolment} />
              <CodeField label="Code from the app" autofocus={false} />
              <button type="submit" name="enable-totp" value="1">
                Turn on two-step verification
              </button>
            </form>
          ) : null}
        </section>
      ) : null}
      {props.totp?.enabled ? (
        <section id="recovery">
          <h2>Recovery codes</h2>
          <p>
            <span id="recovery-count">{props.recoveryCodes}</span> unused recovery codes.
          </p>
          <form method="post" action={`${props.base}/account/recovery-codes`} novalidate>
            {csrf}
            {props.recoveryError ? (
              <p class="error" role="alert" id="recovery-error">
                {props.recoveryError}
              </p>
            ) : null}
            <label for="recovery-current-code">To make new codes (the old ones stop working), enter a current code from your app</label>
            <input type="text" id="recovery-current-code" name="current_code" autocomplete="one-time-code" autocapitalize="none" spellcheck={false} maxlength={32} required />
            <button type="submit" name="new-recovery-codes" value="1" class="secondary">
              Make new codes
            </button>
          </form>
        </section>
      ) : null}
      {props.passkeys ? (
        <section id="passkeys">
          <h2>Passkeys</h2>
          {props.passkeys.length === 0 ? <p class="muted">No passkeys yet.</p> : null}
          <ul class="scopes">
            {props.passkeys.map((p) => (
              <li data-passkey-id={p.id}>
                <strong>{p.name}</strong> <span class="muted">added {day(p.createdAt)}{p.lastUsedAt ? ` · last used ${day(p.lastUsedAt)}` : ""}</span>
                <form method="post" action={`${props.base}/account/passkeys/remove`}>
                  {csrf}
                  <input type="hidden" name="id" value={p.id} />
                  <button type="submit" name="remove-passkey" value={p.id} class="secondary">
                    Remove
                  </button>
                </form>
              </li>
            ))}
          </ul>
          <form method="post" action={`${props.base}/account/passkeys`} data-passkey="create" data-options-url={`${props.base}/account/passkeys/options`} data-finish-url={`${props.base}/account/passkeys`}>
            {csrf}
            <label for="passkey-name">Name of the new passkey</label>
            <input type="text" id="passkey-name" name="name" maxlength={100} placeholder="This device" />
            <button type="button" name="add-passkey" value="1">
              Add a passkey
            </button>
            <p class="error" role="alert" data-passkey-status hidden></p>
          </form>
          <script nonce={props.nonce} src={`${props.base}/assets/passkeys.js`} defer></script>
        </section>
      ) : null}
    </>
  );
}
