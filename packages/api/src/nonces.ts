import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Shortest accepted `nonceSecret`, in bytes (UTF-8 for a string). */
const MIN_SECRET_BYTES = 32;

/**
 * Issues and checks the API's own DPoP nonces (RFC 9449 §9): stateless, HMAC-signed, time-limited. With a
 * shared secret (32 random bytes), every process of the API issues and accepts the same nonces without
 * sharing state. Nonces do not stop replay: processes sharing a secret also need a shared replay cache.
 */
export class NonceIssuer {
  private readonly key: Uint8Array;

  constructor(
    private readonly lifetimeSeconds: number,
    private readonly clock: () => number,
    secret?: string | Uint8Array,
  ) {
    if (secret === undefined) {
      this.key = randomBytes(32);
      return;
    }
    const bytes = typeof secret === "string" ? Buffer.from(secret, "utf8") : secret;
    if (bytes.length < MIN_SECRET_BYTES) throw new TypeError(`dpop.nonceSecret must be at least ${MIN_SECRET_BYTES} bytes`);
    // A key of its own, so a secret also used elsewhere never signs anything but these nonces.
    this.key = createHmac("sha256", bytes).update("tessera-api dpop nonce").digest();
  }

  issue(): string {
    const issuedAt = Math.floor(this.clock() / 1000).toString(36);
    return `${issuedAt}.${this.mac(issuedAt)}`;
  }

  valid(nonce: string | undefined): boolean {
    if (!nonce) return false;
    const parts = nonce.split(".");
    if (parts.length !== 2) return false; // exactly what issue() makes: nothing before, between or after
    const [issuedAt, mac] = parts as [string, string];
    if (!issuedAt || !mac) return false;
    const expected = Buffer.from(this.mac(issuedAt));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return false;
    const age = Math.floor(this.clock() / 1000) - parseInt(issuedAt, 36);
    return age >= -5 && age <= this.lifetimeSeconds;
  }

  private mac(value: string): string {
    return createHmac("sha256", this.key).update(value).digest("base64url").slice(0, 22);
  }
}
