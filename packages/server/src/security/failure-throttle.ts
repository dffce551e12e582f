import { randomBytes, randomInt } from "node:crypto";
import { sha256Base64url } from "@tessera/protocol";
import type { GrantStore } from "../stores/interfaces.ts";

/** Counting window and limit of one kind of failure. */
export interface FailureLimit {
  /** Seconds a failure is remembered. */
  window: number;
  /** Failures within the window after which the subject is refused. */
  max: number;
}

const MAX_LOCAL_SUBJECTS = 10_000;

/**
 * One attempt taken under a limit by {@link FailureThrottle.reserve}: it holds one of the subject's
 * `max` slots, which {@link FailureThrottle.release} frees when the attempt turns out not to be a failure.
 */
export interface ThrottleReservation {
  readonly subject: string;
  /** The stored row of the slot. */
  readonly key: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Marks a slot whose attempt failed (a pending one has the empty client id). */
const FAILED = "failed";

/**
 * Failure counters kept in the store (one row per failure, inserted atomically), so every process
 * sees every other's failures. Subjects are hashed before they are stored, and counts stop at the limit.
 *
 * {@link reserve} takes an attempt before it is checked: it claims one of the subject's `max` slots (rows
 * with fixed keys, claimed with the store's atomic putIfAbsent), so however many attempts run in
 * parallel, in this process or another on the same store, at most `max` are checked; a failed attempt
 * keeps its slot for the window, a successful one releases it. Callers may skip the
 * reservation for subjects this process has not seen failing ({@link suspect}), trading strictness for
 * a store-free fast path.
 */
export class FailureThrottle {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly grants: GrantStore,
    /** Unix seconds. */
    private readonly now: () => number,
  ) {}

  private static key(subject: string): string {
    return `throttle:${sha256Base64url(subject)}`;
  }

  /** Failures of the subject within the window, read from the store (counting no further than `max`). */
  async failures(subject: string, max?: number): Promise<number> {
    // A real count, not a page of rows: a limit above any page size must still be reached.
    return this.grants.count({ subject: FailureThrottle.key(subject), kind: "throttle" }, this.now(), max);
  }

  /**
   * Takes one attempt of the subject before it is checked, in one of its `max` slots; undefined, with
   * nothing recorded, when every slot is held (failures within the window and attempts in flight), so
   * refused attempts never add rows. Call {@link fail} or {@link release} once the attempt is decided.
   */
  async reserve(subject: string, limit: FailureLimit): Promise<ThrottleReservation | undefined> {
    const max = Math.floor(limit.max);
    const now = this.now();
    const refused = () => {
      this.remember(subject, now + limit.window);
      return undefined;
    };
    if (max < 1) return undefined;
    // Holding a slot is what admits an attempt; counting first only spares a locked subject the writes,
    // so it is done for subjects this process saw failing (a healthy one costs a write and a delete).
    if (this.recentlyFailed(subject, now) && (await this.failures(subject, max)) >= max) return refused();
    const hashed = FailureThrottle.key(subject);
    // A random first slot, so parallel attempts rarely race for the same one.
    const first = randomInt(max);
    for (let i = 0; i < max; i++) {
      const key = sha256Base64url(`${hashed}:slot:${(first + i) % max}`);
      const slot = { key, kind: "throttle" as const, clientId: "", subject: hashed, data: "{}", createdAt: now, expiresAt: now + limit.window };
      if (await this.grants.putIfAbsent(slot)) return { subject, key, createdAt: slot.createdAt, expiresAt: slot.expiresAt };
      if ((await this.failures(subject, max)) >= max) break;
    }
    // Every slot is held. Only failures make a subject suspect here, never attempts merely in flight.
    return (await this.failedAttempts(subject, max)) >= max ? refused() : undefined;
  }

  /** The reserved attempt failed: its slot stays held for the window, marked as a failure. */
  async fail(reservation: ThrottleReservation): Promise<void> {
    this.remember(reservation.subject, reservation.expiresAt);
    const hashed = FailureThrottle.key(reservation.subject);
    await this.grants.put({ key: reservation.key, kind: "throttle", clientId: FAILED, subject: hashed, data: "{}", createdAt: reservation.createdAt, expiresAt: reservation.expiresAt });
  }

  /** The reserved attempt was no failure (it succeeded, or was refused for another reason): its slot is freed. */
  async release(reservation: ThrottleReservation): Promise<void> {
    await this.grants.remove(reservation.key);
  }

  /** Failed attempts of the subject within the window that {@link fail} marked (attempts in flight excluded), counted up to `max`. */
  async failedAttempts(subject: string, max: number): Promise<number> {
    return this.grants.count({ subject: FailureThrottle.key(subject), kind: "throttle", clientId: FAILED }, this.now(), max);
  }

  private readonly gates = new Map<string, { active: number; waiting: (() => void)[] }>();

  /**
   * Waits until fewer than `permits` checks of the subject run in this process, then admits one; the
   * returned function ends it (once). Later arrivals queue rather than fail, so a busy client that failed
   * once is slowed, never refused; undefined (refuse) only when `maxWaiting` are already queued. Used for
   * suspect subjects with `permits` = the failures they have left, so parallel guesses cannot outrun the
   * count: each one queued re-reads it when admitted.
   */
  async gate(subject: string, permits: number, maxWaiting = 1000): Promise<(() => void) | undefined> {
    let gate = this.gates.get(subject);
    if (!gate) {
      gate = { active: 0, waiting: [] };
      this.gates.set(subject, gate);
    }
    const current = gate;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const next = current.waiting.shift();
      // The permit passes straight to the next in line, so a new arrival cannot overtake it.
      if (next) return next();
      current.active--;
      if (current.active === 0) this.gates.delete(subject);
    };
    if (current.active < Math.max(1, permits)) {
      current.active++;
      return end;
    }
    if (current.waiting.length >= maxWaiting) return undefined;
    return new Promise((resolve) => current.waiting.push(() => resolve(end)));
  }

  /**
   * Records one failure of the subject without a slot: for large budgets (a total over every address)
   * where a few parallel attempts past the limit do not matter but probing `max` slots would. Check it
   * with {@link failedAttempts}.
   */
  async recordFailure(subject: string, window: number): Promise<void> {
    const now = this.now();
    this.remember(subject, now + window);
    const hashed = FailureThrottle.key(subject);
    await this.grants.put({ key: sha256Base64url(`${hashed}:failure:${randomBytes(16).toString("base64url")}`), kind: "throttle", clientId: FAILED, subject: hashed, data: "{}", createdAt: now, expiresAt: now + window });
  }

  /** True when this process saw a failure (or refusal) of the subject within its window. */
  suspect(subject: string): boolean {
    return this.recentlyFailed(subject, this.now());
  }

  /** This process saw a failure (or refusal) of the subject within its window. */
  private recentlyFailed(subject: string, now: number): boolean {
    const until = this.seen.get(subject);
    if (until === undefined) return false;
    if (until > now) return true;
    this.seen.delete(subject);
    return false;
  }

  /** Forgets the subject's failures (a success that should reset the count). */
  async clear(subject: string): Promise<void> {
    this.seen.delete(subject);
    await this.grants.removeAll({ subject: FailureThrottle.key(subject), kind: "throttle" });
  }

  private remember(subject: string, until: number): void {
    this.seen.delete(subject);
    this.seen.set(subject, until);
    // Oldest first out: a forgotten subject costs at most one more unchecked attempt here.
    while (this.seen.size > MAX_LOCAL_SUBJECTS) this.seen.delete(this.seen.keys().next().value!);
  }
}
