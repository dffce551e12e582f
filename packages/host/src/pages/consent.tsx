export const SCOPE_TEXT: Record<string, string> = {
  openid: "Your user identifier",
  profile: "Your profile: name and other details",
  email: "Your email address",
  address: "Your postal address",
  phone: "Your phone number",
  offline_access: "Access while you are away (offline access)",
};

/**
 * The consent page (contract §4): allow and deny buttons named `decision`. A client known only by its
 * metadata document shows its host beside its name, since the name is whatever the document says; a
 * self-registered (`unverified`) one shows its redirect host and an unverified-application note.
 */
export function ConsentPage(props: { clientName: string; clientHost?: string; unverified?: boolean; rememberable?: boolean; scopes: { name: string; description?: string }[]; returnUrl: string; csrf: string; base: string }) {
  return (
    <>
      <h1>Allow access?</h1>
      <p>
        <strong>
          <bdi>{props.clientName}</bdi>
        </strong>
        {props.clientHost ? (
          <>
            {" ("}
            <bdi class="client-host">{props.clientHost}</bdi>
            {")"}
          </>
        ) : null}{" "}
        is asking for:
      </p>
      {props.unverified ? (
        <p class="muted unverified">Unverified application: it registered itself, and this server has not checked who runs it. It will send you back to <bdi>{props.clientHost}</bdi>.</p>
      ) : props.clientHost ? (
        <p class="muted">This application is not registered here: it is known only by its address at <bdi>{props.clientHost}</bdi>.</p>
      ) : null}
      <ul class="scopes">
        {props.scopes.map((s) => (
          <li>
            {SCOPE_TEXT[s.name] ?? s.description ?? s.name} <code class="muted">{s.name}</code>
          </li>
        ))}
      </ul>
      <form method="post" action={`${props.base}/consent`}>
        <input type="hidden" name="csrf" value={props.csrf} />
        <input type="hidden" name="returnUrl" value={props.returnUrl} />
        {/* Consent is never remembered for a metadata-document client: it is asked every time. */}
        {props.rememberable === false ? null : (
          <label class="check">
            <input type="checkbox" name="remember" value="1" checked /> Remember my decision
          </label>
        )}
        <div class="row">
          <button type="submit" name="decision" value="deny" class="secondary">
            Deny
          </button>
          <button type="submit" name="decision" value="allow">
            Allow
          </button>
        </div>
      </form>
    </>
  );
}
