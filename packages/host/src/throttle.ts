import { randomBytes } from "node:crypto";
import { sha256Base64url } from "@tessera/protocol";
import type { GrantStore } from "@tessera/server";

/** Limits on failed sign-ins; counted in the store, so every process sees the same counts. */
export interface ThrottlePolicy {
  /** Seconds failures are remembered (default 900). */
  window: number;
  /** Failures per account name within the window before sign-in is refused (default 5). */
  perAccount: number;
  /** Failures per client address within the window before sign-in is refused (default 20). */
  perAddress: number;
}

export const DEFAULT_THROTTLE: ThrottlePolicy = { window: 900, perAccount: 5, perAddress: 20 };
const MAX_COUNTED = 100;

/**
 * Failed sign-in throttling. Counters are keyed by the submitted account name (whether or not it exists,
 * so refusals reveal nothing) and by the client address; each failure is one row, inserted atomically.
 */
export class LoginThrottle {
  constructor(
    private readonly grants: GrantStore,
    private readonly policy: ThrottlePolicy,
    private readonly now: () => number,
  ) {}

  private subjects(account: string, address: string | undefined): { key: string; limit: number }[] {
    const subjects = [{ key: `acct:${sha256Base64url(account.toLowerCase())}`, limit: this.policy.perAccount }];
    if (address) subjects.push({ key: `addr:${sha256Base64url(address)}`, limit: this.policy.perAddress });
    return subjects;
  }

  private async failures(subject: string): Promise<number> {
    const now = this.now();
    const rows = await this.grants.findAll({ subject, kind: "throttle" }, MAX_COUNTED);
    return rows.filter((row) => row.expiresAt > now).length;
  }

  /** True when the account or the address has used up its failures. */
  async blocked(account: string, address: string | undefined): Promise<boolean> {
    for (const { key, limit } of this.subjects(account, address)) if ((await this.failures(key)) >= limit) return true;
    return false;
  }

  /** Records a failure; returns the progressive delay (ms) to apply before answering. */
  async recordFailure(account: string, address: string | undefined): Promise<number> {
    const now = this.now();
    let most = 0;
    for (const { key } of this.subjects(account, address)) {
      await this.grants.putIfAbsent({ key: sha256Base64url(`${key}:${randomBytes(16).toString("hex")}`), kind: "throttle", clientId: "", subject: key, data: "{}", createdAt: now, expiresAt: now + this.policy.window });
      most = Math.max(most, await this.failures(key));
    }
    // 0, 0, 250, 500, 1000, 2000 ms …: a person barely notices, a guessing script slows to a crawl.
    return most < 3 ? 0 : Math.min(2000, 250 * 2 ** (most - 3));
  }

  /** A successful sign-in clears the account's failures (the address keeps its count). */
  async recordSuccess(account: string): Promise<void> {
    await this.grants.removeAll({ subject: this.subjects(account, undefined)[0]!.key, kind: "throttle" });
  }
}
