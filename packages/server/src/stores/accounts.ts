/**
 * Accounts kept in a store (issue 20): the user records, their second-factor credentials, one-time tokens
 * (email verification, password reset) and links to external identity providers. Embedders bring their own
 * database by implementing {@link AccountStore}; the memory, SQLite and PostgreSQL stores implement it and
 * pass one conformance suite (packages/server/test/user-store-conformance.ts).
 */
import { findable, isStorableText, STORE_LIMITS, StoreValueError } from "./values.ts";

/** Longest values (UTF-16 code units) of account fields; every store keeps to them. */
export const ACCOUNT_LIMITS = {
  sub: STORE_LIMITS.subject,
  username: 100,
  email: 254,
  name: 255,
  credentialId: 1024,
  credentialType: 32,
  credentialName: 100,
  tokenKey: STORE_LIMITS.key,
  purpose: 32,
  linkIssuer: 2048,
  linkSubject: 255,
} as const;

/** A stored account. Times are Unix seconds. */
export interface StoredAccount {
  /** Random and immutable (128-bit base64url or a UUID). */
  sub: string;
  /** Unique case-insensitively among stored accounts (and not used by a fixed account of the config). */
  username: string;
  /** Unique case-insensitively among stored accounts when set. */
  email?: string | undefined;
  emailVerified: boolean;
  /** PHC string of an argon2id hash; absent for an account that signs in only with a passkey or a provider. */
  passwordHash?: string | undefined;
  /** Profile claims (name, role, ...); `sub`, `email`, `email_verified` and `preferred_username` come from the fields. */
  claims: Record<string, unknown>;
  disabled: boolean;
  /**
   * Unix milliseconds: sessions signed in before it are over (set when the account is disabled, its password
   * changes, "sign out everywhere"); values below 10^11 are Unix seconds (written before). Cookie-only
   * sessions are checked against it on use.
   */
  sessionsValidAfter?: number | undefined;
  createdAt: number;
  updatedAt: number;
}

/** Input of {@link AccountStore.create}: every field but the times, which the caller sets. */
export type NewAccount = StoredAccount;

/** Changes of {@link AccountStore.update}; absent fields stay, `email: null` / `passwordHash: null` clear. */
export interface AccountChanges {
  username?: string;
  email?: string | null;
  emailVerified?: boolean;
  passwordHash?: string | null;
  claims?: Record<string, unknown>;
  disabled?: boolean;
  sessionsValidAfter?: number;
  /** Unix seconds; required so every change moves `updatedAt`. */
  updatedAt: number;
}

/** A page of the account list; `query` matches sub, username, email or the `name` claim as a case-insensitive substring. */
export interface AccountQuery {
  query?: string | undefined;
  /** Opaque cursor from a previous page. */
  cursor?: string | undefined;
  count: number;
}

/** Kinds of second-factor credentials; others (a feature's own) may be stored too. */
export type CredentialType = "totp" | "recovery_code" | "passkey" | (string & {});

/**
 * A credential of an account: a TOTP secret, one recovery code, or a passkey. `id` is unique across all
 * accounts (for a passkey its base64url credential ID, so a discoverable sign-in finds the account by it;
 * for a recovery code a hash of the code). Times are Unix seconds.
 */
export interface AccountCredential {
  id: string;
  subject: string;
  type: CredentialType;
  /** What the user called it ("Laptop", "YubiKey"). */
  name?: string | undefined;
  /**
   * The secret material: the TOTP secret encrypted with the data key (compact JWE), a passkey's public key
   * (base64url COSE key), a recovery code's hash. Never a plain secret.
   */
  secret: string;
  /** Signature counter of a passkey, or the last used time step of a TOTP secret (codes are single-use). */
  counter: number;
  /** A passkey's transports (usb, nfc, ble, internal, hybrid). */
  transports?: string[] | undefined;
  /** JSON payload owned by the feature that wrote it (backup state, device type, AAGUID...). */
  data?: string | undefined;
  createdAt: number;
  lastUsedAt?: number | undefined;
}

/** Purposes of one-time tokens. */
export type AccountTokenPurpose = "email_verification" | "password_reset" | (string & {});

/** A one-time token mailed to a user: stored by its hash, expiring, used once. Times are Unix seconds. */
export interface AccountToken {
  /** Hash of the token (never the token itself), e.g. base64url SHA-256. */
  key: string;
  subject: string;
  purpose: AccountTokenPurpose;
  /** JSON payload owned by the feature (e.g. the email address being verified). */
  data?: string | undefined;
  createdAt: number;
  expiresAt: number;
}

/** A link of an account to an external identity provider's user: (issuer, subject) is unique. */
export interface AccountLink {
  /** The upstream issuer (or provider id). */
  issuer: string;
  /** The upstream `sub`. */
  externalSubject: string;
  subject: string;
  createdAt: number;
}

/**
 * Why {@link AccountStore.create} or {@link AccountStore.update} refused: the username or email is taken
 * (case-insensitively), or the sub exists. Answer 409 / "already in use".
 */
export class AccountConflictError extends Error {
  readonly code = "account_conflict";
  constructor(readonly field: "sub" | "username" | "email") {
    super(`${field} is already in use`);
    this.name = "AccountConflictError";
  }
}

/**
 * Storage of accounts. Lookups by username and email are case-insensitive (see {@link normalizeUsername},
 * {@link normalizeEmail}); values no store can keep (too long, NUL, lone surrogates) find nothing on lookup
 * and are refused with {@link StoreValueError} on write. Nothing is cached: every process sees a change at once.
 */
export interface AccountStore {
  findBySubject(sub: string): Promise<StoredAccount | undefined>;
  findByUsername(username: string): Promise<StoredAccount | undefined>;
  findByEmail(email: string): Promise<StoredAccount | undefined>;
  /** Throws {@link AccountConflictError} when the sub, username or email is taken. */
  create(account: NewAccount): Promise<void>;
  /** The updated account, or undefined when there is none with this sub; throws {@link AccountConflictError}. */
  update(sub: string, changes: AccountChanges): Promise<StoredAccount | undefined>;
  /** Removes the account with its credentials, tokens and links; false when there was none. */
  remove(sub: string): Promise<boolean>;
  /** Accounts in creation order, filtered, a page at a time. */
  query(query: AccountQuery): Promise<{ accounts: StoredAccount[]; next: string | null }>;

  /** Adds a credential; throws {@link AccountConflictError} ("sub") when its id exists. */
  addCredential(credential: AccountCredential): Promise<void>;
  /** A credential by its id (any account); a passkey sign-in finds its account this way. */
  getCredential(id: string): Promise<AccountCredential | undefined>;
  /** The account's credentials, oldest first, of one type when given. */
  listCredentials(subject: string, type?: CredentialType): Promise<AccountCredential[]>;
  /**
   * Sets the credential's counter (and lastUsedAt) only when the stored counter is below `counter`, in one
   * atomic step; false otherwise. Single-use TOTP steps and passkey counters rely on it.
   */
  advanceCounter(id: string, counter: number, usedAt: number): Promise<boolean>;
  /** Changes a credential's name or data; false when the account has no credential with this id. */
  updateCredential(subject: string, id: string, changes: { name?: string; data?: string; lastUsedAt?: number }): Promise<boolean>;
  /** Removes one credential of the account in one atomic step; false when it was not there (a used recovery code). */
  removeCredential(subject: string, id: string): Promise<boolean>;
  /** Removes the account's credentials (of one type when given); returns how many. "Reset second factors" uses it. */
  removeCredentials(subject: string, type?: CredentialType): Promise<number>;

  /** Stores a one-time token (its key is a hash). */
  putToken(token: AccountToken): Promise<void>;
  /**
   * Removes and returns the token when it exists, has this purpose and has not expired at `now`, in one
   * atomic step: of two racing uses one wins.
   */
  consumeToken(key: string, purpose: AccountTokenPurpose, now: number): Promise<AccountToken | undefined>;
  /** Removes the account's tokens (of one purpose when given), e.g. every reset link once the password changed. */
  removeTokens(subject: string, purpose?: AccountTokenPurpose): Promise<number>;
  /** Removes up to `limit` tokens expired at `now`; returns how many (the expiry job). */
  removeExpiredTokens(now: number, limit: number): Promise<number>;

  /** Links the account to an external user; throws {@link AccountConflictError} ("sub") when the pair is linked. */
  addLink(link: AccountLink): Promise<void>;
  findByExternalLink(issuer: string, externalSubject: string): Promise<StoredAccount | undefined>;
  listLinks(subject: string): Promise<AccountLink[]>;
  removeLink(subject: string, issuer: string, externalSubject: string): Promise<boolean>;
}

/** The key usernames are unique by: NFKC, lower case. */
export function normalizeUsername(username: string): string {
  return username.normalize("NFKC").toLowerCase();
}

/** The key emails are unique by: trimmed, lower case (the whole address, as most identity servers do). */
export function normalizeEmail(email: string): string {
  return email.trim().normalize("NFKC").toLowerCase();
}

/** Longest normalized username or email (NFKC can expand a character up to 18 times). */
const MAX_KEY_LENGTH = 400;

/** The text account searches compare: NFKC, lower case (the same for every store). */
export function searchKey(value: string): string {
  return value.normalize("NFKC").toLowerCase();
}

const TIME_FIELDS = ["createdAt", "updatedAt", "sessionsValidAfter", "expiresAt", "lastUsedAt", "counter", "usedAt", "now"] as const;

function checkText(field: string, value: string | undefined, limit?: number): void {
  if (value === undefined) return;
  if (limit !== undefined && value.length > limit) throw new StoreValueError(field, `is longer than ${limit} characters`);
  if (!isStorableText(value)) throw new StoreValueError(field, "contains a NUL character or a lone surrogate");
}

function checkTimes(record: object): void {
  for (const field of TIME_FIELDS) {
    const value = (record as Record<string, unknown>)[field];
    if (value !== undefined && !Number.isSafeInteger(value)) throw new StoreValueError(field, "is not a whole number within the safe integer range", "server");
  }
}

/** Text inside JSON (claims, data) must be storable too: every string, every key. */
function checkJson(field: string, value: unknown, depth = 0): void {
  if (depth > 20) throw new StoreValueError(field, "is nested too deeply");
  if (typeof value === "string") checkText(field, value);
  else if (Array.isArray(value)) for (const item of value) checkJson(field, item, depth + 1);
  else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      checkText(field, key);
      checkJson(field, item, depth + 1);
    }
  }
}

/** Throws {@link StoreValueError} unless every store can keep the account fields unchanged. */
export function assertStorableAccount(account: Partial<StoredAccount> | AccountChanges): void {
  checkTimes(account);
  const a = account as Partial<StoredAccount> & { email?: string | null; passwordHash?: string | null };
  checkText("sub", a.sub, ACCOUNT_LIMITS.sub);
  checkText("username", a.username, ACCOUNT_LIMITS.username);
  if (a.username !== undefined && a.username.trim() === "") throw new StoreValueError("username", "is empty");
  // The normalized forms are unique keys: bounded so every database can index them.
  if (a.username !== undefined && normalizeUsername(a.username).length > MAX_KEY_LENGTH) throw new StoreValueError("username", "is too long once normalized");
  checkText("email", a.email ?? undefined, ACCOUNT_LIMITS.email);
  if (a.email && normalizeEmail(a.email).length > MAX_KEY_LENGTH) throw new StoreValueError("email", "is too long once normalized");
  checkText("passwordHash", a.passwordHash ?? undefined, 1024);
  if (a.claims !== undefined) {
    if (!a.claims || typeof a.claims !== "object" || Array.isArray(a.claims)) throw new StoreValueError("claims", "is not an object");
    checkJson("claims", a.claims);
    if (JSON.stringify(a.claims).length > 64 * 1024) throw new StoreValueError("claims", "is larger than 64 KiB");
  }
}

/** Throws {@link StoreValueError} unless every store can keep the credential unchanged. */
export function assertStorableCredential(credential: AccountCredential): void {
  checkTimes(credential);
  checkText("id", credential.id, ACCOUNT_LIMITS.credentialId);
  checkText("subject", credential.subject, ACCOUNT_LIMITS.sub);
  checkText("type", credential.type, ACCOUNT_LIMITS.credentialType);
  checkText("name", credential.name, ACCOUNT_LIMITS.credentialName);
  checkText("secret", credential.secret, 16 * 1024);
  checkText("data", credential.data, 64 * 1024);
  for (const transport of credential.transports ?? []) checkText("transports", transport, 32);
}

/** Throws {@link StoreValueError} unless every store can keep the token unchanged. */
export function assertStorableToken(token: AccountToken): void {
  checkTimes(token);
  checkText("key", token.key, ACCOUNT_LIMITS.tokenKey);
  checkText("subject", token.subject, ACCOUNT_LIMITS.sub);
  checkText("purpose", token.purpose, ACCOUNT_LIMITS.purpose);
  checkText("data", token.data, 64 * 1024);
}

/** Throws {@link StoreValueError} unless every store can keep the link unchanged. */
export function assertStorableLink(link: AccountLink): void {
  checkTimes(link);
  checkText("issuer", link.issuer, ACCOUNT_LIMITS.linkIssuer);
  checkText("externalSubject", link.externalSubject, ACCOUNT_LIMITS.linkSubject);
  checkText("subject", link.subject, ACCOUNT_LIMITS.sub);
}

/** Cursor of an account page: the creation time and sub of the last account shown. */
export function encodeAccountCursor(account: Pick<StoredAccount, "createdAt" | "sub">): string {
  return Buffer.from(JSON.stringify([account.createdAt, account.sub])).toString("base64url");
}

/** Undefined for a cursor that was not made by {@link encodeAccountCursor}. */
export function decodeAccountCursor(cursor: string): { createdAt: number; sub: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(value) && Number.isSafeInteger(value[0]) && typeof value[1] === "string" && findable(value[1], ACCOUNT_LIMITS.sub)) {
      return { createdAt: value[0] as number, sub: value[1] };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** The claims of a stored account as tokens and userinfo see them. */
export function accountClaims(account: StoredAccount): Record<string, unknown> {
  const claims: Record<string, unknown> = { ...account.claims, preferred_username: account.username };
  if (account.email !== undefined) {
    claims.email = account.email;
    claims.email_verified = account.emailVerified;
  }
  return claims;
}
