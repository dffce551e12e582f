/** The landing page: who is signed in, and where the protocol endpoints are. */
export function HomePage(props: { base: string; name?: string; sub?: string; csrf: string; discoveryUrl: string; admin?: boolean; account?: boolean }) {
  return (
    <>
      <h1>Tessera identity server</h1>
      {props.sub ? (
        <>
          <p id="signed-in">
            Signed in as <strong>{props.name ?? props.sub}</strong> <span class="muted">(sub {props.sub})</span>
          </p>
          <p>
            {props.account ? <><a href={`${props.base}/account`}>Your account</a> · </> : null}<a href={`${props.base}/grants`}>Applications with access to your account</a>
          </p>
          {props.admin ? (
            <p id="admin-links">
              Administration: <a href={`${props.base}/admin/clients`}>Clients</a> · <a href={`${props.base}/admin/users`}>Users</a> · <a href={`${props.base}/serversidesessions`}>Server-side sessions</a>
            </p>
          ) : null}
          <form method="post" action={`${props.base}/logout`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            <button type="submit" name="decision" value="logout" class="secondary">
              Sign out
            </button>
          </form>
        </>
      ) : (
        <p class="muted">
          Not signed in. <a href={`${props.base}/login`}>Sign in</a>
        </p>
      )}
      <p class="muted">
        Discovery: <a href={props.discoveryUrl}>{props.discoveryUrl}</a>
      </p>
    </>
  );
}
