import { CLIENT_METADATA_FIELDS, type ClientInfo } from "@tessera/server";
import { PostButton } from "./admin-parts.tsx";

/** Choices of the select and checkbox fields; client_secret_jwt is for configured clients only. */
const CHOICES: Record<string, readonly string[]> = {
  grant_types: ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
  response_types: ["code"],
  auth_method: ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth", "none"],
  auth_alg: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"],
  id_token_alg: ["RS256", "PS256", "ES256", "EdDSA"],
  token_format: ["jwt", "reference"],
  request_object_alg: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"],
  security_profile: ["fapi2"],
};
const MULTI = new Set(["grant_types", "response_types"]);
const NUMBERS = new Set(["seconds", "positive", "grace"]);
/** Booleans whose default is true, so a new client's form starts with them ticked. */
const TRUE_BY_DEFAULT = new Set(["require_pkce"]);

/** The fields the form edits: every registration field, except the secret (generated, shown once). */
const FORM_FIELDS = Object.entries(CLIENT_METADATA_FIELDS).filter(([name, kind]) => name !== "client_secret" && kind !== "secret");

/** A submitted form as values by name (checkbox groups give several). */
export type FormValues = Record<string, string | string[]>;

const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value[value.length - 1] : value) ?? "";
const many = (value: string | string[] | undefined) => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/**
 * Turns the form into RFC 7591 metadata: blank fields are left out (their defaults apply), lists are
 * one entry a line, booleans are the checkboxes, `jwks` is JSON. The registry validates the result.
 */
export function metadataFromForm(form: FormValues, clientId?: string): { metadata: Record<string, unknown>; error?: string } {
  const metadata: Record<string, unknown> = {};
  for (const [name, kind] of FORM_FIELDS) {
    if (name === "client_id") continue;
    const value = form[name];
    if (kind === "boolean") metadata[name] = one(value) === "true";
    else if (MULTI.has(kind)) {
      const chosen = many(value).filter(Boolean);
      if (chosen.length) metadata[name] = chosen;
    } else if (kind === "urls") {
      const lines = one(value).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
      if (lines.length) metadata[name] = lines;
    } else if (kind === "jwks") {
      const text = one(value).trim();
      if (!text) continue;
      try {
        metadata[name] = JSON.parse(text) as unknown;
      } catch {
        return { metadata, error: "jwks is not valid JSON" };
      }
    } else if (NUMBERS.has(kind)) {
      const text = one(value).trim();
      if (text) metadata[name] = /^\d+$/.test(text) ? Number(text) : text;
    } else {
      const text = one(value).trim();
      if (text) metadata[name] = text;
    }
  }
  const id = clientId ?? one(form.client_id).trim();
  if (id) metadata.client_id = id;
  return { metadata };
}

function Field(props: { name: string; kind: string; client?: Record<string, unknown>; readOnly: boolean }) {
  const { name, kind, client, readOnly } = props;
  const value = client?.[name];
  const id = `f-${name}`;
  const choices = CHOICES[kind];
  if (kind === "boolean") {
    const checked = value === undefined ? !client && TRUE_BY_DEFAULT.has(name) : value === true;
    return (
      <p class="check">
        <input type="checkbox" id={id} name={name} value="true" checked={checked} disabled={readOnly} /> <label for={id}>{name}</label>
      </p>
    );
  }
  if (choices && MULTI.has(kind)) {
    const chosen = Array.isArray(value) ? value : client ? [] : kind === "response_types" ? ["code"] : ["authorization_code"];
    return (
      <fieldset>
        <legend>{name}</legend>
        {choices.map((choice) => (
          <label class="check">
            <input type="checkbox" name={name} value={choice} checked={chosen.includes(choice)} disabled={readOnly} /> {choice}
          </label>
        ))}
      </fieldset>
    );
  }
  if (choices) {
    return (
      <>
        <label for={id}>{name}</label>
        <select id={id} name={name} disabled={readOnly}>
          <option value="">(default)</option>
          {choices.map((choice) => (
            <option value={choice} selected={value === choice}>
              {choice}
            </option>
          ))}
        </select>
      </>
    );
  }
  if (kind === "urls" || kind === "jwks") {
    const text = kind === "urls" ? (Array.isArray(value) ? value.join("\n") : "") : value === undefined ? "" : JSON.stringify(value, null, 2);
    return (
      <>
        <label for={id}>
          {name} {kind === "urls" ? <span class="muted">(one a line)</span> : <span class="muted">(JSON)</span>}
        </label>
        <textarea id={id} name={name} rows={kind === "jwks" ? 6 : 3} readonly={readOnly}>
          {text}
        </textarea>
      </>
    );
  }
  return (
    <>
      <label for={id}>{name}</label>
      <input type={NUMBERS.has(kind) ? "number" : "text"} id={id} name={name} value={value === undefined ? "" : String(value)} readonly={readOnly} />
    </>
  );
}

/** The clients list (admin pages): configured and stored clients, a page at a time. */
export function ClientsPage(props: { base: string; clients: ClientInfo[]; next: string | null }) {
  return (
    <>
      <h1>Clients</h1>
      <p>
        <a id="new-client" href={`${props.base}/admin/clients/new`}>
          New client
        </a>
      </p>
      <table id="clients">
        <thead>
          <tr>
            <th scope="col">Client id</th>
            <th scope="col">Name</th>
            <th scope="col">Authentication</th>
            <th scope="col">Source</th>
          </tr>
        </thead>
        <tbody>
          {props.clients.map((c) => (
            <tr data-client-id={c.client_id}>
              <td>
                <a href={`${props.base}/admin/clients/${encodeURIComponent(c.client_id)}`}>
                  <code>{c.client_id}</code>
                </a>
              </td>
              <td class="client-name">{c.client_name ?? ""}</td>
              <td>{c.token_endpoint_auth_method ?? (c.source === "config" ? "" : "client_secret_basic")}</td>
              <td class="source">{c.source}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.next ? (
        <p>
          <a id="next" href={`${props.base}/admin/clients?cursor=${encodeURIComponent(props.next)}`}>
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

/** Create or edit form; configured clients are shown read-only. */
export function ClientFormPage(props: { base: string; csrf: string; client?: ClientInfo; values?: Record<string, unknown>; error?: string; saved?: boolean }) {
  const client = props.client;
  const readOnly = client?.source === "config";
  const shown = props.values ?? (client as Record<string, unknown> | undefined);
  const action = client ? `${props.base}/admin/clients/${encodeURIComponent(client.client_id)}` : `${props.base}/admin/clients`;
  return (
    <>
      <h1>{client ? `Client ${client.client_name ?? client.client_id}` : "New client"}</h1>
      {props.error ? (
        <p class="error" id="error" role="alert">
          {props.error}
        </p>
      ) : null}
      {props.saved ? <p id="saved">Saved.</p> : null}
      {readOnly ? <p class="muted">This client comes from the configuration file and is read-only here.</p> : null}
      <form method="post" action={action} id="client-form">
        <input type="hidden" name="csrf" value={props.csrf} />
        {client ? (
          <p>
            client_id: <code id="client-id">{client.client_id}</code>
          </p>
        ) : (
          <>
            <label for="f-client_id">
              client_id <span class="muted">(blank: generated)</span>
            </label>
            <input type="text" id="f-client_id" name="client_id" value={typeof shown?.client_id === "string" ? shown.client_id : ""} />
          </>
        )}
        {FORM_FIELDS.filter(([name]) => name !== "client_id").map(([name, kind]) => (
          <Field name={name} kind={kind} client={shown} readOnly={readOnly} />
        ))}
        {readOnly ? null : (
          <button type="submit" name="save" value="1">
            {client ? "Save" : "Create"}
          </button>
        )}
      </form>
      {client && !readOnly ? (
        <>
          <h2>Secrets</h2>
          {client.secrets?.length ? (
            <table id="secrets">
              <tbody>
                {client.secrets.map((s) => (
                  <tr data-secret-id={s.id}>
                    <td>
                      <code>{s.id}</code>
                    </td>
                    <td>created {new Date(s.created_at * 1000).toISOString()}</td>
                    <td>{s.expires_at ? `expires ${new Date(s.expires_at * 1000).toISOString()}` : "no expiry"}</td>
                    <td>
                      <PostButton action={`${action}/secrets/${encodeURIComponent(s.id)}/remove`} csrf={props.csrf} name="remove-secret" value="1" label="Remove" />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p class="muted">No secrets (not a client_secret_basic / client_secret_post client).</p>
          )}
          {client.secrets?.length ? (
            <PostButton action={`${action}/secret`} csrf={props.csrf} name="rotate" value="1" label="Add a new secret" />
          ) : null}
          <p>
            <a id="delete" href={`${action}/delete`}>
              Delete this client
            </a>
          </p>
        </>
      ) : null}
      <p>
        <a href={`${props.base}/admin/clients`}>All clients</a>
      </p>
    </>
  );
}

/** Shown once after creation or rotation: the new secret, never shown again. */
export function ClientSecretPage(props: { base: string; clientId: string; secret?: string; heading: string }) {
  return (
    <>
      <h1>{props.heading}</h1>
      <p>
        client_id: <code id="client-id" data-client-id={props.clientId}>{props.clientId}</code>
      </p>
      {props.secret ? (
        <>
          <p>
            client_secret: <code id="client-secret" data-client-secret={props.secret}>{props.secret}</code>
          </p>
          <p class="muted">Copy the secret now: it is stored hashed and cannot be shown again.</p>
        </>
      ) : null}
      <p>
        <a href={`${props.base}/admin/clients/${encodeURIComponent(props.clientId)}`}>Back to the client</a>
      </p>
    </>
  );
}

/** Asks before deleting (the deletion revokes the client's tokens and grants). */
export function DeleteClientPage(props: { base: string; csrf: string; client: ClientInfo }) {
  const action = `${props.base}/admin/clients/${encodeURIComponent(props.client.client_id)}/delete`;
  return (
    <>
      <h1>Delete client {props.client.client_name ?? props.client.client_id}?</h1>
      <p>Its tokens, codes and consents are revoked, and it can no longer sign anyone in.</p>
      <PostButton action={action} csrf={props.csrf} name="confirm" value="delete" label="Delete" secondary={false} />
      <p>
        <a href={`${props.base}/admin/clients/${encodeURIComponent(props.client.client_id)}`}>Cancel</a>
      </p>
    </>
  );
}
