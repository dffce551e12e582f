import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Issues and checks the API's own DPoP nonces (RFC 9449 §9): stateless, HMAC-signed, time-limited. */
export class NonceIssuer {
  private readonly key: Uint8Array;

  constructor(
    private readonly lifetimeSeconds: number,
    private readonly clock: () => number,
    key?: Uint8Array,
  ) {
    this.key = key ?? randomBytes(32);
  }

  issue(): string {
    const issuedAt = Math.floor(this.clock() / 1000).toString(36);
    return `${issuedAt}.${this.mac(issuedAt)}`;
  }

  valid(nonce: string | undefined): boolean {
    if (!nonce) return false;
    const [issuedAt, mac] = nonce.split(".");
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
