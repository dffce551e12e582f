/** OAuth 2.0 / OIDC error codes this project emits (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6; RFC 6750 §3.1). */
export type ProtocolErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "server_error"
  | "temporarily_unavailable"
  | "login_required"
  | "consent_required"
  | "interaction_required"
  | "account_selection_required"
  | "request_not_supported"
  | "request_uri_not_supported"
  | "invalid_request_uri"
  | "invalid_request_object"
  | "registration_not_supported"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_dpop_proof"
  | "use_dpop_nonce"
  | "invalid_target"
  | "unsupported_token_type"
  | "invalid_redirect_uri"
  | "invalid_client_metadata"
  | "invalid_software_statement"
  | "unapproved_software_statement"
  // RFC 8628 §3.5 (device authorization grant polling).
  | "authorization_pending"
  | "slow_down"
  | "expired_token";

const defaultStatus: Partial<Record<ProtocolErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  server_error: 500,
  temporarily_unavailable: 503,
};

/** Options for a {@link ProtocolError}. */
export interface ProtocolErrorOptions {
  /** HTTP status; defaults from the code (400 for most). */
  status?: number;
  /**
   * Whether the error may be sent back to the client's redirect_uri. False for errors about the client or
   * the redirect_uri itself, which must be shown on an error page (RFC 6749 §4.1.2.1).
   */
  redirectable?: boolean;
  /** Extra response headers, e.g. `WWW-Authenticate`. */
  headers?: Record<string, string>;
  cause?: unknown;
}

/**
 * An error description in RFC 6749 §5.2's characters (%x20-21 / %x23-5B / %x5D-7E): `"` becomes `'`,
 * anything else outside them (non-ASCII, controls, `\`) is dropped, so echoed request input stays inert
 * in JSON, redirects and headers alike.
 */
export function errorDescriptionText(description: string): string {
  return description.replace(/"/g, "'").replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, "");
}

/** The one error type of the protocol layer: an RFC error code, a description, a status and a redirect flag. */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  readonly description: string | undefined;
  readonly status: number;
  readonly redirectable: boolean;
  readonly headers: Record<string, string>;

  constructor(code: ProtocolErrorCode, description?: string, options: ProtocolErrorOptions = {}) {
    const text = description === undefined ? undefined : errorDescriptionText(description);
    super(text ? `${code}: ${text}` : code, { cause: options.cause });
    this.name = "ProtocolError";
    this.code = code;
    this.description = text;
    this.status = options.status ?? defaultStatus[code] ?? 400;
    this.redirectable = options.redirectable ?? true;
    this.headers = options.headers ?? {};
  }

  /** The RFC 6749 §5.2 JSON body. */
  toJSON(): { error: ProtocolErrorCode; error_description?: string } {
    return this.description ? { error: this.code, error_description: this.description } : { error: this.code };
  }
}

/** True when `value` is a {@link ProtocolError}. */
export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
