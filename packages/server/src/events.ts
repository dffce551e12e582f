/** Audit events: what happened, to whom and through which client; never a secret, password or token. */
export type TesseraEvent =
  | { type: "sign_in.failed"; reason: "credentials" | "throttled" }
  | { type: "client.authentication_failed"; clientId: string; reason: "credentials" | "throttled" }
  | { type: "session.started"; sub: string; sid: string; idp: string; amr: string[] }
  | { type: "session.ended"; sub: string; sid: string; clients: string[] }
  | { type: "session.revoked"; sub: string; sid: string; reason: "admin" | "expired" }
  | { type: "token.issued"; grantType: string; clientId: string; sub?: string; scope: string; tokenType: "Bearer" | "DPoP"; refreshToken: boolean }
  | {
      /** RFC 8693 token exchange: `sub` of the subject token, the client that got it, the actor (delegation). */
      type: "token.exchanged";
      clientId: string;
      sub: string;
      subjectClientId: string;
      actor?: string;
      impersonation: boolean;
      audience?: string;
      scope: string;
      tokenType: "Bearer" | "DPoP";
    }
  | { type: "token.revoked"; clientId: string; kind: "access_token" | "refresh_token" }
  | { type: "token.replay_detected"; clientId: string; kind: "authorization_code" | "refresh_token" }
  | { type: "logout.backchannel.sent"; clientId: string; sid: string }
  | { type: "logout.backchannel.failed"; clientId: string; sid: string; error: string }
  | { type: "key.created"; kid: string; alg: string; activatesAt: number }
  | { type: "key.removed"; kid: string }
  | { type: "client.created" | "client.updated" | "client.deleted" | "client.secret_rotated"; clientId: string; via: "admin" | "registration" }
  | { type: "device.approved" | "device.denied"; clientId: string; sub: string }
  | { type: "account.created" | "account.updated" | "account.disabled" | "account.enabled" | "account.deleted" | "account.password_changed"; sub: string; by: AccountActor; fields?: string[] }
  | { type: "account.registered" | "account.email_verified" | "account.password_reset_requested" | "account.password_reset"; sub: string };

/** Who changed an account: an administrator (API or pages), the CLI, the user themself, or the server (a rehash). */
export type AccountActor = "admin" | "cli" | "self" | "system";

/** Where events go: a function called for each (synchronously; keep it fast, queue if needed). */
export type EventSink = (event: TesseraEvent & { at: string }) => void;
