/** Registration (contract §14): username, email, password and one submit button. */
export function RegisterPage(props: { base: string; csrf: string; returnUrl?: string; username?: string; email?: string; error?: string; clientName?: string }) {
  const login = `${props.base}/login${props.returnUrl ? `?returnUrl=${encodeURIComponent(props.returnUrl)}` : ""}`;
  return (
    <>
      <h1>Create an account</h1>
      <p class="muted">{props.clientName ? <>to continue to <strong>{props.clientName}</strong></> : "to sign in to applications that use this server"}</p>
      {props.error ? (
        <p class="error" role="alert" id="register-error">
          {props.error}
        </p>
      ) : null}
      <form method="post" action={`${props.base}/account/register`} novalidate>
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.returnUrl ? <input type="hidden" name="returnUrl" value={props.returnUrl} /> : null}
        <label for="username">Username</label>
        <input type="text" id="username" name="username" value={props.username ?? ""} autocomplete="username" autocapitalize="none" spellcheck={false} required maxlength={100} autofocus />
        <label for="email">Email</label>
        <input type="email" id="email" name="email" value={props.email ?? ""} autocomplete="email" required maxlength={254} />
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="new-password" required minlength={8} aria-describedby="password-hint" />
        <p class="muted" id="password-hint">
          At least 8 characters. A long passphrase is best.
        </p>
        <button type="submit">Create account</button>
      </form>
      <p class="muted">
        Already have an account? <a href={login}>Sign in</a>
      </p>
    </>
  );
}

/** The page after registration or a reset request: the same whether or not an account exists. */
export function CheckMailPage(props: { base: string; heading: string; text: string }) {
  return (
    <>
      <h1>{props.heading}</h1>
      <p role="status" id="check-mail">
        {props.text}
      </p>
      <p class="muted">The link expires; if nothing arrives, check your spam folder or try again later.</p>
      <p>
        <a href={`${props.base}/login`}>Sign in</a>
      </p>
    </>
  );
}

/** Sign-in refused until the address is verified (like Keycloak's "Verify email" required action), with a resend button. */
export function VerifyRequiredPage(props: { base: string; csrf: string; resend: string; sent?: boolean; login: string }) {
  return (
    <>
      <h1>Verify your email</h1>
      <p role="alert" id="verify-required">
        {props.sent ? "We sent a new link. Open it to verify your address, then sign in." : "Open the link we mailed you to verify your address before you sign in."}
      </p>
      <form method="post" action={`${props.base}/account/verify/resend`}>
        <input type="hidden" name="csrf" value={props.csrf} />
        <input type="hidden" name="resend" value={props.resend} />
        <button type="submit" name="send" value="1" class="secondary">
          Send the link again
        </button>
      </form>
      <p class="muted">
        Verified on another device? <a href={props.login}>Sign in</a>
      </p>
    </>
  );
}

/** Forgot password: one field, email. */
export function ForgotPage(props: { base: string; csrf: string; error?: string }) {
  return (
    <>
      <h1>Reset your password</h1>
      <p class="muted">Enter the email address of your account and we will send you a link.</p>
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
      <form method="post" action={`${props.base}/account/forgot`} novalidate>
        <input type="hidden" name="csrf" value={props.csrf} />
        <label for="email">Email</label>
        <input type="email" id="email" name="email" autocomplete="email" required maxlength={254} autofocus />
        <button type="submit">Send link</button>
      </form>
      <p class="muted">
        <a href={`${props.base}/login`}>Back to sign in</a>
      </p>
    </>
  );
}

/** Choose a new password (reached from a reset link). */
export function ResetPage(props: { base: string; csrf: string; token: string; error?: string }) {
  return (
    <>
      <h1>Choose a new password</h1>
      {props.error ? (
        <p class="error" role="alert" id="reset-error">
          {props.error}
        </p>
      ) : null}
      <form method="post" action={`${props.base}/account/reset`} novalidate>
        <input type="hidden" name="csrf" value={props.csrf} />
        <input type="hidden" name="token" value={props.token} />
        <label for="password">New password</label>
        <input type="password" id="password" name="password" autocomplete="new-password" required minlength={8} autofocus />
        <button type="submit">Set password</button>
      </form>
    </>
  );
}
