/** A link of the signed-in account to an external provider. */
export interface LinkedAccount {
  providerId?: string;
  displayName: string;
  issuer: string;
  externalSubject: string;
  createdAt: number;
}

/**
 * The account's external providers (contract §15): each link with an unlink button, a link button per
 * provider not linked yet. Changes need an authentication within the last 5 minutes; `reauthenticate`
 * shows how to give one (the password, or a provider already linked).
 */
export function LinkedAccountsPage(props: { base: string; csrf: string; links: LinkedAccount[]; providers: { id: string; displayName: string }[]; message?: string; error?: string; reauthenticate?: boolean }) {
  const action = `${props.base}/account/providers`;
  const linked = new Set(props.links.map((l) => l.providerId));
  return (
    <>
      <h1>Sign-in providers</h1>
      {props.error ? (
        <p class="error" role="alert" id="providers-error">
          {props.error}
        </p>
      ) : null}
      {props.message ? <p id="providers-message">{props.message}</p> : null}
      {props.reauthenticate ? (
        <div id="reauthenticate">
          <p>To change your sign-in providers, confirm it's you first.</p>
          <p>
            <a href={`${props.base}/login?returnUrl=${encodeURIComponent(action)}`}>Sign in again with your password</a>
          </p>
          {props.links.filter((l) => l.providerId).length ? (
            <form method="post" action={action}>
              <input type="hidden" name="csrf" value={props.csrf} />
              {props.links
                .filter((l) => l.providerId)
                .map((l) => (
                  <button type="submit" name="reauth" value={l.providerId} class="secondary">
                    Confirm with {l.displayName}
                  </button>
                ))}
            </form>
          ) : null}
        </div>
      ) : null}
      {props.links.length === 0 ? (
        <p class="muted" id="no-links">
          No external provider is linked to your account.
        </p>
      ) : (
        <ul class="scopes" id="links">
          {props.links.map((l) => (
            <li data-provider={l.providerId ?? ""}>
              <strong>{l.displayName}</strong>
              <br />
              <span class="muted">since {new Date(l.createdAt * 1000).toISOString().slice(0, 10)}</span>
              <form method="post" action={action}>
                <input type="hidden" name="csrf" value={props.csrf} />
                <input type="hidden" name="issuer" value={l.issuer} />
                <input type="hidden" name="externalSubject" value={l.externalSubject} />
                <button type="submit" name="unlink" value="1" class="secondary">
                  Unlink
                </button>
              </form>
            </li>
          ))}
        </ul>
      )}
      {props.providers.some((p) => !linked.has(p.id)) ? (
        <form method="post" action={action} id="link">
          <input type="hidden" name="csrf" value={props.csrf} />
          <p class="muted">Link another provider</p>
          {props.providers
            .filter((p) => !linked.has(p.id))
            .map((p) => (
              <button type="submit" name="link" value={p.id}>
                {p.displayName}
              </button>
            ))}
        </form>
      ) : null}
      <p>
        <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
