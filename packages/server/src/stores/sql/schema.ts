import type { StoredClientSecret } from "../interfaces.ts";
/** Kysely table types; one schema for SQLite and PostgreSQL. Times are Unix seconds. */
export interface GrantsTable {
  key: string;
  kind: string;
  client_id: string;
  subject: string | null;
  session_id: string | null;
  grant_id: string | null;
  data: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

export interface KeysTable {
  kid: string;
  alg: string;
  protected_jwk: string;
  created_at: number;
  activates_at: number;
  retires_at: number | null;
}

export interface SessionsTable {
  key: string;
  session_id: string;
  subject: string;
  display_name: string | null;
  created: number;
  renewed: number;
  expires: number;
  client_ids: string;
  ticket: string;
}

export interface ClientsTable {
  client_id: string;
  metadata: string;
  /** JSON array of {@link StoredClientSecret}. */
  secrets: string;
  registration_token_hash: string | null;
  created_at: number;
  updated_at: number;
}

/** Stored accounts (issue 20): `*_key` columns hold the normalized values lookups and uniqueness use. */
export interface AccountsTable {
  sub: string;
  username: string;
  username_key: string;
  email: string | null;
  email_key: string | null;
  email_verified: number;
  password_hash: string | null;
  claims: string;
  name_key: string | null;
  disabled: number;
  sessions_valid_after: number | null;
  created_at: number;
  updated_at: number;
}

export interface DeviceCodesTable {
  key: string;
  user_code_key: string;
  client_id: string;
  scope: string;
  status: string;
  subject: string | null;
  session_id: string | null;
  data: string;
  created_at: number;
  expires_at: number;
  poll_interval: number;
  last_polled_at: number | null;
  consumed_at: number | null;
}

export interface AccountCredentialsTable {
  id: string;
  subject: string;
  type: string;
  name: string | null;
  secret: string;
  counter: number;
  transports: string | null;
  data: string | null;
  created_at: number;
  last_used_at: number | null;
}

export interface AccountTokensTable {
  key: string;
  subject: string;
  purpose: string;
  data: string | null;
  created_at: number;
  expires_at: number;
}

export interface AccountLinksTable {
  /** Hash of (issuer, external subject): any issuer length fits the primary key. */
  key: string;
  issuer: string;
  external_subject: string;
  subject: string;
  created_at: number;
}

export interface Database {
  tessera_device_codes: DeviceCodesTable;
  tessera_grants: GrantsTable;
  tessera_keys: KeysTable;
  tessera_sessions: SessionsTable;
  tessera_clients: ClientsTable;
  tessera_accounts: AccountsTable;
  tessera_account_credentials: AccountCredentialsTable;
  tessera_account_tokens: AccountTokensTable;
  tessera_account_links: AccountLinksTable;
}
