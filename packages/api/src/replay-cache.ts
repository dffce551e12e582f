/** Remembers values (DPoP `jti`s) until they expire; `add` is false for a value already seen. */
export interface ReplayCache {
  add(value: string, expiresAt: number): Promise<boolean> | boolean;
}

/** An in-process replay cache; several API processes need a shared one (e.g. Redis SET NX EX). */
export function createMemoryReplayCache(clock: () => number = Date.now, maxEntries = 100_000): ReplayCache {
  const seen = new Map<string, number>();
  return {
    add(value, expiresAt) {
      const now = clock();
      if (seen.size >= maxEntries) for (const [key, expiry] of seen) if (expiry <= now) seen.delete(key);
      const existing = seen.get(value);
      if (existing !== undefined && existing > now) return false;
      if (seen.size >= maxEntries) seen.delete(seen.keys().next().value!);
      seen.set(value, expiresAt);
      return true;
    },
  };
}
