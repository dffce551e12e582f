import { FailureThrottle, type GrantStore } from "@tessera/server";

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

/**
 * Failed sign-in throttling. Counters are keyed by the submitted account name (whether or not it exists,
 * so refusals reveal nothing) and by the client address.
 */
export class LoginThrottle {
  private readonly counter: FailureThrottle;

  constructor(
    grants: GrantStore,
    private readonly policy: ThrottlePolicy,
    now: () => number,
  ) {
    this.counter = new FailureThrottle(grants, now);
  }

  /**
   * Anonymous attempts count per account name and per address. Attempts from a browser with a valid device
   * cookie for the account (`device`, its id) count on that device only, so anonymous lockout of the
   * account does not reach its owner, and a stolen device cookie still gets only `perAccount` failures.
   */
  private subjects(account: string, address: string | undefined, device?: string): { subject: string; limit: { window: number; max: number } }[] {
    if (device !== undefined) return [{ subject: `device:${device}`, limit: { window: this.policy.window, max: this.policy.perAccount } }];
    const subjects = [{ subject: `account:${account.toLowerCase()}`, limit: { window: this.policy.window, max: this.policy.perAccount } }];
    if (address) subjects.push({ subject: `address:${address}`, limit: { window: this.policy.window, max: this.policy.perAddress } });
    return subjects;
  }

  /** True when the account (or the device) or the address has used up its failures (always read from the store). */
  async blocked(account: string, address: string | undefined, device?: string): Promise<boolean> {
    for (const { subject, limit } of this.subjects(account, address, device)) if (await this.counter.blocked(subject, limit, true)) return true;
    return false;
  }

  /** Records a failure; returns the progressive delay (ms) to apply before answering. */
  async recordFailure(account: string, address: string | undefined, device?: string): Promise<number> {
    let most = 0;
    for (const { subject, limit } of this.subjects(account, address, device)) most = Math.max(most, await this.counter.record(subject, limit));
    // 0, 0, 250, 500, 1000, 2000 ms …: a person barely notices, a guessing script slows to a crawl.
    return most < 3 ? 0 : Math.min(2000, 250 * 2 ** (most - 3));
  }

  /**
   * A successful sign-in clears the failures it was counted under: the account's for an anonymous one, the
   * device's for one with a device cookie (an attacker's anonymous failures stay). The address keeps its count.
   */
  async recordSuccess(account: string, device?: string): Promise<void> {
    await this.counter.clear(this.subjects(account, undefined, device)[0]!.subject);
  }
}
