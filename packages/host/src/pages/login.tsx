import { PasskeySignIn } from "./second-factors.tsx";

/**
 * The login form (contract §4): username, password, one submit button; `passkeyNonce` adds passkey sign-in
 * (§14), `providers` a form with one `button[name=provider]` per external provider (§15).
 */
export function LoginPage(props: { base: string; returnUrl?: string; username?: string; error?: string; csrf: string; clientName?: string; clientHost?: string; unverified?: boolean; registerUrl?: string; forgotUrl?: string; passkeyNonce?: string; providers?: { id: string; displayName: string }[] | undefined }) {
  return (
    <>
      <h1>Sign in</h1>
      <p class="muted">{props.clientName ? <>to continue to <strong><bdi>{props.clientName}</bdi></strong>{props.clientHost ? <> (<bdi>{props.clientHost}</bdi>)</> : ""}</> : "to your account"}</p>
      {props.unverified ? <p class="muted unverified">Unverified application: it registered itself, and this server has not checked who runs it.</p> : null}
      {props.error ? (
        <p class="error" role="alert" id="login-error">
          {props.error}
        </p>
      ) : null}
      <form method="post" action={`${props.base}/login`} novalidate>
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.returnUrl ? <input type="hidden" name="returnUrl" value={props.returnUrl} /> : null}
        <label for="username">Username</label>
        <input type="text" id="username" name="username" value={props.username ?? ""} autocomplete="username" autocapitalize="none" spellcheck={false} required autofocus={!props.username} />
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required autofocus={!!props.username} />
        <label class="check">
          <input type="checkbox" name="remember" value="1" /> Keep me signed in
        </label>
        <button type="submit">Sign in</button>
      </form>
      {props.passkeyNonce ? <PasskeySignIn base={props.base} csrf={props.csrf} returnUrl={props.returnUrl} nonce={props.passkeyNonce} /> : null}
      {props.providers?.length && props.returnUrl ? (
        <form method="post" action={`${props.base}/login/external`} class="external-providers">
          <input type="hidden" name="csrf" value={props.csrf} />
          <input type="hidden" name="returnUrl" value={props.returnUrl} />
          <p class="muted">or sign in with</p>
          {props.providers.map((p) => (
            <button type="submit" name="provider" value={p.id}>
              {p.displayName}
            </button>
          ))}
        </form>
      ) : null}
      {props.forgotUrl || props.registerUrl ? (
        <p class="muted" id="account-links">
          {props.forgotUrl ? <a href={props.forgotUrl}>Forgot your password?</a> : null}
          {props.forgotUrl && props.registerUrl ? " · " : null}
          {props.registerUrl ? <a href={props.registerUrl} id="register-link">Create an account</a> : null}
        </p>
      ) : null}
    </>
  );
}
