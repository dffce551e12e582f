import { randomBytes } from "node:crypto";
import { constantTimeEqual } from "@tessera/protocol";
import type { AccountActor, TesseraEvent } from "../events.ts";
import { accountClaims, AccountConflictError, ACCOUNT_LIMITS, normalizeEmail, normalizeUsername, type AccountQuery, type AccountStore, type StoredAccount } from "../stores/accounts.ts";
import { isStorableText } from "../stores/values.ts";
import { createArgon2Hasher, type PasswordHasher } from "../security/passwords.ts";
import { isCommonPassword } from "./common-passwords.ts";
import type { UserRecord, UserStore } from "../tokens/claims.ts";

/** A fixed account from the host's config: read-only, never in the store. */
export interface FixedAccount {
  sub: string;
  username: string;
  /** Plain password (demos). */
  password?: string | undefined;
  /** argon2id PHC string. */
  password_hash?: string | undefined;
  claims?: Record<string, unknown> | undefined;
}

/** An account as pages, the admin API and the CLI see it (never its password hash). */
export interface AccountView {
  sub: string;
  username: string;
  email?: string | undefined;
  emailVerified: boolean;
  /** Profile claims as stored (without the ones derived from the fields). */
  claims: Record<string, unknown>;
  disabled: boolean;
  /** True for an account of the config file: read-only. */
  fixed: boolean;
  hasPassword: boolean;
  /** Unix seconds (stored accounts only). */
  createdAt?: number | undefined;
  updatedAt?: number | undefined;
}

/** Input of {@link UserDirectory.create}. */
export interface NewAccountInput {
  username: string;
  email?: string | undefined;
  /** An email given by an administrator counts as verified (contract §14); registration passes false. */
  emailVerified?: boolean | undefined;
  password?: string | undefined;
  claims?: Record<string, unknown> | undefined;
}

/** Changes of {@link UserDirectory.update}: absent fields stay, `email: null` removes the address. */
export interface AccountUpdate {
  username?: string | undefined;
  email?: string | null | undefined;
  emailVerified?: boolean | undefined;
  claims?: Record<string, unknown> | undefined;
}

/** Input a person or administrator got wrong (answer 400 with the message). */
export class AccountInputError extends Error {
  readonly code = "invalid_account";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "AccountInputError";
  }
}

/** A change to a fixed (config) account, which only the config file changes (answer 409). */
export class FixedAccountError extends Error {
  readonly code = "fixed_account";
  constructor(readonly sub: string) {
    super("this account is defined in the config file and cannot be changed here");
    this.name = "FixedAccountError";
  }
}

/** Options of {@link UserDirectory}. */
export interface UserDirectoryOptions {
  /** Stored accounts; without one only the fixed accounts exist. */
  store?: AccountStore | undefined;
  fixed?: readonly FixedAccount[] | undefined;
  hasher?: PasswordHasher | undefined;
  /** Milliseconds clock (default Date.now). */
  clock?: (() => number) | undefined;
  /** Milliseconds clock of the sessions (the one `isSessionValid` compares `signedInAt` with; default Date.now). */
  clockMs?: (() => number) | undefined;
  emit?: ((event: TesseraEvent) => void) | undefined;
  /** Shortest password accepted when one is set (default 8, NIST SP 800-63B §3.1.1.2). */
  minPasswordLength?: number | undefined;
  /**
   * Runs when an account is disabled or deleted, after the change is stored: end its sessions and revoke its
   * tokens (the host wires the provider's `removeSessions` and `revokeGrants`).
   */
  onDeactivated?: ((sub: string) => Promise<void>) | undefined;
  /**
   * Runs after a password change: end the account's sessions and revoke its tokens and consents, except
   * those of `keepSessionId` (the session of the user who changed it), when given.
   */
  onPasswordChanged?: ((sub: string, keepSessionId: string | undefined) => Promise<void>) | undefined;
}

/** The session of the user changing their own password: it stays signed in, re-issued after the cutoff. */
export interface CurrentSession {
  /** Re-issues the session (a fresh sign-in of the same user, keeping its sid); returns its sid and new `signedInAt` (ms). */
  reissue(): Promise<{ sid: string; signedInAt: number }>;
}

const MAX_PASSWORD_LENGTH = 1024;
const PAGE_LIMIT = 200;
/** A dot-atom (RFC 5322 §3.2.3; non-ASCII as RFC 6531 allows): none of , ; < > ( ) [ ] \\ " : or spaces. */
const EMAIL_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]+)*$/u;
const EMAIL_DOMAIN = /^(?:[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]*[A-Za-z0-9\u0080-\uffff])?\.)*[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]*[A-Za-z0-9\u0080-\uffff])?$/u;
/**
 * Controls, spaces, format characters (zero-width, bidi controls, soft hyphen: \p{Cf}), the combining
 * grapheme joiner, Hangul fillers, and U+0130/U+0131 (Turkish dotted/dotless I, whose case folding differs
 * by locale).
 */
const USERNAME_FORBIDDEN = /[\p{Cc}\p{Cf}\p{Z}\s\u034f\u115f\u1160\u3164\uffa0\u0130\u0131]/u;
/** Scripts that share look-alike letters: a username may use one of them. */
const CONFUSABLE_SCRIPTS = [/\p{Script=Latin}/u, /\p{Script=Cyrillic}/u, /\p{Script=Greek}/u];
/** Cyrillic and Greek letters that look like Latin ones (after lower-casing; UTS #39 confusables, in part). */
const SKELETON: Record<string, string> = {
  а: "a", в: "b", е: "e", ё: "e", һ: "h", і: "i", ї: "i", ј: "j", к: "k", м: "m", н: "h", о: "o", р: "p", с: "c", т: "t", у: "y", х: "x", ѕ: "s", ԁ: "d", ԛ: "q", ԝ: "w", ь: "b", г: "r", п: "n", ѵ: "v", ӏ: "l",
  α: "a", β: "b", ε: "e", η: "n", ι: "i", κ: "k", ν: "v", ο: "o", ρ: "p", τ: "t", υ: "u", χ: "x", γ: "y", ω: "w", ϲ: "c", ϳ: "j", ζ: "z",
};

/**
 * The accounts of a server: fixed accounts from the config beside the stored ones. One owner of the rules:
 * username and email shape and uniqueness (fixed and stored together), password policy, argon2id with
 * rehash on sign-in, constant work for unknown users, disabled accounts, and `account.*` events. Nothing is
 * cached, so a change by another process (the CLI) counts at the next request.
 */
export class UserDirectory implements UserStore {
  /** The stored accounts (credentials and one-time tokens live there too), when accounts are stored. */
  readonly store: AccountStore | undefined;
  readonly hasher: PasswordHasher;
  private readonly bySub = new Map<string, FixedAccount>();
  private readonly byUsername = new Map<string, FixedAccount>();
  /** Fixed accounts by their `email` claim, lower-cased. */
  private readonly byEmail = new Map<string, FixedAccount>();
  private readonly clock: () => number;
  private readonly clockMs: () => number;
  private readonly emit: (event: TesseraEvent) => void;
  private readonly minPasswordLength: number;
  onDeactivated: ((sub: string) => Promise<void>) | undefined;
  onPasswordChanged: ((sub: string, keepSessionId: string | undefined) => Promise<void>) | undefined;

  constructor(options: UserDirectoryOptions = {}) {
    this.store = options.store;
    this.hasher = options.hasher ?? createArgon2Hasher();
    this.clockMs = options.clockMs ?? options.clock ?? Date.now;
    this.clock = () => Math.floor(this.clockMs() / 1000);
    this.onPasswordChanged = options.onPasswordChanged;
    this.emit = options.emit ?? (() => {});
    this.minPasswordLength = options.minPasswordLength ?? 8;
    this.onDeactivated = options.onDeactivated;
    for (const user of options.fixed ?? []) {
      this.bySub.set(user.sub, user);
      this.byUsername.set(normalizeUsername(user.username), user);
      const email = user.claims?.email;
      if (typeof email === "string" && !this.byEmail.has(email.toLowerCase())) this.byEmail.set(email.toLowerCase(), user);
    }
  }

  /** Claims of an active account (the provider's {@link UserStore}); undefined for a disabled or unknown one. */
  async findBySubject(sub: string): Promise<UserRecord | undefined> {
    const fixed = this.bySub.get(sub);
    if (fixed) return { sub, claims: fixed.claims ?? {} };
    const stored = await this.store?.findBySubject(sub);
    return stored && !stored.disabled ? { sub, claims: accountClaims(stored) } : undefined;
  }

  /** True when the account exists and may sign in and use its tokens. */
  async isActive(sub: string): Promise<boolean> {
    return (await this.findBySubject(sub)) !== undefined;
  }

  /**
   * A session may go on while its account is active and it was signed in (`signedInAt`, ms) at or after the
   * account's `sessionsValidAfter` (set when the account was disabled or its password changed): cookie-only
   * sessions end this way too.
   */
  async isSessionValid(sub: string, signedInAt: number): Promise<boolean> {
    if (this.bySub.has(sub)) return true;
    const stored = await this.store?.findBySubject(sub);
    if (!stored || stored.disabled) return false;
    if (stored.sessionsValidAfter === undefined) return true;
    // Cutoffs written before they were kept in milliseconds are Unix seconds.
    const cutoff = stored.sessionsValidAfter < 1e11 ? (stored.sessionsValidAfter + 1) * 1000 : stored.sessionsValidAfter;
    return signedInAt >= cutoff;
  }

  /** Ends every session of the account that started until now ("sign out everywhere"), cookie-only ones included. */
  async endSessions(sub: string, by: AccountActor): Promise<void> {
    const store = this.requireStore(sub);
    const updated = await store.update(sub, { sessionsValidAfter: this.clockMs() + 1, updatedAt: this.clock() });
    if (!updated) return;
    this.emit({ type: "account.updated", sub, by, fields: ["sessions"] });
    await this.onDeactivated?.(sub);
  }

  /** Any account (disabled ones too) by sub. */
  async get(sub: string): Promise<AccountView | undefined> {
    const fixed = this.bySub.get(sub);
    if (fixed) return fixedView(fixed);
    const stored = await this.store?.findBySubject(sub);
    return stored && storedView(stored);
  }

  async findByUsername(username: string): Promise<AccountView | undefined> {
    const fixed = this.byUsername.get(normalizeUsername(username));
    if (fixed) return fixedView(fixed);
    const stored = await this.store?.findByUsername(username);
    return stored && storedView(stored);
  }

  /** The account with this email (case-insensitive): a fixed account's `email` claim first, then the stored ones. */
  async findByEmail(email: string): Promise<AccountView | undefined> {
    const fixed = this.byEmail.get(email.toLowerCase());
    if (fixed) return fixedView(fixed);
    const stored = await this.store?.findByEmail(email);
    return stored && storedView(stored);
  }

  async findByExternalLink(issuer: string, externalSubject: string): Promise<AccountView | undefined> {
    const stored = await this.store?.findByExternalLink(issuer, externalSubject);
    return stored && storedView(stored);
  }

  /**
   * The account when the password is right and the account is active, else undefined (one answer for a
   * wrong password, an unknown user and a disabled account). Unknown users cost the same argon2 work. A
   * stored hash with outdated parameters is replaced by a fresh one.
   */
  async verifyPassword(username: string, password: string): Promise<AccountView | undefined> {
    if (password.length > MAX_PASSWORD_LENGTH) password = password.slice(0, MAX_PASSWORD_LENGTH);
    const normalized = normalizePassword(password);
    const fixed = this.byUsername.get(normalizeUsername(username));
    if (fixed) {
      if (fixed.password_hash) return (await this.verifyEitherForm(fixed.password_hash, password, normalized)) ? fixedView(fixed) : undefined;
      if (fixed.password !== undefined) {
        const ok = constantTimeEqual(normalizePassword(fixed.password), normalized);
        // The same argon2 work as for an unknown user or a hashed password: the answer's time tells nothing.
        await this.hasher.dummyVerify(password);
        return ok ? fixedView(fixed) : undefined;
      }
      await this.hasher.dummyVerify(password);
      return undefined;
    }
    const stored = await this.store?.findByUsername(username);
    if (!stored?.passwordHash) {
      await this.hasher.dummyVerify(password);
      return undefined;
    }
    const matched = await this.verifyEitherForm(stored.passwordHash, password, normalized);
    if (!matched || stored.disabled) return undefined;
    // A hash of the password as typed (before passwords were NFKC-normalised) is replaced by the normalised one.
    if (matched === "raw" || (await this.hasher.needsRehash(stored.passwordHash))) {
      // Only when the hash is still the one just checked: a password changed meanwhile stays.
      const fresh = await this.hasher.hash(normalized);
      const current = await this.store!.findBySubject(stored.sub);
      if (current?.passwordHash === stored.passwordHash) await this.store!.update(stored.sub, { passwordHash: fresh, updatedAt: this.clock() });
    }
    return storedView(stored);
  }

  /** Which form of the password the hash is of: the NFKC-normalised one, the one as typed (older hashes), or none. */
  private async verifyEitherForm(hash: string, password: string, normalized: string): Promise<"normalized" | "raw" | false> {
    if (await this.hasher.verify(hash, normalized)) return "normalized";
    if (normalized !== password && (await this.hasher.verify(hash, password))) return "raw";
    return false;
  }

  /** True when `password` is the account's current password (a change-password form asks for it). */
  async checkPassword(sub: string, password: string): Promise<boolean> {
    const account = await this.get(sub);
    if (!account) {
      await this.hasher.dummyVerify(password);
      return false;
    }
    return (await this.verifyPassword(account.username, password))?.sub === sub;
  }

  /** Creates a stored account with a random sub; refuses a username used by a fixed or stored account. */
  async create(input: NewAccountInput, by: AccountActor): Promise<AccountView> {
    const store = this.requireStore();
    const username = await this.checkUsername(input.username);
    const email = input.email === undefined || input.email === "" ? undefined : this.checkEmail(input.email);
    const claims = checkClaims(input.claims ?? {});
    const passwordHash = input.password === undefined ? undefined : await this.hasher.hash(this.assertPasswordPolicy(input.password, [username, email]));
    const now = this.clock();
    let sub = randomBytes(16).toString("base64url");
    while (this.bySub.has(sub)) sub = randomBytes(16).toString("base64url");
    const account: StoredAccount = {
      sub,
      username,
      email,
      emailVerified: email !== undefined && (input.emailVerified ?? false),
      passwordHash,
      claims,
      disabled: false,
      createdAt: now,
      updatedAt: now,
    };
    await store.create(account);
    this.emit({ type: "account.created", sub: account.sub, by });
    return storedView(account);
  }

  /** Changes a stored account's username, email or claims; a new email is unverified unless said otherwise. */
  async update(sub: string, update: AccountUpdate, by: AccountActor): Promise<AccountView | undefined> {
    const store = this.requireStore(sub);
    const current = await store.findBySubject(sub);
    if (!current) return undefined;
    const changes: Parameters<AccountStore["update"]>[1] = { updatedAt: this.clock() };
    const fields: string[] = [];
    if (update.username !== undefined && update.username !== current.username) {
      changes.username = await this.checkUsername(update.username, sub);
      fields.push("username");
    }
    if (update.email !== undefined) {
      const email = update.email === null || update.email === "" ? null : this.checkEmail(update.email);
      if ((email ?? undefined) !== current.email) {
        changes.email = email;
        changes.emailVerified = email !== null && (update.emailVerified ?? false);
        fields.push("email");
      }
    }
    if (update.emailVerified !== undefined && changes.emailVerified === undefined && update.emailVerified !== current.emailVerified) {
      changes.emailVerified = update.emailVerified && (current.email !== undefined);
      fields.push("email_verified");
    }
    if (update.claims !== undefined) {
      changes.claims = checkClaims(update.claims);
      fields.push("claims");
    }
    if (fields.length === 0) return storedView(current);
    const updated = await store.update(sub, changes);
    if (updated && fields.includes("email")) {
      // Links sent to the old address (or proving it) no longer count for the account.
      for (const purpose of ["password_reset", "password_reset_form", "email_verification"] as const) await store.removeTokens(sub, purpose);
    }
    if (updated) this.emit({ type: "account.updated", sub, by, fields });
    return updated && storedView(updated);
  }

  /**
   * Sets a new password and locks out whoever knew the old one: every session signed in before now ends
   * (cookie-only ones too, by `sessionsValidAfter`), {@link UserDirectoryOptions.onPasswordChanged} revokes the
   * account's tokens and consents, and pending reset links are removed. Only `current` (the user's own
   * session, when the user changes it) stays, re-issued after the cutoff; an administrator or the CLI ends all.
   */
  async setPassword(sub: string, password: string, by: AccountActor, current?: CurrentSession): Promise<AccountView | undefined> {
    const store = this.requireStore(sub);
    const account = await store.findBySubject(sub);
    if (!account) return undefined;
    const passwordHash = await this.hasher.hash(this.assertPasswordPolicy(password, [account.username, account.email]));
    // The kept session is signed in again first, so the cutoff (its new signedInAt) ends every other one.
    const kept = current ? await current.reissue() : undefined;
    const cutoff = kept?.signedInAt ?? this.clockMs();
    const updated = await store.update(sub, { passwordHash, sessionsValidAfter: cutoff, updatedAt: this.clock() });
    if (!updated) return undefined;
    await store.removeTokens(sub, "password_reset");
    await store.removeTokens(sub, "password_reset_form");
    this.emit({ type: "account.password_changed", sub, by });
    await this.onPasswordChanged?.(sub, kept?.sid);
    return storedView(updated);
  }

  /**
   * Disables or enables a stored account. A disabled account cannot sign in (the same answer as a wrong
   * password), its claims are no longer issued, and {@link UserDirectoryOptions.onDeactivated} ends its sessions.
   */
  async setDisabled(sub: string, disabled: boolean, by: AccountActor): Promise<AccountView | undefined> {
    const store = this.requireStore(sub);
    const current = await store.findBySubject(sub);
    if (!current) return undefined;
    const now = this.clock();
    const updated = current.disabled === disabled ? current : await store.update(sub, { disabled, updatedAt: now, ...(disabled ? { sessionsValidAfter: this.clockMs() + 1 } : {}) });
    if (!updated) return undefined;
    if (current.disabled !== disabled) this.emit({ type: disabled ? "account.disabled" : "account.enabled", sub, by });
    // Also when it was disabled already: sessions a racing sign-in started end too.
    if (disabled) await this.onDeactivated?.(sub);
    return storedView(updated);
  }

  /** Deletes a stored account with its credentials and tokens, and ends its sessions. */
  async remove(sub: string, by: AccountActor): Promise<boolean> {
    const store = this.requireStore(sub);
    const removed = await store.remove(sub);
    if (!removed) return false;
    this.emit({ type: "account.deleted", sub, by });
    await this.onDeactivated?.(sub);
    return true;
  }

  /**
   * Removes every second-factor credential of the account (TOTP, recovery codes, passkeys) so the user
   * signs in with the password alone and enrols again; returns how many were removed.
   */
  async resetSecondFactors(sub: string, by: AccountActor): Promise<number> {
    const store = this.requireStore();
    const removed = await store.removeCredentials(sub);
    if (removed > 0) this.emit({ type: "account.updated", sub, by, fields: ["second_factors"] });
    return removed;
  }

  /**
   * A page of accounts matching `query` (a substring of sub, username, email or name): the matching fixed
   * accounts head the first page, stored accounts follow in creation order.
   */
  async list(query: AccountQuery): Promise<{ users: AccountView[]; next: string | null }> {
    const count = Math.min(Math.max(1, Math.floor(query.count) || 1), PAGE_LIMIT);
    const text = query.query?.trim() || undefined;
    const fixed = query.cursor ? [] : [...this.bySub.values()].filter((u) => matchesFixed(u, text)).map(fixedView);
    if (!this.store) return { users: fixed, next: null };
    const page = await this.store.query({ query: text, cursor: query.cursor, count });
    return { users: [...fixed, ...page.accounts.map(storedView)], next: page.next };
  }

  /** True when the sub or username belongs to a fixed account. */
  isFixed(sub: string): boolean {
    return this.bySub.has(sub);
  }

  private requireStore(sub?: string): AccountStore {
    if (sub !== undefined && this.bySub.has(sub)) throw new FixedAccountError(sub);
    if (!this.store) throw new AccountInputError("store", "accounts are not stored on this server (accounts.store is off)");
    return this.store;
  }

  /**
   * Username rules (one owner): no controls, spaces or invisible characters, one of Latin, Cyrillic and
   * Greek at most, and unique by NFKC lower case and by a confusables skeleton (`аlice` in Cyrillic is taken
   * when `alice` exists). `self` is the account being renamed.
   */
  private async checkUsername(value: string, self?: string): Promise<string> {
    const username = typeof value === "string" ? value.trim() : "";
    if (!username) throw new AccountInputError("username", "A username is required.");
    if (username.length > ACCOUNT_LIMITS.username) throw new AccountInputError("username", `A username has at most ${ACCOUNT_LIMITS.username} characters.`);
    if (USERNAME_FORBIDDEN.test(username) || !isStorableText(username)) throw new AccountInputError("username", "A username cannot hold spaces, control or invisible characters.");
    const key = normalizeUsername(username);
    if (CONFUSABLE_SCRIPTS.filter((script) => script.test(key)).length > 1) throw new AccountInputError("username", "A username cannot mix Latin, Cyrillic and Greek letters.");
    if (this.byUsername.has(key)) throw new AccountConflictError("username");
    const skeleton = usernameSkeleton(key);
    if (skeleton !== key) {
      if (this.byUsername.has(skeleton)) throw new AccountConflictError("username");
      const lookalike = await this.store?.findByUsername(skeleton);
      if (lookalike && lookalike.sub !== self) throw new AccountConflictError("username");
    }
    return username;
  }

  /**
   * Password policy (NIST SP 800-63B §5.1.1.2): length, no common password, not the username or email;
   * returns the NFKC-normalised password, the form that is hashed.
   */
  assertPasswordPolicy(password: string, identifiers: (string | undefined)[] = []): string {
    if (typeof password !== "string" || password.length < this.minPasswordLength) throw new AccountInputError("password", `A password has at least ${this.minPasswordLength} characters.`);
    if (password.length > MAX_PASSWORD_LENGTH) throw new AccountInputError("password", `A password has at most ${MAX_PASSWORD_LENGTH} characters.`);
    if (!isStorableText(password)) throw new AccountInputError("password", "A password cannot hold a NUL character or a lone surrogate.");
    const normalized = normalizePassword(password);
    const folded = normalized.toLowerCase();
    if (isCommonPassword(folded)) throw new AccountInputError("password", "This password is too common. Choose another one.");
    const email = identifiers[1];
    const names = [identifiers[0], email, email?.split("@")[0]].filter((v): v is string => !!v).map((v) => v.normalize("NFKC").toLowerCase());
    if (names.includes(folded)) throw new AccountInputError("password", "A password cannot be your username or email address.");
    return normalized;
  }

  /** Email rules: a strict addr-spec, and not the address of a config account. */
  private checkEmail(value: string): string {
    const email = checkEmail(value);
    const key = normalizeEmail(email);
    for (const user of this.bySub.values()) {
      if (typeof user.claims?.email === "string" && normalizeEmail(user.claims.email) === key) throw new AccountConflictError("email");
    }
    return email;
  }
}

/** Passwords are compared and hashed in NFKC (NIST SP 800-63B §5.1.1.2), so every keyboard's form matches. */
function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

/** The username key with Cyrillic and Greek look-alikes of Latin letters replaced (uniqueness only). */
export function usernameSkeleton(key: string): string {
  return [...key].map((c) => SKELETON[c] ?? c).join("");
}

/** One addr-spec (RFC 5322 §3.4.1 dot-atom form): never a list, a display name, a comment or a quoted local part. */
function checkEmail(value: string): string {
  const email = typeof value === "string" ? value.trim() : "";
  const at = email.lastIndexOf("@");
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const valid =
    at > 0 &&
    email.indexOf("@") === at &&
    local.length <= 64 &&
    domain.length >= 1 &&
    domain.length <= 253 &&
    EMAIL_LOCAL.test(local) &&
    EMAIL_DOMAIN.test(domain) &&
    !/[\p{Cc}\p{Cf}\p{Z}]/u.test(email);
  if (email.length > ACCOUNT_LIMITS.email || !valid || !isStorableText(email)) throw new AccountInputError("email", "Enter a valid email address.");
  return email;
}

/** Claims set by an administrator: an object; the ones derived from account fields or the protocol are refused. */
function checkClaims(claims: unknown): Record<string, unknown> {
  if (!claims || typeof claims !== "object" || Array.isArray(claims)) throw new AccountInputError("claims", "claims must be a JSON object.");
  for (const name of Object.keys(claims)) {
    if (["sub", "email", "email_verified", "preferred_username", "iss", "aud", "exp", "iat", "nbf", "auth_time", "acr", "amr", "sid"].includes(name)) {
      throw new AccountInputError("claims", `the claim ${name} cannot be set (it comes from the account or the protocol).`);
    }
  }
  try {
    return JSON.parse(JSON.stringify(claims)) as Record<string, unknown>;
  } catch {
    throw new AccountInputError("claims", "claims must be JSON.");
  }
}

function matchesFixed(user: FixedAccount, text: string | undefined): boolean {
  if (text === undefined) return true;
  const needle = text.toLowerCase();
  const name = typeof user.claims?.name === "string" ? user.claims.name : "";
  const email = typeof user.claims?.email === "string" ? user.claims.email : "";
  return [user.sub, user.username, name, email].some((v) => v.toLowerCase().includes(needle));
}

function fixedView(user: FixedAccount): AccountView {
  const claims = user.claims ?? {};
  return {
    sub: user.sub,
    username: user.username,
    email: typeof claims.email === "string" ? claims.email : undefined,
    emailVerified: claims.email_verified === true,
    claims,
    disabled: false,
    fixed: true,
    hasPassword: user.password !== undefined || user.password_hash !== undefined,
  };
}

function storedView(account: StoredAccount): AccountView {
  return {
    sub: account.sub,
    username: account.username,
    email: account.email,
    emailVerified: account.emailVerified,
    claims: account.claims,
    disabled: account.disabled,
    fixed: false,
    hasPassword: account.passwordHash !== undefined,
    createdAt: account.createdAt,
    updatedAt: account.updatedAt,
  };
}
