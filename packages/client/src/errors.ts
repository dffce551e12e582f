/** Stable codes of {@link TokenManagementError}. */
export type TokenManagementErrorCode = "discovery_failed" | "token_request_failed" | "refresh_failed" | "no_refresh_token" | "not_signed_in";

/** An error of token management; messages and causes never contain tokens. */
export class TokenManagementError extends Error {
  constructor(
    readonly code: TokenManagementErrorCode,
    message: string,
    /** The OAuth error code from the server, when there was one. */
    readonly oauthError?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "TokenManagementError";
  }
}

/** The OAuth `error` of an oauth4webapi failure, if any (from the error, or the body of a 401 challenge). */
export async function oauthErrorOf(error: unknown): Promise<string | undefined> {
  const e = error as { error?: unknown; cause?: { error?: unknown }; response?: Response };
  if (typeof e?.error === "string") return e.error;
  if (typeof e?.cause?.error === "string") return e.cause.error;
  if (e?.response instanceof Response) {
    const body = (await e.response.clone().json().catch(() => undefined)) as { error?: unknown } | undefined;
    if (typeof body?.error === "string") return body.error;
  }
  return undefined;
}
