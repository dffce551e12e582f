import type { SessionInfo, UserGrant } from "@tessera/server";
import type { Child } from "hono/jsx";

/** What the account page shows of the signed-in user's own account. */
export interface AccountPageProps {
  base: string;
  csrf: string;
  username: string;
  email?: string;
  emailVerified: boolean;
  /** False for an account of the config file: its password is changed there. */
  canChangePassword: boolean;
  /** The sid of the browser's own session (marked, and not ended from the list). */
  currentSid: string;
  /** Undefined when server-side sessions are off (the list then cannot be shown). */
  sessions?: SessionInfo[];
  grants: UserGrant[];
  /** A notice after an action ("Password changed."). */
  notice?: string;
  error?: string;
  /**
   * More sections, shown after the password section (second factors: TOTP, passkeys, recovery codes). Each
   * feature renders its own `<section>`.
   */
  sections?: Child;
  /** The page of the account's external sign-in providers, when there are providers (contract §15). */
  providersUrl?: string;
}

const day = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");

/** {issuer}/account: the user's own account: password, second factors, sessions, applications. */
export function AccountPage(props: AccountPageProps) {
  return (
    <>
      <h1>Your account</h1>
      <p class="muted" id="account-user">
        Signed in as <strong>{props.username}</strong>
        {props.email ? <> · {props.email}{props.emailVerified ? " (verified)" : " (not verified)"}</> : null}
      </p>
      {props.notice ? (
        <p role="status" id="account-notice">
          {props.notice}
        </p>
      ) : null}
      {props.error ? (
        <p class="error" role="alert" id="account-error">
          {props.error}
        </p>
      ) : null}

      <section id="password">
        <h2>Password</h2>
        {props.canChangePassword ? (
          <form method="post" action={`${props.base}/account/password`} novalidate>
            <input type="hidden" name="csrf" value={props.csrf} />
            <label for="current-password">Current password</label>
            <input type="password" id="current-password" name="current_password" autocomplete="current-password" required />
            <label for="new-password">New password</label>
            <input type="password" id="new-password" name="new_password" autocomplete="new-password" required minlength={8} />
            <button type="submit" name="change-password" value="1">
              Change password
            </button>
          </form>
        ) : (
          <p class="muted">This account is defined in the server's configuration; its password is changed there.</p>
        )}
      </section>

      {props.sections}

      {props.providersUrl ? (
        <section id="providers">
          <h2>Sign-in providers</h2>
          <p>
            <a href={props.providersUrl} id="providers-link">
              Link or unlink sign-in providers
            </a>
          </p>
        </section>
      ) : null}

      <section id="sessions">
        <h2>Where you are signed in</h2>
        {props.sessions === undefined ? (
          <p class="muted">This server does not keep a list of sessions.</p>
        ) : (
          <ul class="scopes">
            {props.sessions.map((s) => (
              <li data-session-id={s.sessionId}>
                {s.sessionId === props.currentSid ? <strong>This browser</strong> : "Another browser"}
                <br />
                <span class="muted">
                  signed in {day(s.created)} UTC{s.clientIds.length ? ` · ${s.clientIds.join(", ")}` : ""}
                </span>
                {s.sessionId === props.currentSid ? null : (
                  <form method="post" action={`${props.base}/account/sessions`}>
                    <input type="hidden" name="csrf" value={props.csrf} />
                    <input type="hidden" name="sessionId" value={s.sessionId} />
                    <button type="submit" name="end-session" value="1" class="secondary">
                      Sign out there
                    </button>
                  </form>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>

      <section id="applications">
        <h2>Applications</h2>
        {props.grants.length === 0 ? (
          <p class="muted">No application has access to your account.</p>
        ) : (
          <ul class="scopes">
            {props.grants.map((g) => (
              <li data-client-id={g.clientId}>
                <strong>{g.clientName}</strong>
                <br />
                <span class="muted">
                  {g.scopes.join(", ")} · since {day(g.createdAt).slice(0, 10)}
                </span>
                <form method="post" action={`${props.base}/account/applications`}>
                  <input type="hidden" name="csrf" value={props.csrf} />
                  <input type="hidden" name="clientId" value={g.clientId} />
                  <button type="submit" name="revoke" value="1" class="secondary">
                    Revoke access
                  </button>
                </form>
              </li>
            ))}
          </ul>
        )}
      </section>
      <p>
        <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
