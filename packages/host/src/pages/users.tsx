import type { AccountView, SessionInfo } from "@tessera/server";

import { isoTime as iso, PostButton } from "./admin-parts.tsx";

const displayName = (user: AccountView) => (typeof user.claims.name === "string" ? user.claims.name : "");

/** Administrators' list of accounts (issue 20): search, page, link to each account. */
export function UsersPage(props: { base: string; users: AccountView[]; query: string; next: string | null; stored: boolean }) {
  const nextLink = () => {
    const params = new URLSearchParams();
    if (props.query) params.set("query", props.query);
    params.set("cursor", props.next!);
    return `${props.base}/admin/users?${params}`;
  };
  return (
    <>
      <h1>Users</h1>
      {props.stored ? null : <p class="muted">Accounts are not stored on this server (config <code>accounts.store</code>): only the config's users exist.</p>}
      <form method="get" action={`${props.base}/admin/users`} id="search">
        <label for="q">Search by username, email, name or subject</label>
        <input type="text" id="q" name="query" value={props.query} />
        <button type="submit" class="secondary">
          Search
        </button>
      </form>
      {props.users.length === 0 ? (
        <p class="muted" id="no-users">
          No users.
        </p>
      ) : (
        <table id="users">
          <thead>
            <tr>
              <th scope="col">Username</th>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Status</th>
              <th scope="col">Source</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {props.users.map((u) => (
              <tr data-sub={u.sub}>
                <td class="username">
                  <a href={`${props.base}/admin/users/${encodeURIComponent(u.sub)}`}>{u.username}</a>
                </td>
                <td class="name">{displayName(u)}</td>
                <td class="email">{u.email ?? ""}</td>
                <td class="status">{u.disabled ? "disabled" : "active"}</td>
                <td class="source">{u.fixed ? "config" : "store"}</td>
                <td class="created">{iso(u.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.next ? (
        <p>
          <a id="next" href={nextLink()}>
            Next page
          </a>
        </p>
      ) : null}
      <p>
        <a href={`${props.base}/serversidesessions`}>Server-side sessions</a> · <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}

/** One account for administrators: claims, disable/enable, reset second factors, sessions with revoke. */
export function UserPage(props: {
  base: string;
  csrf: string;
  user: AccountView;
  secondFactors: number;
  sessions: SessionInfo[];
  serverSideSessions: boolean;
  notice?: string | undefined;
}) {
  const { user } = props;
  const action = `${props.base}/admin/users/${encodeURIComponent(user.sub)}`;
  return (
    <>
      <h1>{user.username}</h1>
      <p class="muted">
        sub <code id="user-sub">{user.sub}</code> · {user.fixed ? "from the config file (read-only)" : "stored account"}
      </p>
      {props.notice ? (
        <p role="status" id="notice">
          {props.notice}
        </p>
      ) : null}
      <table id="account">
        <tbody>
          <tr>
            <th scope="row">Status</th>
            <td id="status">{user.disabled ? "disabled" : "active"}</td>
          </tr>
          <tr>
            <th scope="row">Email</th>
            <td id="email">
              {user.email ?? ""} {user.email ? <span class="muted">{user.emailVerified ? "(verified)" : "(not verified)"}</span> : null}
            </td>
          </tr>
          <tr>
            <th scope="row">Password</th>
            <td>{user.hasPassword ? "set" : "none"}</td>
          </tr>
          <tr>
            <th scope="row">Second factors</th>
            <td id="second-factors">{props.secondFactors}</td>
          </tr>
          <tr>
            <th scope="row">Created</th>
            <td>{iso(user.createdAt)}</td>
          </tr>
          <tr>
            <th scope="row">Updated</th>
            <td>{iso(user.updatedAt)}</td>
          </tr>
          <tr>
            <th scope="row">Claims</th>
            <td>
              <pre id="claims">{JSON.stringify(user.claims, null, 2)}</pre>
            </td>
          </tr>
        </tbody>
      </table>
      {user.fixed ? null : (
        <div class="row">
          <form method="post" action={action}>
            <input type="hidden" name="csrf" value={props.csrf} />
            {user.disabled ? (
              <button type="submit" name="action" value="enable" class="secondary">
                Enable
              </button>
            ) : (
              <button type="submit" name="action" value="disable" class="secondary">
                Disable
              </button>
            )}
          </form>
          <PostButton action={action} csrf={props.csrf} name="action" value="reset-second-factors" label="Reset second factors" disabled={props.secondFactors === 0} />
        </div>
      )}
      <h2>Sessions</h2>
      {props.serverSideSessions ? null : <p class="muted">Server-side sessions are not enabled: only sessions kept in the store are listed.</p>}
      {props.sessions.length === 0 ? (
        <p class="muted" id="no-sessions">
          No sessions.
        </p>
      ) : (
        <table id="sessions">
          <thead>
            <tr>
              <th scope="col">Session id</th>
              <th scope="col">Clients</th>
              <th scope="col">Created</th>
              <th scope="col">Renewed</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span class="muted">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {props.sessions.map((s) => (
              <tr data-session-id={s.sessionId}>
                <td class="session-id">
                  <code>{s.sessionId}</code>
                </td>
                <td class="clients">{s.clientIds.join(", ")}</td>
                <td class="created">{iso(s.created)}</td>
                <td class="renewed">{iso(s.renewed)}</td>
                <td class="expires">{iso(s.expires)}</td>
                <td>
                  <PostButton action={action} csrf={props.csrf} name="revoke" value="1" label="Revoke" hidden={{ sessionId: s.sessionId }} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        <a href={`${props.base}/admin/users`}>All users</a> · <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
