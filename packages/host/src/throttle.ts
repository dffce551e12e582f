import { addressBucket, FailureThrottle, type GrantStore, type ThrottleReservation } from "@tessera/server";

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
 * so refusals reveal nothing) and by the client address (IPv6 by its /64).
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
    // IPv6 by /64: rotating addresses within one allocation buys no extra attempts.
    if (address) subjects.push({ subject: `address:${addressBucket(address)}`, limit: { window: this.policy.window, max: this.policy.perAddress } });
    return subjects;
  }

  /**
   * Takes a sign-in attempt before its password is checked: it holds a slot of each counter it counts on
   * (in the store, so parallel attempts in any process see each other and at most the limit get checked).
   * Undefined, with nothing recorded, when a counter has used up its failures: refuse the attempt.
   */
  async begin(account: string, address: string | undefined, device?: string): Promise<LoginAttempt | undefined> {
    const held: { reservation: ThrottleReservation; max: number }[] = [];
    for (const { subject, limit } of this.subjects(account, address, device)) {
      const reservation = await this.counter.reserve(subject, limit);
      if (!reservation) {
        for (const taken of held) await this.counter.release(taken.reservation);
        return undefined;
      }
      held.push({ reservation, max: limit.max });
    }
    return { held };
  }

  /** The attempt's password was wrong: its slots stay held. Returns the progressive delay (ms) to apply before answering. */
  async failed(attempt: LoginAttempt): Promise<number> {
    let most = 0;
    for (const { reservation, max } of attempt.held) {
      await this.counter.fail(reservation);
      most = Math.max(most, await this.counter.failures(reservation.subject, max + 1));
    }
    // 0, 0, 250, 500, 1000, 2000 ms …: a person barely notices, a guessing script slows to a crawl.
    return most < 3 ? 0 : Math.min(2000, 250 * 2 ** (most - 3));
  }

  /**
   * The attempt signed in: it clears the failures it was counted under, the account's for an anonymous
   * one, the device's for one with a device cookie (an attacker's anonymous failures stay). The address
   * keeps its count (only this attempt's slot is freed).
   */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    const [first, ...rest] = attempt.held;
    if (first) await this.counter.clear(first.reservation.subject);
    for (const { reservation } of rest) await this.counter.release(reservation);
  }
}

/** A sign-in attempt taken by {@link LoginThrottle.begin}. */
export interface LoginAttempt {
  readonly held: readonly { reservation: ThrottleReservation; max: number }[];
}
