import { createHmac, randomBytes } from "node:crypto";
import { sha256Base64url } from "@tessera/protocol";
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import type { DataProtector } from "../keys/data-protection.ts";
import type { AccountCredential, AccountStore } from "../stores/accounts.ts";
import type { GrantStore } from "../stores/interfaces.ts";
import type { AcrValue } from "../session/authentication-context.ts";

/** RFC 6238 as authenticator apps expect it: SHA-1, 6 digits, 30-second steps. */
const TOTP_PERIOD = 30;
/** How many recovery codes a set has. */
export const RECOVERY_CODE_COUNT = 10;
/** Seconds an enrolment or a WebAuthn ceremony may take. */
const CEREMONY_LIFETIME = 600;
/** Crockford's base32 alphabet (no I, L, O, U): recovery codes are read and typed by people. */
const CODE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

/** otplib and @simplewebauthn/server load with their first use: a start that never sees a second factor skips them. */
const otp = () => import("otplib");
const webauthn = () => import("@simplewebauthn/server");

/** What a user has set up, for the account page and the sign-in decisions. */
export interface SecondFactorStatus {
  totp: boolean;
  /** Unused recovery codes. */
  recoveryCodes: number;
  passkeys: PasskeyInfo[];
}

/** A passkey as the account page lists it. */
export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt?: number;
  /** `hwk` (a roaming security key) or `swk` (a platform or synced passkey), see {@link passkeyMethod}. */
  method: "hwk" | "swk";
}

/** A TOTP enrolment in progress: show `secret` (and `uri` as a QR code), keep `ticket` in the form. */
export interface TotpEnrolment {
  /** Base32 secret, for typing into an authenticator app. */
  secret: string;
  /** `otpauth://totp/...` URI, for the QR code. */
  uri: string;
  /** The secret sealed with the data key for the confirming request (no server state until confirmed). */
  ticket: string;
}

/** A WebAuthn ceremony's options for the browser and the sealed challenge to send back with its result. */
export interface WebAuthnCeremony<T> {
  options: T;
  ticket: string;
}

/** Why a passkey ceremony failed; shown to the user as one generic message, logged by code. */
export type PasskeyFailure = "expired" | "unknown_credential" | "not_verified" | "replayed" | "counter" | "duplicate";

/** Options of {@link SecondFactorService}. */
export interface SecondFactorOptions {
  /** Where credentials live (the store's `accounts`, or an embedder's own). */
  accounts: AccountStore;
  /** Replay cache for WebAuthn challenges (the grant store): each ceremony counts once. */
  grants: GrantStore;
  /** Encrypts TOTP secrets at rest and seals ceremonies (derived from the data key). */
  protector: DataProtector;
  /** The issuer: its host is the WebAuthn rpID, its origin the expected origin, its name the TOTP issuer. */
  issuer: string;
  /** Name shown by authenticators (default "Tessera"). */
  displayName?: string;
  /** Milliseconds clock. */
  clock?: () => number;
}

/**
 * Second factors and passkeys of accounts: TOTP (RFC 6238, ±1 step, each step used once), recovery codes
 * (hashed, each used once) and passkeys (WebAuthn: registration, discoverable sign-in, counters). The
 * secrets are kept as {@link AccountCredential}s; TOTP secrets encrypted with the data key.
 */
export class SecondFactorService {
  private readonly accounts: AccountStore;
  private readonly grants: GrantStore;
  private readonly protector: DataProtector;
  private readonly clock: () => number;
  private readonly rpId: string;
  private readonly origin: string;
  private readonly displayName: string;

  constructor(options: SecondFactorOptions) {
    this.accounts = options.accounts;
    this.grants = options.grants;
    this.protector = options.protector;
    this.clock = options.clock ?? Date.now;
    const issuer = new URL(options.issuer);
    this.rpId = issuer.hostname;
    this.origin = issuer.origin;
    this.displayName = options.displayName ?? "Tessera";
  }

  private now(): number {
    return Math.floor(this.clock() / 1000);
  }

  /** What the user has set up. */
  async status(sub: string): Promise<SecondFactorStatus> {
    const credentials = await this.accounts.listCredentials(sub);
    return {
      totp: credentials.some((c) => c.type === "totp"),
      recoveryCodes: credentials.filter((c) => c.type === "recovery_code").length,
      passkeys: credentials.filter((c) => c.type === "passkey").map(passkeyInfo),
    };
  }

  /**
   * The `acr` of the strongest factor the user has set up (`phr` with a passkey, `mfa` with TOTP), or
   * undefined with none: changing the factors takes a recent authentication at least this strong.
   */
  async strongestAcr(sub: string): Promise<AcrValue | undefined> {
    const credentials = await this.accounts.listCredentials(sub);
    if (credentials.some((c) => c.type === "passkey")) return "phr";
    if (credentials.some((c) => c.type === "totp")) return "mfa";
    return undefined;
  }

  /** True when a password sign-in of this user must be followed by a code (TOTP is set up). */
  async hasSecondFactor(sub: string): Promise<boolean> {
    return (await this.accounts.listCredentials(sub, "totp")).length > 0;
  }

  // --- TOTP ---------------------------------------------------------------------------------------------

  /** Starts a TOTP enrolment for `sub`; `label` names the account in the authenticator app. */
  async beginTotp(sub: string, label: string): Promise<TotpEnrolment> {
    const { generateSecret, generateURI } = await otp();
    const secret = generateSecret();
    const uri = generateURI({ issuer: this.displayName, label, secret, algorithm: "sha1", digits: 6, period: TOTP_PERIOD });
    const ticket = await this.protector.sealJwt("second-factor", { t: "totp", sub, s: secret }, this.now() + CEREMONY_LIFETIME);
    return { secret, uri, ticket };
  }

  /** The secret of an enrolment ticket of `sub`, to show it again after a wrong code. */
  async reopenTotp(sub: string, ticket: string, label: string): Promise<TotpEnrolment | undefined> {
    const payload = await this.protector.openJwt("second-factor", ticket.slice(0, 2048), this.now());
    if (payload?.t !== "totp" || payload.sub !== sub || typeof payload.s !== "string") return undefined;
    const secret = payload.s;
    const { generateURI } = await otp();
    return { secret, uri: generateURI({ issuer: this.displayName, label, secret, algorithm: "sha1", digits: 6, period: TOTP_PERIOD }), ticket };
  }

  /**
   * Confirms an enrolment with a code from the app: stores the (encrypted) secret and returns a fresh set of
   * recovery codes to show once. Undefined when the code or ticket is wrong, the ticket was used already
   * (each ticket confirms once), or TOTP is on already (replacing it means turning it off first, which
   * takes a current code). Of racing confirmations exactly one succeeds; the others get undefined.
   */
  async confirmTotp(sub: string, ticket: string, code: string): Promise<string[] | undefined> {
    const payload = await this.protector.openJwt("second-factor", ticket.slice(0, 2048), this.now());
    if (payload?.t !== "totp" || payload.sub !== sub || typeof payload.s !== "string") return undefined;
    if (await this.hasSecondFactor(sub)) return undefined;
    const step = await this.matchingStep(payload.s, code, 0);
    if (step === undefined) return undefined;
    if (!(await this.useOnce(`totp-ticket:${ticket}`))) return undefined;
    const id = totpId(sub);
    try {
      // The confirming code's step counts as used. The id is one per account: a racing enrolment loses here.
      await this.accounts.addCredential({ id, subject: sub, type: "totp", secret: await this.protector.protect("totp-secret", sealedTotp(id, sub, payload.s)), counter: step, createdAt: this.now(), lastUsedAt: this.now() });
    } catch {
      return undefined;
    }
    return this.newRecoveryCodes(sub);
  }

  /** Removes TOTP and the recovery codes. */
  async removeTotp(sub: string): Promise<void> {
    await this.accounts.removeCredentials(sub, "totp");
    await this.accounts.removeCredentials(sub, "recovery_code");
  }

  /**
   * Checks a current TOTP code only (±1 step, each step once), never a recovery code: the check in front of
   * turning TOTP off and of new recovery codes, so a recovery code cannot stand in for the app there.
   */
  async verifyTotp(sub: string, code: string): Promise<boolean> {
    const typed = code.replace(/[\s-]/g, "").slice(0, 64);
    if (!/^\d{6}$/.test(typed)) return false;
    const [credential] = await this.accounts.listCredentials(sub, "totp");
    if (!credential) return false;
    const secret = openedTotp(credential.id, sub, await this.protector.unprotect("totp-secret", credential.secret));
    if (!secret) return false;
    const step = await this.matchingStep(secret, typed, credential.counter);
    // advanceCounter is the atomic single use: of two racing uses of one code, one wins.
    return step !== undefined && (await this.accounts.advanceCounter(credential.id, step, this.now()));
  }

  /**
   * Checks a code typed at sign-in: a current TOTP code (±1 step, each step once: RFC 6238 §5.2) or an
   * unused recovery code (then gone). Returns which it was, or undefined.
   */
  async verifyCode(sub: string, code: string): Promise<"totp" | "recovery_code" | undefined> {
    const typed = code.replace(/[\s-]/g, "").toLowerCase().slice(0, 64);
    if (/^\d{6}$/.test(typed)) return (await this.verifyTotp(sub, typed)) ? "totp" : undefined;
    if (typed.length !== 10 || [...typed].some((ch) => !CODE_ALPHABET.includes(ch))) return undefined;
    return (await this.accounts.removeCredential(sub, this.recoveryId(sub, typed))) ? "recovery_code" : undefined;
  }

  /** The time step the code belongs to (now ±1 step), when it is later than `afterStep`. */
  private async matchingStep(secret: string, code: string, afterStep: number): Promise<number | undefined> {
    const token = code.replace(/\s/g, "");
    if (!/^\d{6}$/.test(token)) return undefined;
    const { verify } = await otp();
    try {
      const result = await verify({ secret, token, epoch: this.now(), period: TOTP_PERIOD, epochTolerance: TOTP_PERIOD, ...(afterStep > 0 ? { afterTimeStep: afterStep } : {}) });
      return result.valid && "timeStep" in result && typeof result.timeStep === "number" ? result.timeStep : undefined;
    } catch {
      return undefined;
    }
  }

  // --- Recovery codes -----------------------------------------------------------------------------------

  /** Replaces the user's recovery codes with {@link RECOVERY_CODE_COUNT} new ones, returned once (stored hashed). */
  async newRecoveryCodes(sub: string): Promise<string[]> {
    await this.accounts.removeCredentials(sub, "recovery_code");
    const codes: string[] = [];
    const now = this.now();
    for (let i = 0; i < RECOVERY_CODE_COUNT; i++) {
      const bytes = randomBytes(10);
      const code = [...bytes].map((b) => CODE_ALPHABET[b % 32]).join("");
      const id = this.recoveryId(sub, code);
      await this.accounts.addCredential({ id, subject: sub, type: "recovery_code", secret: id, counter: 0, createdAt: now });
      codes.push(`${code.slice(0, 5)}-${code.slice(5)}`);
    }
    return codes;
  }

  /** A recovery code's id: keyed hash (the data key is a pepper, so a leaked table cannot be searched offline). */
  private recoveryId(sub: string, code: string): string {
    return `rc:${createHmac("sha256", this.protector.subkey("recovery-code")).update(sub).update("\0").update(code).digest("base64url")}`;
  }

  // --- Passkeys -----------------------------------------------------------------------------------------

  /** Options for navigator.credentials.create: a discoverable credential with user verification. */
  async passkeyRegistration(user: { sub: string; username: string; displayName?: string }): Promise<WebAuthnCeremony<PublicKeyCredentialCreationOptionsJSON>> {
    const existing = await this.accounts.listCredentials(user.sub, "passkey");
    const { generateRegistrationOptions } = await webauthn();
    const options = await generateRegistrationOptions({
      rpName: this.displayName,
      rpID: this.rpId,
      userName: user.username,
      userDisplayName: user.displayName ?? user.username,
      // WebAuthn's user handle is at most 64 bytes and should not be personal data: a keyed hash of the sub.
      userID: createHmac("sha256", this.protector.subkey("second-factor")).update(user.sub).digest(),
      attestationType: "none",
      excludeCredentials: existing.map((c) => ({ id: c.id, ...(c.transports ? { transports: c.transports } : {}) })),
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
      timeout: CEREMONY_LIFETIME * 1000,
    });
    const ticket = await this.protector.sealJwt("second-factor", { t: "webauthn.create", sub: user.sub, c: options.challenge }, this.now() + CEREMONY_LIFETIME);
    return { options, ticket };
  }

  /** Verifies and stores a new passkey of `sub` (`response`: the browser's RegistrationResponseJSON, checked here). */
  async registerPasskey(sub: string, ticket: string, response: unknown, name: string): Promise<{ ok: true; passkey: PasskeyInfo } | { ok: false; reason: PasskeyFailure }> {
    const challenge = await this.openCeremony(ticket, "webauthn.create", sub);
    if (!challenge) return { ok: false, reason: "expired" };
    const { verifyRegistrationResponse } = await webauthn();
    let verified;
    try {
      verified = await verifyRegistrationResponse({ response: response as RegistrationResponseJSON, expectedChallenge: challenge, expectedOrigin: this.origin, expectedRPID: this.rpId, requireUserVerification: true });
    } catch {
      return { ok: false, reason: "not_verified" };
    }
    if (!verified.verified) return { ok: false, reason: "not_verified" };
    if (!(await this.useChallenge(challenge))) return { ok: false, reason: "replayed" };
    const info = verified.registrationInfo;
    const credential: AccountCredential = {
      id: info.credential.id,
      subject: sub,
      type: "passkey",
      name: name.trim().slice(0, 100) || "Passkey",
      secret: Buffer.from(info.credential.publicKey).toString("base64url"),
      counter: info.credential.counter,
      transports: ((response as RegistrationResponseJSON).response.transports ?? []).filter((t) => typeof t === "string" && t.length <= 32).slice(0, 8),
      data: JSON.stringify({ attachment: (response as RegistrationResponseJSON).authenticatorAttachment ?? null, deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp, aaguid: info.aaguid }),
      createdAt: this.now(),
    };
    try {
      await this.accounts.addCredential(credential);
    } catch {
      return { ok: false, reason: "duplicate" };
    }
    return { ok: true, passkey: passkeyInfo(credential) };
  }

  /** Removes one passkey of the user; false when it is not theirs. */
  async removePasskey(sub: string, id: string): Promise<boolean> {
    const credential = await this.accounts.getCredential(id.slice(0, 1024));
    if (!credential || credential.subject !== sub || credential.type !== "passkey") return false;
    return this.accounts.removeCredential(sub, credential.id);
  }

  /** Options for navigator.credentials.get: discoverable (no allow list), user verification required. */
  async passkeySignIn(): Promise<WebAuthnCeremony<PublicKeyCredentialRequestOptionsJSON>> {
    const { generateAuthenticationOptions } = await webauthn();
    const options = await generateAuthenticationOptions({ rpID: this.rpId, userVerification: "required", timeout: CEREMONY_LIFETIME * 1000 });
    const ticket = await this.protector.sealJwt("second-factor", { t: "webauthn.get", c: options.challenge }, this.now() + CEREMONY_LIFETIME);
    return { options, ticket };
  }

  /**
   * Verifies a discoverable passkey assertion: signature, origin, rpID, user verification, one use of the
   * challenge, and the signature counter (a counter that does not move forward means a cloned key,
   * WebAuthn L2 §6.1.1; authenticators that always say 0 do not count). Returns the account and the `amr`.
   */
  async verifyPasskeySignIn(ticket: string, response: unknown): Promise<{ ok: true; sub: string; amr: string[] } | { ok: false; reason: PasskeyFailure }> {
    const challenge = await this.openCeremony(ticket, "webauthn.get");
    if (!challenge) return { ok: false, reason: "expired" };
    const assertion = response as AuthenticationResponseJSON | undefined;
    const id = typeof assertion?.id === "string" ? assertion.id.slice(0, 1024) : "";
    const credential = id ? await this.accounts.getCredential(id) : undefined;
    if (!credential || credential.type !== "passkey") return { ok: false, reason: "unknown_credential" };
    const { verifyAuthenticationResponse } = await webauthn();
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: assertion!,
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        requireUserVerification: true,
        credential: { id: credential.id, publicKey: new Uint8Array(Buffer.from(credential.secret, "base64url")), counter: credential.counter, ...(credential.transports ? { transports: credential.transports } : {}) },
      });
    } catch {
      return { ok: false, reason: "not_verified" };
    }
    if (!verified.verified) return { ok: false, reason: "not_verified" };
    if (!(await this.useChallenge(challenge))) return { ok: false, reason: "replayed" };
    const { newCounter } = verified.authenticationInfo;
    const now = this.now();
    if (newCounter > 0 || credential.counter > 0) {
      if (!(await this.accounts.advanceCounter(credential.id, newCounter, now))) return { ok: false, reason: "counter" };
    } else {
      await this.accounts.updateCredential(credential.subject, credential.id, { lastUsedAt: now });
    }
    return { ok: true, sub: credential.subject, amr: [passkeyMethod(credential)] };
  }

  private async openCeremony(ticket: string, type: string, sub?: string): Promise<string | undefined> {
    if (typeof ticket !== "string") return undefined;
    const payload = await this.protector.openJwt("second-factor", ticket.slice(0, 4096), this.now());
    if (payload?.t !== type || typeof payload.c !== "string" || (sub !== undefined && payload.sub !== sub)) return undefined;
    return payload.c;
  }

  /** One use per challenge, across processes (the grant store's atomic insert). */
  private async useChallenge(challenge: string): Promise<boolean> {
    return this.useOnce(`webauthn:${challenge}`);
  }

  /** True the first time `value` (a challenge, a ticket) is used within a ceremony's lifetime, across processes. */
  private async useOnce(value: string): Promise<boolean> {
    const now = this.now();
    return this.grants.putIfAbsent({ key: sha256Base64url(value), kind: "replay", clientId: "tessera:webauthn", data: "{}", createdAt: now, expiresAt: now + CEREMONY_LIFETIME + 60 });
  }
}

function totpId(sub: string): string {
  return `totp:${sub}`;
}

/**
 * The plaintext a TOTP secret is encrypted as: bound to its credential id and account (the data protector's
 * AES-GCM takes no additional data, so the binding is inside the ciphertext), so a stored secret copied to
 * another account's row does not open there.
 */
function sealedTotp(id: string, sub: string, secret: string): string {
  return JSON.stringify({ id, sub, s: secret });
}

/** The secret of {@link sealedTotp}'s plaintext, when it was sealed for this credential and account. */
function openedTotp(id: string, sub: string, plaintext: string | undefined): string | undefined {
  if (plaintext === undefined) return undefined;
  try {
    const value = JSON.parse(plaintext) as { id?: unknown; sub?: unknown; s?: unknown };
    return value.id === id && value.sub === sub && typeof value.s === "string" ? value.s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * RFC 8176 method of a passkey: always `swk`. Registration asks for no attestation (`attestationType:
 * "none"`), so nothing shows that the key is bound to hardware; the client-posted `authenticatorAttachment`
 * is the browser's claim, not proof, and synced passkeys leave the device anyway. `hwk` would need verified
 * attestation. (The stored `data` keeps the attachment and backup state for the account page.)
 */
export function passkeyMethod(_credential: Pick<AccountCredential, "data">): "hwk" | "swk" {
  return "swk";
}

function passkeyInfo(credential: AccountCredential): PasskeyInfo {
  return { id: credential.id, name: credential.name ?? "Passkey", createdAt: credential.createdAt, ...(credential.lastUsedAt !== undefined ? { lastUsedAt: credential.lastUsedAt } : {}), method: passkeyMethod(credential) };
}
