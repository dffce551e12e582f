import type { UserGrant } from "@tessera/server";

/** The applications a user has allowed, each with a revoke button (like IdentityServer's Grants page). */
export function GrantsPage(props: { base: string; grants: UserGrant[]; csrf: string }) {
  return (
    <>
      <h1>Application access</h1>
      {props.grants.length === 0 ? (
        <p class="muted" id="no-grants">
          No application has access to your account.
        </p>
      ) : (
        <ul class="scopes" id="grants">
          {props.grants.map((g) => (
            <li data-client-id={g.clientId}>
              <strong>{g.clientName}</strong>
              <br />
              <span class="muted">
                {g.scopes.join(", ")} · since {new Date(g.createdAt * 1000).toISOString().slice(0, 10)}
              </span>
              <form method="post" action={`${props.base}/grants`}>
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
      <p>
        <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
