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

export interface Database {
  tessera_device_codes: DeviceCodesTable;
  tessera_grants: GrantsTable;
  tessera_keys: KeysTable;
  tessera_sessions: SessionsTable;
  tessera_clients: ClientsTable;
}
