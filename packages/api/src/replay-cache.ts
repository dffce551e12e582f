/**
 * What {@link ReplayCache.add} found: `true` the value is new and now remembered, `false` it was already
 * seen (a replay), `"full"` there is no room to remember it, so the proof is refused (fail closed).
 */
export type ReplayCacheResult = boolean | "full";

/**
 * Remembers values (DPoP `jti`s) until they expire. `add` remembers a value only if it is absent (like
 * Redis `SET key 1 NX PXAT expiresAt`): several API processes, especially ones sharing `dpop.nonceSecret`,
 * need one shared cache, or a proof used at one process can be replayed at another within its lifetime.
 */
export interface ReplayCache {
  add(value: string, expiresAt: number): Promise<ReplayCacheResult> | ReplayCacheResult;
}

/**
 * An in-process replay cache of at most `maxEntries` values. Expired values make room; live ones are never
 * dropped: when it is full of them, new proofs are refused ("full") until some expire. Size it for the
 * peak number of proofs in `proofLifetime` + 10 s.
 */
export function createMemoryReplayCache(clock: () => number = Date.now, maxEntries = 100_000): ReplayCache {
  const seen = new Map<string, number>();
  // No entry expires before this (a lower bound), so a full cache is swept only when a sweep can free room.
  let soonestExpiry = Infinity;
  const sweep = (now: number) => {
    soonestExpiry = Infinity;
    for (const [key, expiry] of seen) {
      if (expiry <= now) seen.delete(key);
      else soonestExpiry = Math.min(soonestExpiry, expiry);
    }
  };
  return {
    add(value, expiresAt) {
      const now = clock();
      const existing = seen.get(value);
      if (existing !== undefined && existing > now) return false;
      if (existing !== undefined) seen.delete(value);
      if (seen.size >= maxEntries && soonestExpiry <= now) sweep(now);
      if (seen.size >= maxEntries) return "full";
      seen.set(value, expiresAt);
      soonestExpiry = Math.min(soonestExpiry, expiresAt);
      return true;
    },
  };
}
