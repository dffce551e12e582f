/** Audit events: what happened, to whom and through which client; never a secret, password or token. */
export type TesseraEvent =
  | { type: "sign_in.failed"; reason: "credentials" | "throttled" }
  | { type: "client.authentication_failed"; clientId: string; reason: "credentials" | "throttled" }
  | { type: "session.started"; sub: string; sid: string; idp: string; amr: string[] }
  | { type: "session.ended"; sub: string; sid: string; clients: string[] }
  | { type: "session.revoked"; sub: string; sid: string; reason: "admin" | "expired" }
  | { type: "token.issued"; grantType: string; clientId: string; sub?: string; scope: string; tokenType: "Bearer" | "DPoP"; refreshToken: boolean }
  | { type: "token.revoked"; clientId: string; kind: "access_token" | "refresh_token" }
  | { type: "token.replay_detected"; clientId: string; kind: "authorization_code" | "refresh_token" }
  | { type: "logout.backchannel.sent"; clientId: string; sid: string }
  | { type: "logout.backchannel.failed"; clientId: string; sid: string; error: string }
  | { type: "key.created"; kid: string; alg: string; activatesAt: number }
  | { type: "key.removed"; kid: string }
  | { type: "device.approved" | "device.denied"; clientId: string; sub: string }
  | { type: "account.created" | "account.updated" | "account.disabled" | "account.enabled" | "account.deleted" | "account.password_changed"; sub: string; by: AccountActor; fields?: string[] };

/** Who changed an account: an administrator (API or pages), the CLI, the user themself, or the server (a rehash). */
export type AccountActor = "admin" | "cli" | "self" | "system";

/** Where events go: a function called for each (synchronously; keep it fast, queue if needed). */
export type EventSink = (event: TesseraEvent & { at: string }) => void;
