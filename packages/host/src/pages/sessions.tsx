import type { SessionInfo } from "@tessera/server";

import { isoTime as iso, PostButton } from "./admin-parts.tsx";

/** The server-side sessions page (contract §4): list, filter, page, revoke. */
export function SessionsPage(props: {
  base: string;
  csrf: string;
  enabled: boolean;
  sessions: SessionInfo[];
  filters: { subject?: string; displayName?: string; sessionId?: string };
  next: string | null;
}) {
  const nextLink = () => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(props.filters)) if (value) params.set(name, value);
    params.set("cursor", props.next!);
    return `${props.base}/serversidesessions?${params}`;
  };
  return (
    <>
      <h1>Server-side sessions</h1>
      {props.enabled ? null : <p class="muted">Server-side sessions are not enabled (config <code>serverSideSessions.enabled</code>).</p>}
      <form method="get" action={`${props.base}/serversidesessions`} id="filter">
        <label for="f-subject">Subject</label>
        <input type="text" id="f-subject" name="subject" value={props.filters.subject ?? ""} />
        <label for="f-display">Display name</label>
        <input type="text" id="f-display" name="displayName" value={props.filters.displayName ?? ""} />
        <label for="f-sid">Session id</label>
        <input type="text" id="f-sid" name="sessionId" value={props.filters.sessionId ?? ""} />
        <button type="submit" class="secondary">
          Filter
        </button>
      </form>
      {props.sessions.length === 0 ? (
        <p class="muted" id="no-sessions">
          No sessions.
        </p>
      ) : (
        <table id="sessions">
          <thead>
            <tr>
              <th scope="col">Subject</th>
              <th scope="col">Display name</th>
              <th scope="col">Session id</th>
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
                <td class="subject">{s.subject}</td>
                <td class="display-name">{s.displayName ?? ""}</td>
                <td class="session-id">
                  <code>{s.sessionId}</code>
                </td>
                <td class="created">{iso(s.created)}</td>
                <td class="renewed">{iso(s.renewed)}</td>
                <td class="expires">{iso(s.expires)}</td>
                <td>
                  <PostButton action={`${props.base}/serversidesessions`} csrf={props.csrf} name="revoke" value="1" label="Revoke" hidden={{ sessionId: s.sessionId }} />
                </td>
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
        <a href={`${props.base}/`}>Home</a>
      </p>
    </>
  );
}
