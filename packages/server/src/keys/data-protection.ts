import { hkdfSync } from "node:crypto";
import { CompactEncrypt, compactDecrypt, EncryptJWT, jwtDecrypt, type JWTPayload } from "jose";

const OPENED_CACHE_SIZE = 2048;

/** Purposes a subkey of the data key is derived for; each purpose gets an independent key. */
export type ProtectionPurpose = "signing-keys" | "session-cookie" | "session-ticket" | "csrf" | "dpop-nonce" | "refresh-successor" | "device-cookie" | "session-migration" | "session-rekey" | "logout-request" | "device-lookup" | "totp-secret" | "second-factor" | "recovery-code" | "federated-session" | "federation-signout" | "external-provider" | "federation-pending";

/**
 * Encrypts and authenticates data at rest and in cookies (JWE `dir` + A256GCM) with keys derived by HKDF
 * from the one data key, so no two purposes share a key.
 */
export class DataProtector {
  private readonly keys = new Map<ProtectionPurpose, Uint8Array>();

  constructor(dataKey: Uint8Array | string) {
    const key = typeof dataKey === "string" ? Buffer.from(dataKey, "base64url") : dataKey;
    if (key.length !== 32) throw new TypeError("the data key must be 32 bytes (base64url encoded when a string)");
    for (const purpose of ["signing-keys", "session-cookie", "session-ticket", "csrf", "dpop-nonce", "refresh-successor", "device-cookie", "session-migration", "session-rekey", "logout-request", "device-lookup", "totp-secret", "second-factor", "recovery-code", "federated-session", "federation-signout", "external-provider", "federation-pending"] as const) {
      this.keys.set(purpose, new Uint8Array(hkdfSync("sha256", key, "tessera", `tessera/${purpose}`, 32)));
    }
  }

  /** The derived key for a purpose (for HMAC uses such as CSRF tokens). */
  subkey(purpose: ProtectionPurpose): Uint8Array {
    return this.keys.get(purpose)!;
  }

  private readonly cryptoKeys = new Map<ProtectionPurpose, Promise<CryptoKey>>();
  /** Recently opened sealed JWTs (by exact value): a cookie sent again is not decrypted again. */
  private readonly opened = new Map<string, JWTPayload>();

  /** The purpose's key imported once for AES-GCM (importing per call costs more than the decryption). */
  private cryptoKey(purpose: ProtectionPurpose): Promise<CryptoKey> {
    let key = this.cryptoKeys.get(purpose);
    if (!key) {
      key = crypto.subtle.importKey("raw", this.subkey(purpose) as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt", "decrypt"]);
      this.cryptoKeys.set(purpose, key);
    }
    return key;
  }

  async protect(purpose: ProtectionPurpose, plaintext: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: "dir", enc: "A256GCM", cty: purpose })
      .encrypt(await this.cryptoKey(purpose));
  }

  /** The plaintext, or undefined when the value was forged, corrupted or made for another purpose. */
  async unprotect(purpose: ProtectionPurpose, value: string): Promise<string | undefined> {
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(value, await this.cryptoKey(purpose), {
        keyManagementAlgorithms: ["dir"],
        contentEncryptionAlgorithms: ["A256GCM"],
      });
      if (protectedHeader.cty !== purpose) return undefined;
      return new TextDecoder().decode(plaintext);
    } catch {
      return undefined;
    }
  }

  /** An encrypted JWT with `iat`/`exp` (seconds), for cookies. */
  async sealJwt(purpose: ProtectionPurpose, payload: JWTPayload, expiresAt: number): Promise<string> {
    return new EncryptJWT(payload)
      .setProtectedHeader({ alg: "dir", enc: "A256GCM", cty: purpose })
      .setExpirationTime(expiresAt)
      .encrypt(await this.cryptoKey(purpose));
  }

  /** The payload of a sealed JWT, or undefined when forged, expired (against `nowSeconds`) or foreign. */
  async openJwt(purpose: ProtectionPurpose, value: string, nowSeconds: number): Promise<JWTPayload | undefined> {
    const cacheKey = `${purpose}:${value}`;
    const cached = this.opened.get(cacheKey);
    if (cached) {
      // Same bytes, same plaintext: only the expiry can have changed its answer.
      if (typeof cached.exp === "number" && nowSeconds < cached.exp) return structuredClone(cached);
      this.opened.delete(cacheKey);
    }
    try {
      const { payload, protectedHeader } = await jwtDecrypt(value, await this.cryptoKey(purpose), {
        keyManagementAlgorithms: ["dir"],
        contentEncryptionAlgorithms: ["A256GCM"],
        currentDate: new Date(nowSeconds * 1000),
        clockTolerance: 0,
      });
      if (protectedHeader.cty !== purpose) return undefined;
      if (typeof payload.exp === "number") {
        if (this.opened.size >= OPENED_CACHE_SIZE) this.opened.delete(this.opened.keys().next().value!);
        this.opened.set(cacheKey, structuredClone(payload));
      }
      return payload;
    } catch {
      return undefined;
    }
  }
}
