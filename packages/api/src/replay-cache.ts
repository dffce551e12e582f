/**
 * What {@link ReplayCache.add} found: `true` the value is new and now remembered, `false` it was already
 * seen (a replay), `"full"` there is no room to remember it, `"key-quota"` its key (the proof's `jkt`)
 * already has its share of live values; either way the proof is refused (fail closed).
 */
export type ReplayCacheResult = boolean | "full" | "key-quota";

/**
 * Remembers values (DPoP `jti`s) until they expire. `add` remembers a value only if it is absent (like
 * Redis `SET key 1 NX PXAT expiresAt`): several API processes, especially ones sharing `dpop.nonceSecret`,
 * need one shared cache, or a proof used at one process can be replayed at another within its lifetime.
 * `key` is the proof's key thumbprint (`jkt`), so a cache can cap what one key may fill (optional to use).
 */
export interface ReplayCache {
  add(value: string, expiresAt: number, key?: string): Promise<ReplayCacheResult> | ReplayCacheResult;
}

/** The live values of one key, and a lower bound of their expiry. */
interface KeyShare {
  values: Map<string, number>;
  soonestExpiry: number;
}

/**
 * An in-process replay cache of at most `maxEntries` values, of which at most `maxEntriesPerKey` may belong
 * to one key (so the holder of one DPoP-bound token cannot fill it for everyone). Expired values make room;
 * live ones are never dropped: when the cache is full of them new proofs are refused ("full"), and when a
 * key has its share, that key's new proofs are refused ("key-quota"), until some expire. Size it for the
 * peak number of proofs in `proofLifetime` + 10 s, and the share for the busiest client key.
 */
export function createMemoryReplayCache(clock: () => number = Date.now, maxEntries = 100_000, maxEntriesPerKey = 10_000): ReplayCache {
  const seen = new Map<string, { expiry: number; key: string | undefined }>();
  const shares = new Map<string, KeyShare>();
  // No entry expires before this (a lower bound), so a full cache is swept only when a sweep can free room.
  let soonestExpiry = Infinity;
  const forget = (value: string, key: string | undefined) => {
    seen.delete(value);
    if (key === undefined) return;
    const share = shares.get(key);
    share?.values.delete(value);
    if (share?.values.size === 0) shares.delete(key);
  };
  const sweep = (now: number) => {
    soonestExpiry = Infinity;
    for (const share of shares.values()) share.soonestExpiry = Infinity;
    for (const [value, { expiry, key }] of seen) {
      if (expiry <= now) {
        forget(value, key);
        continue;
      }
      soonestExpiry = Math.min(soonestExpiry, expiry);
      const share = key === undefined ? undefined : shares.get(key);
      if (share) share.soonestExpiry = Math.min(share.soonestExpiry, expiry);
    }
  };
  // Only this key's values: a key at its quota costs a sweep of its own share, not of the whole cache.
  const sweepShare = (key: string, share: KeyShare, now: number) => {
    share.soonestExpiry = Infinity;
    for (const [value, expiry] of share.values) {
      if (expiry <= now) forget(value, key);
      else share.soonestExpiry = Math.min(share.soonestExpiry, expiry);
    }
  };
  return {
    add(value, expiresAt, key) {
      const now = clock();
      const existing = seen.get(value);
      if (existing !== undefined && existing.expiry > now) return false;
      if (existing !== undefined) forget(value, existing.key);
      const share = key === undefined ? undefined : shares.get(key);
      if (key !== undefined && share && share.values.size >= maxEntriesPerKey) {
        if (share.soonestExpiry <= now) sweepShare(key, share, now);
        if (share.values.size >= maxEntriesPerKey) return "key-quota";
      }
      if (seen.size >= maxEntries && soonestExpiry <= now) sweep(now);
      if (seen.size >= maxEntries) return "full";
      seen.set(value, { expiry: expiresAt, key });
      soonestExpiry = Math.min(soonestExpiry, expiresAt);
      if (key !== undefined) {
        // The share may have been emptied and dropped by a sweep above: look it up again.
        const current = shares.get(key) ?? { values: new Map<string, number>(), soonestExpiry: Infinity };
        current.values.set(value, expiresAt);
        current.soonestExpiry = Math.min(current.soonestExpiry, expiresAt);
        shares.set(key, current);
      }
      return true;
    },
  };
}
