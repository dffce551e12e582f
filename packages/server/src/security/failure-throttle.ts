import { randomBytes } from "node:crypto";
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
 * Failure counters kept in the store (one row per failure, inserted atomically), so every process
 * sees every other's failures. Subjects are hashed before they are stored.
 *
 * To keep the success path free of store reads, a process only reads a subject's count once it has
 * itself seen a failure of that subject within the window; a subject attacked through several processes
 * thus gets at most one extra attempt per process before every process refuses it.
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

  /** Failures of the subject within the window, read from the store. */
  async failures(subject: string): Promise<number> {
    // A real count, not a page of rows: a limit above any page size must still be reached.
    return this.grants.count({ subject: FailureThrottle.key(subject), kind: "throttle" }, this.now());
  }

  /** True when the subject has used up its failures. `eager` reads the store even if this process saw no failure. */
  async blocked(subject: string, limit: FailureLimit, eager = false): Promise<boolean> {
    if (!eager) {
      const until = this.seen.get(subject);
      if (until === undefined) return false;
      if (until <= this.now()) {
        this.seen.delete(subject);
        return false;
      }
    }
    return (await this.failures(subject)) >= limit.max;
  }

  /** Records one failure; returns the subject's failures within the window, this one included. */
  async record(subject: string, limit: FailureLimit): Promise<number> {
    const now = this.now();
    const key = FailureThrottle.key(subject);
    await this.grants.putIfAbsent({ key: sha256Base64url(`${key}:${randomBytes(16).toString("hex")}`), kind: "throttle", clientId: "", subject: key, data: "{}", createdAt: now, expiresAt: now + limit.window });
    this.remember(subject, now + limit.window);
    return this.failures(subject);
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
