import type { Child } from "hono/jsx";

/**
 * {issuer}/account: the signed-in user's own account. A minimal frame for the second-factor sections; the
 * self-service feature owns the full page (password, sessions, applications) and includes `sections`.
 */
export function AccountPage(props: { base: string; name: string; sections?: Child }) {
  return (
    <>
      <h1>Your account</h1>
      <p class="muted" id="account-user">
        Signed in as <strong>{props.name}</strong>
      </p>
      {props.sections}
      <p>
        <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
